"""Conformance checks for registered entries, in the spirit of timm's test_models.

Plugins run the same checks on their own entries::

    from posezoo.testing import check_entry
    check_entry("my-model-lift")

Each check raises ``AssertionError`` with a message naming the entry and what failed.
"""
from __future__ import annotations

import tempfile
from typing import Any

import torch

from posezoo.entries import get_entry
from posezoo.factory import build, create, save
from posezoo.models.composed import PoseModel


def _leaves(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for v in output.values() for t in _leaves(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in _leaves(v)]
    return []


def check_param_count(name: str) -> None:
    """The published config's parameter count equals the entry's ``params`` (built on meta)."""
    entry, _ = get_entry(name)
    model = build(entry.model_config(), device="meta")
    count = sum(p.numel() for p in model.parameters())
    assert count == entry.params, f"{name}: {count:,} parameters, entry says {entry.params:,}"


def check_forward_backward(model: PoseModel, x: torch.Tensor, name: str = "") -> None:
    """Finite outputs, and every trainable parameter gets a finite gradient."""
    model.train()
    outputs = _leaves(model(x))
    assert outputs, f"{name}: forward returned no tensor"
    assert all(torch.isfinite(o).all() for o in outputs), f"{name}: non-finite output"
    sum(o.float().square().mean() for o in outputs if o.is_floating_point()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient reaches {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad[:5]}"
    model.zero_grad(set_to_none=True)
    model.eval()


def check_eval_determinism(model: PoseModel, x: torch.Tensor, name: str = "") -> None:
    model.eval()
    with torch.no_grad():
        first, second = _leaves(model(x)), _leaves(model(x))
    assert all(torch.equal(a, b) for a, b in zip(first, second)), f"{name}: eval forward is not deterministic"


def check_round_trip(model: PoseModel, x: torch.Tensor, name: str = "") -> None:
    """save -> create(dir) gives identical tensors and outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        again = create(save(model, tmp))
        ref, new = model.state_dict(), again.state_dict()
        assert ref.keys() == new.keys(), f"{name}: keys changed in the round trip"
        assert all(torch.equal(ref[k], new[k]) for k in ref), f"{name}: tensors changed in the round trip"
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(_leaves(model(x)), _leaves(again(x)))), \
                f"{name}: outputs changed in the round trip"


def check_export(model: PoseModel, x: torch.Tensor, name: str = "") -> None:
    """torch.export with the dynamic axes posezoo's exporter uses (frames where the backbone allows
    any T); the program must match eager on x and, with a dynamic frame axis, on a shorter clip."""
    from torch.export import export

    from posezoo.export import dynamic_shapes

    model.eval()
    shapes = dynamic_shapes(model, x)
    program = export(model, (x,), dynamic_shapes=shapes)
    inputs = [x, x[:, : x.shape[1] - 1]] if 1 in shapes[0] else [x]
    with torch.no_grad():
        for t in inputs:
            for a, b in zip(_leaves(program.module()(t)), _leaves(model(t))):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"{name}: exported program differs")


def check_entry(name: str, export: bool = True, **overrides: Any) -> None:
    """Every conformance check on entry ``name`` (``overrides`` shrink the model for speed; the
    parameter count is always checked at the published config)."""
    check_param_count(name)
    model = create(name, **overrides)
    x = model.example_input()
    check_forward_backward(model, x, name)
    check_eval_determinism(model, x, name)
    check_round_trip(model, x, name)
    if export:
        check_export(model, x, name)
