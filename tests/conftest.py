"""Shared test helpers: where the parity fixtures and the real data live, and a small synthetic SMPL
body-model file (the real one is licensed and never shipped)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    """The module of ``tools/<name>.py`` (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _shared(env: str, sub: str) -> Path:
    return Path(os.environ.get(env, ROOT.parent / "shared" / sub))


FIXTURES = _shared("POSEZOO_FIXTURES", "fixtures")
DATA = _shared("POSEZOO_DATA", "data")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"parity fixtures not found at {FIXTURES} (set POSEZOO_FIXTURES)")
    return FIXTURES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared motion data not found at {DATA} (set POSEZOO_DATA)")
    return DATA


@pytest.fixture(scope="session")
def data_utils(fixtures_dir) -> dict:
    """MotionBERT's data_utils fixture (numpy arrays by short name): conversions, crop_scale, flip."""
    from safetensors.numpy import load_file

    path = fixtures_dir / "motionbert" / "data_utils.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return {k.split("/", 1)[1]: v for k, v in load_file(path).items()}


def load_fixture(fixtures_dir: Path, folder: str, name: str):
    """(weights, tensors, sidecar) of one official fixture: the state dict without the ``fixture/``
    tensors, the ``fixture/`` tensors by short name, and the JSON sidecar."""
    import json

    from safetensors.torch import load_file

    path = fixtures_dir / folder / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"fixture {path} not found")
    tensors = load_file(path)
    io = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("fixture/")}
    weights = {k: v for k, v in tensors.items() if not k.startswith("fixture/")}
    sidecar = json.loads((fixtures_dir / folder / f"{name}.json").read_text())
    return weights, io, sidecar


SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_body_model(folder, num_verts: int = 40, suffix: str = ".npz"):
    """A small SMPL-structured model file (the real one: 6890 vertices, 13776 faces, licensed)."""
    rng = np.random.default_rng(5)
    weights = rng.uniform(size=(num_verts, 24))
    regressor = rng.uniform(size=(24, num_verts))
    arrays = {
        "v_template": rng.normal(size=(num_verts, 3)) * 0.3,
        "shapedirs": rng.normal(size=(num_verts, 3, 10)) * 0.01,
        "posedirs": rng.normal(size=(num_verts, 3, 207)) * 0.01,
        "J_regressor": regressor / regressor.sum(1, keepdims=True),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.stack([np.array(SMPL_PARENTS, dtype=np.int64) % 2**32, np.arange(24)]),
        "f": rng.integers(0, num_verts, size=(20, 3)).astype(np.uint32),
    }
    path = folder / f"SMPL_NEUTRAL{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with open(path, "wb") as f:
            pickle.dump(arrays, f)
    h36m = rng.uniform(size=(17, num_verts))
    np.save(folder / "J_regressor_h36m_correct.npy", h36m / h36m.sum(1, keepdims=True))
    return path, folder / "J_regressor_h36m_correct.npy", arrays
