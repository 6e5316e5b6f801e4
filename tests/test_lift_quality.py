"""tools/lift_quality.py: bone-length consistency and jitter of lifted real OpenPose tracks."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("posezoo_lift_quality", ROOT / "tools" / "lift_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _rigid_walker(frames: int = 40) -> np.ndarray:
    """An h36m-17 skeleton turning about the vertical axis: bone lengths constant."""
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(17, 3))
    angles = np.linspace(0, np.pi, frames)
    rot = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in angles])
    return np.einsum("tij,kj->tki", rot, pose).astype(np.float32)


def test_bone_cv_is_zero_for_rigid_motion_and_measures_stretch(quality):
    poses = _rigid_walker()
    assert np.abs(quality.bone_cv(poses)).max() < 1e-4
    stretched = poses.copy()
    stretched[1::2, 3] = stretched[1::2, 2] + 2 * (stretched[1::2, 3] - stretched[1::2, 2])  # right shin x2 every other frame
    cv = quality.bone_cv(stretched)
    assert cv[2] == pytest.approx(100 / 3, rel=1e-4)  # lengths L and 2L: std L/2, mean 1.5L
    assert np.abs(np.delete(cv, 2)).max() < 1e-4


def test_acceleration_in_mm_per_frame_squared(quality):
    t = np.arange(10, dtype=np.float64)[:, None, None]
    poses = np.zeros((10, 17, 3))
    poses[:, 1:, 0] = 0.5 * 0.002 * t[:, :, 0] ** 2  # every non-root joint accelerates at 2 mm/frame^2
    assert quality.acceleration_mm(poses) == pytest.approx(2 * 16 / 17)
    poses[:, :, 1] += t[:, :, 0] ** 2  # the same motion of every joint (root included) is not jitter
    assert quality.acceleration_mm(poses) == pytest.approx(2 * 16 / 17)


def test_real_tracks_with_default_model(quality, data_dir, tmp_path):
    results = quality.main(["--data", str(data_dir / "treadmill_openpose.npz"),
                            "--reference", str(data_dir / "bandai1.npz"), "--plot", str(tmp_path / "bones.png")])
    raw, refined = results  # the model's own output, then posezoo.lift's defaults
    assert "model only" in raw["model"] and "posezoo.lift defaults" in refined["model"]
    assert raw["cv"].shape == (16,) and np.isfinite(raw["cv"]).all() and (raw["cv"] > 0).all()
    assert np.median(raw["cv"]) < 10  # the default model: 7.7 % measured (the old one 12.5 %)
    assert np.abs(refined["cv"]).max() < 1e-3  # rigid bones by construction
    assert [p.shape for p in raw["poses"]] == [(90, 17, 3)] * 3
    assert 0 < refined["accel"] < raw["accel"] < 1000  # mm/frame^2: smoothing removes jitter
    assert (tmp_path / "bones.png").stat().st_size > 10_000
    walking = quality.reference_acceleration(data_dir / "bandai1.npz", 23.98, match="walk")
    assert 0 < walking < raw["accel"]  # real motion is smoother than lifted detector output
