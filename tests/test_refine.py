"""posezoo.refine: rigid bones and Savitzky-Golay smoothing of lifted tracks, and posezoo.lift's use of them."""
import numpy as np
import pytest

from posezoo.data.layouts import get_layout
from posezoo.refine import rigid_bones, savgol_weights, smooth

PARENTS = get_layout("h36m-17").parents


def _bones(poses):
    return np.stack([np.linalg.norm(poses[:, j] - poses[:, p], axis=-1) for j, p in enumerate(PARENTS) if p >= 0], 1)


def test_rigid_bones_keeps_directions_and_root():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(50, 17, 3))
    out = rigid_bones(poses, PARENTS)
    lengths = _bones(out)
    assert np.allclose(lengths, np.median(_bones(poses), axis=0), atol=1e-9)  # each bone at its median
    assert np.array_equal(out[:, 0], poses[:, 0])
    for j, p in enumerate(PARENTS):
        if p >= 0:
            a, b = out[:, j] - out[:, p], poses[:, j] - poses[:, p]
            cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
            assert np.allclose(cos, 1.0)
    rigid = rigid_bones(out, PARENTS)
    assert np.allclose(rigid, out)  # already rigid: unchanged
    with pytest.raises(ValueError, match="comes after"):
        rigid_bones(poses[:, :3], (-1, 2, 0))


def test_smoothing_keeps_quadratic_motion_and_removes_jitter():
    t = np.arange(60, dtype=np.float64)
    motion = (0.002 * t ** 2 - 0.1 * t + 1.0)[:, None, None] * np.ones((1, 17, 3))
    assert np.allclose(smooth(motion, 9)[4:-4], motion[4:-4], atol=1e-9)  # exact away from the edges
    assert np.allclose(savgol_weights(5, 2), [-3 / 35, 12 / 35, 17 / 35, 12 / 35, -3 / 35])
    noise = np.random.default_rng(1).normal(size=(400, 17, 3))
    accel = lambda x: np.abs(np.diff(x, n=2, axis=0)).mean()  # noqa: E731
    assert accel(smooth(noise, 9)) < 0.2 * accel(noise)
    assert np.array_equal(smooth(noise, 1), noise)
    assert smooth(noise[:4], 9).shape == (4, 17, 3)  # a track shorter than the window
    with pytest.raises(ValueError, match="odd"):
        savgol_weights(4)


def test_lift_refines_by_default_and_says_so():
    import posezoo

    model = posezoo.create("tcn-s-81f-lift", channels=32, filter_widths=[3, 3]).eval()
    rng = np.random.default_rng(2)
    xy = rng.uniform(300, 400, (1, 17, 2)) + np.cumsum(rng.normal(0, 0.5, (60, 17, 2)), axis=0)
    kp = np.concatenate([xy, np.ones((60, 17, 1))], -1)
    refined = posezoo.lift(kp, layout="h36m-17", model=model, fps=30)
    raw = posezoo.lift(kp, layout="h36m-17", model=model, fps=30, rigid_bones=False, smooth=1)
    assert refined.meta["refine"] == {"rigid_bones": True, "smooth_frames": 9}
    assert raw.meta["refine"] == {"rigid_bones": False, "smooth_frames": 1}
    assert np.std(_bones(refined.poses[0]), axis=0).max() < 1e-6
    assert np.std(_bones(raw.poses[0]), axis=0).max() > 1e-4
    expected = rigid_bones(smooth(raw.poses[0], 9), PARENTS)
    assert np.allclose(refined.poses[0], expected, atol=1e-5)
    assert posezoo.lift(kp, layout="h36m-17", model=model, fps=50).meta["refine"]["smooth_frames"] == 15
