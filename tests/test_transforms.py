"""Transforms and cameras: MotionBERT fixture parity (crop_scale, pixel mode), VideoPose3D screen
normalisation, clip sampling, 2D corruption, and camera geometry / distortion / determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from posezoo.data import transforms as T
from posezoo.data.cameras import Camera, distort, look_at, project, sample_camera, undistort, unproject


def test_crop_scale_matches_official(data_utils):
    got = T.crop_scale(data_utils["halpe2h36m"], [1, 1])
    np.testing.assert_allclose(got, data_utils["crop_scale_1_1"], rtol=0, atol=1e-10)
    zero = data_utils["h36m_with_zero_conf"]
    assert (zero[..., 2] == 0).any()
    got = T.crop_scale(zero, [1, 1], rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, data_utils["crop_scale_1_1_with_zero_conf"], rtol=0, atol=1e-10)


def test_crop_scale_edge_cases():
    few = np.zeros((2, 17, 3))
    few[0, :3] = [1.0, 2.0, 1.0]
    assert not T.crop_scale(few).any()  # fewer than 4 valid joints -> zeros
    same = np.ones((2, 17, 3))
    assert not T.crop_scale(same).any()  # zero-size box -> zeros
    x = np.random.default_rng(0).uniform(0, 500, (3, 17, 3))
    x[..., 2] = 1
    y = T.crop_scale(x, [2, 2])  # a square twice the box: everything inside [-0.5, 0.5]
    assert np.abs(y[..., :2]).max() == pytest.approx(0.5)


def test_pixel_mode_matches_official(data_utils):
    got = T.normalize_pixels_centered(data_utils["halpe2h36m"], 1280, 720)
    np.testing.assert_allclose(got, data_utils["pixel_mode_1280x720"], rtol=0, atol=1e-10)


def test_screen_normalisation():
    px = np.array([[0.0, 0.0, 0.7], [1000.0, 1002.0, 0.2], [500.0, 501.0, 1.0]])
    n = T.normalize_screen_coordinates(px, 1000, 1002)
    np.testing.assert_allclose(n, [[-1, -1.002, 0.7], [1, 1.002, 0.2], [0, 0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(T.denormalize_screen_coordinates(n, 1000, 1002), px, atol=1e-9)
    np.testing.assert_allclose(T.make_cam(np.array([[0.0, 960.0]]), (1080, 1920)), [[-1, 0]])


def test_flip_pose_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    f = T.flip_pose(x)
    np.testing.assert_array_equal(f[:, 1, 0], -x[:, 4, 0])
    np.testing.assert_array_equal(f[:, 1, 1:], x[:, 4, 1:])
    np.testing.assert_array_equal(T.flip_pose(f), x)
    assert torch.equal(T.flip_pose(torch.from_numpy(x)), torch.from_numpy(f))


def test_resample_as_official():
    np.testing.assert_array_equal(T.resample(10, 4, randomness=False), [0, 2, 5, 7])
    np.random.seed(0)
    up = T.resample(5, 12)  # shorter clip: floor / ceil of the even positions, sorted
    even = np.linspace(0, 5, 12, endpoint=False)
    assert np.all((up == np.floor(even)) | (up == np.minimum(np.ceil(even), 4)))
    assert np.all(np.diff(up.astype(int)) >= 0)
    down = T.resample(100, 10, rng=np.random.default_rng(1))  # longer clip: one frame per interval
    assert np.all((down >= np.arange(10) * 10) & (down < np.arange(1, 11) * 10))
    np.testing.assert_array_equal(T.resample(100, 10, rng=np.random.default_rng(1)), down)


def test_clip_windows_and_fps():
    assert T.clip_windows(10, 4, 3) == [0, 3, 6]
    assert T.clip_windows(3, 4, 1) == []
    with pytest.raises(ValueError):
        T.clip_windows(10, 0, 1)
    pos = T.resample_fps(121, 120, 30)
    np.testing.assert_allclose(pos, np.arange(31) * 4)
    frames = np.arange(10.0)[:, None] * [1.0, 2.0]
    np.testing.assert_allclose(T.interpolate_frames(frames, np.array([0.5, 8.25])), [[0.5, 1.0], [8.25, 16.5]])


def test_masking_rates():
    rng = np.random.default_rng(0)
    x = np.ones((2000, 17, 3))
    m = T.mask_joints(x, rng, mask_ratio=0.05, mask_T_ratio=0.1)
    frame_off = (m == 0).all(axis=(1, 2))
    assert 0.08 < frame_off.mean() < 0.12
    joint_off = (m[~frame_off] == 0).all(-1)
    assert 0.04 < joint_off.mean() < 0.06
    assert np.all((m == 0).all(-1) | (m == 1).all(-1))  # all three channels together
    assert T.corrupt_2d(x, rng, mask_ratio=0.05, mask_T_ratio=0.0) is x  # masking needs both ratios


def test_noise_model():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 17, 3))
    quiet = T.add_noise_2d(x, rng, std=0.0, jitter_std=0.0, d2c=dict(a=1.0, b=0.0, m=-0.25, s=0.0))
    np.testing.assert_array_equal(quiet[..., :2], 0)
    np.testing.assert_allclose(quiet[..., 2], 0.75)  # a / (0 + a) + N(m=-0.25, 0)
    unif = T.add_noise_2d(x, rng, weight=0.0, uniform_range=0.06, jitter_std=0.0)
    assert np.abs(unif[..., :2]).max() <= 0.03 and np.abs(unif[..., :2]).max() > 0.02
    # keyframes interpolated over time: consecutive frames move little
    assert np.abs(np.diff(unif[..., :2], axis=0)).max() < 0.03
    np.testing.assert_array_equal(unif[..., 2], 0)  # no d2c: the input confidence is kept
    big = T.add_noise_2d(x, rng, std=0.5, d2c=dict(a=0.1, b=0.0, m=0.0, s=0.0))
    d = np.linalg.norm(big[..., :2], axis=-1)  # displacement from x = 0
    np.testing.assert_allclose(big[..., 2], 0.1 / (d + 0.1), atol=1e-12)  # far = unconfident
    assert big[..., 2].mean() < 0.5


def test_random_move_and_tracking():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 20, 17, 3))
    same = T.random_move(x, rng, angle_range=(0, 0), scale_range=(1, 1), shift_range=(0, 0))
    np.testing.assert_allclose(same, x, atol=1e-12)
    moved = T.random_move(x, rng)
    np.testing.assert_array_equal(moved[..., 2], x[..., 2])
    assert not np.allclose(moved[..., :2], x[..., :2])
    # two persons whose identities swap at frame 10: tracking swaps them back
    a = np.zeros((20, 17, 2))
    b = np.full((20, 17, 2), 5.0)
    swapped = np.stack([np.concatenate([a[:10], b[10:]]), np.concatenate([b[:10], a[10:]])])
    fixed = T.human_tracking(swapped)
    np.testing.assert_array_equal(fixed[0], a)
    np.testing.assert_array_equal(fixed[1], b)


def test_look_at_and_projection_geometry():
    R = look_at([0.0, 1.0, 5.0], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    cam = Camera(R=R, centre=np.array([0.0, 1.0, 5.0]), f=np.array([1000.0, 1000.0]),
                 c=np.array([500.0, 400.0]), w=1000, h=800)
    on_axis = cam.project(cam.world_to_camera(np.array([0.0, 1.0, 0.0])))
    np.testing.assert_allclose(on_axis, [500, 400])
    up = cam.project(cam.world_to_camera(np.array([0.0, 2.0, 0.0])))
    right = cam.project(cam.world_to_camera(np.array([1.0, 1.0, 0.0])))  # camera looks along -z
    np.testing.assert_allclose(up, [500, 400 - 1000 * 1 / 5])  # higher in the world = smaller v
    np.testing.assert_allclose(right, [500 + 1000 / 5, 400])
    pts = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(pts)), pts, atol=1e-12)
    with pytest.raises(ValueError, match="up axis"):
        look_at([0.0, 5.0, 0.0], [0.0, 0.0, 0.0])


def test_distortion_round_trip():
    k, p = np.array([-0.2, 0.24, -0.003]), np.array([-0.001, 0.0015])
    xy = np.random.default_rng(0).uniform(-0.45, 0.45, (100, 2))
    d = distort(xy, k, p)
    assert np.abs(d - xy).max() > 1e-3
    np.testing.assert_allclose(undistort(d, k, p), xy, atol=1e-10)
    pts = np.concatenate([xy * 4, np.full((100, 1), 4.0)], -1)
    px = project(pts, [1145, 1144], [512, 515], k, p)
    np.testing.assert_allclose(unproject(px, pts[:, 2], [1145, 1144], [512, 515], k, p), pts, atol=1e-8)
    # the Brown-Conrady form of OpenCV: x' = x (1 + k1 r2 + ...) + 2 p1 x y + p2 (r2 + 2 x^2)
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    np.testing.assert_allclose(d[:, 0], x * radial + 2 * p[0] * x * y + p[1] * (r2 + 2 * x * x), atol=1e-15)
    np.testing.assert_allclose(d[:, 1], y * radial + p[0] * (r2 + 2 * y * y) + 2 * p[1] * x * y, atol=1e-15)


def test_sample_camera_determinism_and_ranges():
    a = sample_camera(np.random.default_rng(5), dict(distortion=True))
    b = sample_camera(np.random.default_rng(5), dict(distortion=True))
    np.testing.assert_array_equal(a.R, b.R)
    assert a.meta() == b.meta() and a.k[0] != 0
    c = sample_camera(np.random.default_rng(6))
    assert c.meta() != a.meta() and not c.k.any()
    fixed = sample_camera(np.random.default_rng(0), dict(yaw=90.0, elevation=30.0, distance=4.0,
                                                          target_height=1.0, principal_jitter=0.0), travel=1.5)
    np.testing.assert_allclose(fixed.centre, [5.5 * np.cos(np.pi / 6), 1 + 5.5 * 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(fixed.c, [500, 500])
    np.testing.assert_allclose(fixed.world_to_camera(np.array([0.0, 1.0, 0.0])), [0, 0, 5.5], atol=1e-12)
