"""Fixes for mmengine 0.10.7 under torch >= 2.6 on CPU machines (see the stack notes, section 2).

The two mmengine patches below are process-wide, so they are applied by :func:`install` (called by
:func:`trust_directory`, which every posezoo training or test entry point calls before building a
Runner), not at import: importing posezoo (``posezoo.create`` imports this package) changes nothing.

- Resume: torch >= 2.6 loads with ``weights_only=True``, which refuses mmengine's own checkpoints
  (they pickle a ``HistoryBuffer``). The local checkpoint loader is re-registered: it tries
  ``weights_only=True`` first and falls back to a full unpickle only for files inside directories
  trusted with :func:`trust_directory` (the run's work_dir). ``.safetensors`` files load as weights.
- Atomic writes: mmengine writes checkpoints with ``open(path, 'wb')``; a run killed mid-write would
  leave a truncated file. The local file backend now writes a temp file and renames it.
- CPU distributed training: mmengine calls ``torch.cuda.set_device`` and gives DDP ``device_ids``;
  :func:`setup_distributed` creates the gloo process group itself and wraps without device ids.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.runner.checkpoint import CheckpointLoader

from posezoo._atomic import atomic_path
from posezoo.checkpoint import read_weights, torch_load
from posezoo.errors import InputNotFoundError

_TRUSTED: set[Path] = set()
TRUST_ENV = "POSEZOO_TRUST_CHECKPOINTS"  # "1": trust every local checkpoint (opt-in)


def trust_directory(path: str | os.PathLike) -> None:
    """Allow full unpickling of checkpoints below ``path`` (a work_dir this process writes, or one
    file the user vouched for: ``tools/test.py --trust-checkpoint``); installs the patches."""
    install()
    _TRUSTED.add(Path(path).expanduser().resolve())


def _is_trusted(path: Path) -> bool:
    if os.environ.get(TRUST_ENV) == "1":
        return True
    path = path.resolve()
    return any(path.is_relative_to(d) for d in _TRUSTED)


def trust_only(path: str | os.PathLike | None) -> None:
    """Trust nothing but ``path`` (when given) from now on, not even the work_dir (tools/test.py)."""
    install()
    _TRUSTED.clear()
    if path is not None:
        _TRUSTED.add(Path(path).expanduser().resolve())


def check_fits(model: torch.nn.Module, checkpoint: dict, source: str) -> None:
    """Refuse a training checkpoint whose ``state_dict`` does not fit ``model`` (a Runner's, wrapped
    or not) key for key and shape for shape; mmengine itself only warns."""
    from mmengine.model import is_model_wrapper

    from posezoo.checkpoint import CheckpointError, key_diff

    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{source} holds no state_dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    diff = key_diff(model.module if is_model_wrapper(model) else model, state)
    if diff:
        raise CheckpointError(f"{source} does not fit the recipe's model: {diff}")


UNTRUSTED_HINT = ("Test the weights exported beside it (iter_N.safetensors, best/), or, if you trust the file, "
                  f"pass tools/test.py --trust-checkpoint (or set {TRUST_ENV}=1)")


def load_from_local(filename: str, map_location=None):
    """mmengine's local loader, safe by default under torch >= 2.6 and able to read safetensors:
    ``weights_only=True``, and a full unpickle only for trusted files (else CheckpointError)."""
    path = Path(os.path.expanduser(filename))
    if not path.is_file():
        raise InputNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        device = map_location if isinstance(map_location, str) else "cpu"
        return {"state_dict": {k: v.to(device) for k, v in read_weights(path).items()}}
    return torch_load(path, trusted=_is_trusted(path), hint=UNTRUSTED_HINT, map_location=map_location)


def _atomic_put(self, obj: bytes, filepath) -> None:
    """Write bytes to ``filepath`` through a temp file in the same folder, synced, then renamed."""
    with atomic_path(filepath) as tmp, open(tmp, "wb") as f:
        f.write(obj)
        f.flush()
        os.fsync(f.fileno())


_installed = False


def install() -> None:
    """Apply the mmengine patches (safe local checkpoint loader, atomic local writes), once."""
    global _installed
    if not _installed:
        CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)
        LocalBackend.put = _atomic_put
        _installed = True


def setup_distributed(cfg) -> None:
    """For ``launcher='pytorch'`` without CUDA: start the gloo group and wrap DDP without device ids."""
    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available():
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    unused = (cfg.get("model_wrapper_cfg") or {}).get("find_unused_parameters", False)  # e.g. frozen stages
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                 broadcast_buffers=False, find_unused_parameters=unused)
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
