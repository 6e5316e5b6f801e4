"""Reading weights safely and loading them strictly, with errors a person can act on.

- ``.safetensors`` files load lazily (mmap); pickles (``.bin``/``.pth``/``.pt``) only through
  ``torch.load(weights_only=True)``, with an explicit allow-list for the non-tensor objects some
  official containers hold.
- Official containers are unwrapped (``model_pos``, ``model``, ``state_dict``, ...) and DataParallel's
  ``module.`` prefixes stripped.
- ``load_strict`` compares keys and shapes first and raises one readable diff.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from posezoo._atomic import atomic_path
from posezoo.errors import InputError, InputNotFoundError

# Keys under which official training scripts store the model's weights, in order of preference.
CONTAINER_KEYS = ("model_pos", "model", "state_dict", "model_state_dict", "module")


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit the model."""


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_weights(path: str | os.PathLike, safe_globals: Iterable = ()) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from its container, ``module.`` stripped."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            obj = load_file(path)
        except SafetensorError as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupted?): {exc}") from exc
    else:
        obj = torch_load(path, safe_globals)
    state = _unwrap(obj, path)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


UNSAFE_HINT = ("posezoo only loads pickles with torch.load(weights_only=True); if you trust the file, convert it "
               "on a machine where you may open it, or save its state_dict alone")


def torch_load(path: Path, safe_globals: Iterable = (), trusted: bool = False, hint: str = UNSAFE_HINT,
               map_location=None) -> object:
    """``torch.load`` with ``weights_only=True`` (plus ``safe_globals``); a file that needs other
    objects is refused with :class:`CheckpointError` naming one (``error.unsafe_global``) and
    ``hint``, or, when ``trusted``, unpickled fully. An unreadable file is a CheckpointError too."""
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        match = re.search(r"Unsupported global: GLOBAL ([\w.]+)|but got <class '([\w.]+)'>", str(exc))
        if match is None:
            raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated, corrupted or not "
                                  f"a checkpoint): {_first_line(exc)}") from exc
        if trusted:
            return torch.load(path, map_location=map_location or "cpu", weights_only=False)
        error = CheckpointError(f"{path} holds Python objects besides tensors (a {match.group(1) or match.group(2)}), "
                                f"which are not safe to unpickle (they could run code), so it was not opened. {hint}.")
        error.unsafe_global = match.group(1) or match.group(2)
        raise error from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError, TypeError,
            AttributeError, struct.error) as exc:  # what torch's unpickler raises on bytes that are no pickle
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupted?): "
                              f"{_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    """The reason in torch's long weights-only message, else the first line of ``exc``."""
    reason = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|Check the documentation|$)", str(exc), re.S)
    if reason:
        return " ".join(reason.group(1).split())
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def numpy_random_state_globals() -> list:
    """The ``torch.load(weights_only=True)`` allow-list for containers that hold a pickled numpy
    ``RandomState`` (VideoPose3D-style ``random_state``): its constructors, MT19937 and the array
    types of its state, nothing else. numpy 1.x spellings are listed as aliases."""
    import numpy as np
    from numpy.random import _pickle

    reconstruct = np.array(0).__reduce__()[0]
    return [
        np.ndarray, np.dtype, type(np.dtype(np.uint32)), np.random.RandomState, np.random.MT19937,
        _pickle.__randomstate_ctor, _pickle.__bit_generator_ctor,
        (np.random.__RandomState_ctor, "numpy.random.__RandomState_ctor"),
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
    ]


# Not timm's load_state_dict/clean_state_dict (no model_pos container, no allow-list for its torch.load) nor
# mmengine's _load_checkpoint revise_keys (regexes applied after a full unpickle).
def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for key in CONTAINER_KEYS:
            if _is_state_dict(obj.get(key)):
                return obj[key]
        keys = ", ".join(map(repr, list(obj)[:8]))
        raise CheckpointError(f"{path} holds no weights under any of {CONTAINER_KEYS} (top-level keys: {keys})")
    raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")


def _summarise(keys: Iterable[str], limit: int = 8) -> str:
    """Keys grouped by pattern (block indices as ``*``), at most ``limit`` groups."""
    groups: dict[str, int] = {}
    for key in sorted(keys):
        pattern = re.sub(r"\.\d+(?=\.)", ".*", key)
        groups[pattern] = groups.get(pattern, 0) + 1
    items = [f"{p}" + (f" (x{n})" if n > 1 else "") for p, n in groups.items()]
    more = f", ... {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def key_diff(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """A readable description of what does not fit, or None when keys and shapes all match."""
    expected = model.state_dict(keep_vars=True)
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in sorted(set(expected) & set(state)) if state[k].shape != expected[k].shape]
    if not (missing or unexpected or wrong):
        return None
    lines = []
    if missing:
        lines.append(f"missing ({len(missing)}): {_summarise(missing)}")
    if unexpected:
        lines.append(f"unexpected ({len(unexpected)}): {_summarise(unexpected)}")
    if wrong:
        lines.append(f"wrong shape ({len(wrong)}): " + "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else ""))
    return "\n  ".join(lines)


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> nn.Module:
    """Load ``state`` into ``model`` (built on any device, meta included) with exact keys and shapes.

    On the meta device the tensors are assigned, not copied; they are cast to the model's dtype.
    Tensors of the wrong kind (integer for float) or with NaN/inf raise :class:`CheckpointError`.
    """
    diff = key_diff(model, state)
    if diff:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}:\n  {diff}")
    expected = model.state_dict(keep_vars=True)
    check_values(state, expected, source)
    on_meta = any(t.is_meta for t in expected.values())
    state = {k: (v.to(expected[k].dtype) if v.dtype != expected[k].dtype and v.is_floating_point() else v)
             for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=on_meta)
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftover:
        raise RuntimeError(f"{type(model).__name__} kept tensors on the meta device after loading: {leftover[:5]} "
                           "(a non-persistent buffer: derive it in forward instead)")
    return model


def check_values(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse tensors of the wrong kind (integer or bool where the model holds floats, or the
    reverse) and floating tensors holding NaN or inf."""
    kind = {True: "floating point", False: "integer/bool"}
    for key, value in state.items():
        if value.is_floating_point() != expected[key].is_floating_point():
            raise CheckpointError(f"{source}: {key} is {value.dtype}, the model holds {kind[expected[key].is_floating_point()]} "
                                  f"({expected[key].dtype}) there: not weights of this model")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
            raise CheckpointError(f"{source}: {len(bad)} tensor(s) hold NaN/inf ({', '.join(bad[:3])}"
                                  f"{', ...' if len(bad) > 3 else ''}): a diverged or corrupted checkpoint")


def save_weights_atomic(state: dict[str, torch.Tensor], path: str | os.PathLike,
                        metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, tmp, metadata=metadata)
