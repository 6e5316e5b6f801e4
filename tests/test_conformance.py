"""Every registered entry passes posezoo.testing's conformance checks; every backbone composes
with every head (forward and backward)."""
from __future__ import annotations

import pytest

import posezoo
import posezoo.entries
from posezoo import testing
from posezoo.entries import all_entries
from posezoo.registry import BACKBONES, HEADS

ENTRIES = sorted(all_entries())

# Shrunk hyper-parameters per backbone type, so the functional checks run in seconds; parameter
# counts are always checked at the published config. A backbone not listed runs at full size.
SMALL = {
    "DSTformer": dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9),
    "TemporalConvNet": dict(channels=32),
    "FrameMLP": dict(channels=32),
    "MixSTE": dict(num_frame=9, embed_dim_ratio=16, depth=2, num_heads=2),
    "PoseFormer": dict(embed_dim_ratio=4, depth=1, num_heads=2),
    "PoseFormerV2": dict(embed_dim_ratio=4, depth=1, num_heads=2),
}


def small_overrides(name: str) -> dict:
    entry, _ = posezoo.entries.get_entry(name)
    return SMALL.get(entry.backbone["type"], {})


@pytest.mark.parametrize("name", ENTRIES)
def test_param_count_matches_the_published_config(name):
    testing.check_param_count(name)


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_conforms(name):
    testing.check_entry(name, **small_overrides(name))


def _canonical(registry) -> list[str]:
    """One name per registered class (aliases skipped)."""
    seen, names = set(), []
    for name in registry.names():
        cls = registry.get(name)
        if cls not in seen and name == cls.__name__:
            seen.add(cls)
            names.append(name)
    return names


def _default_entry(backbone: str) -> str:
    """The smallest entry that uses ``backbone`` (shrunk by SMALL)."""
    users = [e for e in all_entries().values() if BACKBONES.get(e.backbone["type"]) is BACKBONES.get(backbone)]
    if not users:
        pytest.skip(f"no entry uses backbone {backbone}")
    return min(users, key=lambda e: e.params).name


@pytest.mark.parametrize("head", _canonical(HEADS))
@pytest.mark.parametrize("backbone", _canonical(BACKBONES))
def test_every_backbone_with_every_head(backbone, head):
    entry = _default_entry(backbone)
    try:
        model = posezoo.create(entry, head=head, **small_overrides(entry))
    except ValueError as exc:  # a pair that cannot work must be refused here, clearly, not at forward
        assert "features" in str(exc) or "feature_layout" in str(exc), exc
        return
    x = model.example_input()
    testing.check_forward_backward(model, x, f"{backbone} + {head}")
