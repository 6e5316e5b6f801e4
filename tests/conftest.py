"""Shared test helpers: where the parity fixtures and the real data live."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
