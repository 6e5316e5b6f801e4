"""Lifting sequences of any length: windows, seams, gaps, and the end-to-end API."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import posezoo
from posezoo.lifting import Lifter, fill_gaps, window_starts

TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=27)


def smooth_input(frames: int, joints: int = 17, seed: int = 0) -> np.ndarray:
    """A slowly moving pose: (T, J, 3), x, y in [-1, 1], confidence 1."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.5, 0.5, (joints, 2))
    t = np.arange(frames)[:, None, None] / 30.0
    xy = base + 0.2 * np.sin(2 * np.pi * 0.3 * t + base)
    return np.concatenate([xy, np.ones((frames, joints, 1))], -1).astype(np.float32)


@pytest.fixture(scope="module")
def lifter():
    torch.manual_seed(0)
    return Lifter(posezoo.create("dstformer-lift", **TINY), overlap=6)


def test_window_starts_cover_everything():
    assert window_starts(20, 27, 6) == [0]
    starts = window_starts(100, 27, 6)
    assert starts[0] == 0 and starts[-1] == 100 - 27
    assert all(b - a <= 27 - 6 for a, b in zip(starts, starts[1:]))


def test_short_input_equals_one_direct_forward(lifter):
    x = smooth_input(27)
    with torch.no_grad():
        direct = lifter.model(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_array_equal(lifter.run(x), direct)
    np.testing.assert_array_equal(lifter.run(x[:10]), lifter.model(torch.from_numpy(x[:10])[None])[0].detach().numpy())


class WindowEdgeBackbone(torch.nn.Module):
    """Output = input + a ramp over the window: what a real model's edge effects look like, made
    exact, so a seam between windows shows as a jump of 0.5 unless the windows are blended."""

    feature_layout = "joint"

    def __init__(self, maxlen: int = 27):
        super().__init__()
        self.dim_in, self.num_joints, self.in_channels, self.max_frames = 3, 17, 3, maxlen

    def forward(self, x):
        ramp = torch.linspace(0, 0.5, x.shape[1], dtype=x.dtype)[None, :, None, None]
        return x + ramp


@pytest.fixture
def edge_lifter():
    from posezoo.registry import BACKBONES

    BACKBONES.register_module(module=WindowEdgeBackbone)
    try:
        model = posezoo.create(backbone="WindowEdgeBackbone", head="lift")
        with torch.no_grad():
            model.head.fc.weight.copy_(torch.eye(3))
            model.head.fc.bias.zero_()
        yield Lifter(model, overlap=9)
    finally:
        BACKBONES.module_dict.pop("WindowEdgeBackbone")


def test_long_input_has_no_jump_at_window_seams(edge_lifter):
    x = smooth_input(200)
    out = edge_lifter.run(x)
    assert out.shape == (200, 17, 3)
    step = np.abs(np.diff(out - x, axis=0)).max()
    hard = np.concatenate([edge_lifter.run(x[s:s + 27]) for s in range(0, 189, 27)])
    hard_step = np.abs(np.diff(hard - x[:189], axis=0)).max()
    assert hard_step == pytest.approx(0.5, abs=0.02)  # what an unblended seam does
    assert step < 0.1  # cross-faded over 9 frames: at most ~0.5 / 9 + the ramp's own slope


def test_fill_gaps_interpolates_short_and_refuses_long():
    track = smooth_input(30)
    track[10:14] = np.nan
    filled, missing = fill_gaps(track, max_gap=5)
    assert missing[10:14].all() and not missing[:10].any()
    np.testing.assert_allclose(filled[12], (track[9] * 2 + track[14] * 3) / 5, atol=1e-6)
    track[15:25] = np.nan
    with pytest.raises(ValueError, match="frames 15..24 \\(10 frames\\) are missing"):
        fill_gaps(track, max_gap=5)


def _random_model(tmp_path):
    """A tiny model saved to a folder: lift() needs weights, any weights do for plumbing tests."""
    return posezoo.save(posezoo.create("dstformer-lift", **TINY), tmp_path / "model")


def test_lift_openpose_file_end_to_end(tmp_path):
    from posezoo.keypoints import read_keypoints

    example = posezoo_root() / "examples" / "treadmill_walk_openpose.npz"
    tracks = read_keypoints(example)
    assert tracks.layout == "openpose-25" and tracks.image_size == (720, 720)
    result = posezoo.lift(example, model=str(_random_model(tmp_path)), flip=True)
    assert result.poses[0].shape == (90, 17, 3) and result.layout == "h36m-17"
    assert result.joint_names[0] == "pelvis" and result.fps == pytest.approx(23.98)
    assert np.isfinite(result.poses[0]).all()
    out = result.save(tmp_path / "poses.npz")
    with np.load(out) as data:
        assert data["poses_3d"].shape == (1, 90, 17, 3) and data["keypoints_2d"].shape == (1, 90, 17, 3)
    js = result.save(tmp_path / "poses.json")
    assert js.stat().st_size > 0


def test_lift_refuses_bad_input(tmp_path):
    model = str(_random_model(tmp_path))
    with pytest.raises(ValueError, match="cannot tell the keypoint layout of 17 joints"):
        posezoo.lift(np.zeros((10, 17, 3)), model=model)
    with pytest.raises(ValueError, match="every confidence is 0"):
        posezoo.lift(np.zeros((10, 17, 3)), layout="coco-17", model=model)
    with pytest.raises(ValueError, match=r"image size must be \(width, height\)"):
        posezoo.lift(np.ones((10, 17, 3)), layout="coco-17", image_size=(0, 10), model=model)
    with pytest.raises(KeyError, match="unknown model 'dstformer-lyft'"):
        posezoo.lift(np.stack([np.tile(np.arange(17.0), (10, 1)), np.ones((10, 17)), np.ones((10, 17))], axis=-1),
                     layout="coco-17", model="dstformer-lyft")


def posezoo_root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def test_default_embedded_model_lifts_real_openpose_offline(tmp_path, monkeypatch):
    """The README's main job: the shipped weights, no network, real OpenPose tracks."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from posezoo.losses import H36M_LIMBS

    example = posezoo_root() / "examples" / "treadmill_walk_openpose.npz"
    result = posezoo.lift(example)
    poses = result.poses[0]
    assert result.model == "tcn-s-81f-lift.mocap" and result.units == "m"
    assert np.array_equal(poses[:, 0], np.zeros_like(poses[:, 0]))  # the pelvis exactly at the origin
    thigh = np.linalg.norm(poses[:, 1] - poses[:, 2], axis=-1)  # right hip -> knee, metres
    assert np.ptp(thigh) < 1e-5 and 0.35 < thigh[0] < 0.52  # rigid bones of an adult's length
    hips = np.linalg.norm(poses[:, 1] - poses[:, 4], axis=-1)
    assert 0.2 < hips[0] < 0.32  # Human3.6M's hip joints (0.6 thigh apart), not the mocap markers'
    head_up = poses[:, 10, 1] < poses[:, 0, 1]  # camera y points down: the head is above the pelvis
    assert head_up.mean() > 0.95
    raw = posezoo.lift(example, rigid_bones=False, smooth=1).poses[0]  # the model's own output
    lengths = np.stack([np.linalg.norm(raw[:, a] - raw[:, b], axis=-1) for a, b in H36M_LIMBS], 1)
    assert np.median(lengths.std(0) / lengths.mean(0)) < 0.10  # 6.3 % measured; the old default 12.5 %


def test_tampered_embedded_weights_are_refused(monkeypatch, tmp_path):
    from posezoo import factory
    from posezoo.hub import HubError

    fake = tmp_path / "dstformer-xs-lift.mocap.safetensors"
    fake.write_bytes((factory.EMBEDDED_WEIGHTS / fake.name).read_bytes()[:-4] + b"\0\0\0\0")
    monkeypatch.setattr(factory, "EMBEDDED_WEIGHTS", tmp_path)
    with pytest.raises(HubError, match="does not match the recorded"):
        posezoo.create("dstformer-xs-lift.mocap", pretrained=True)


def test_tcn_trained_in_window_form_lifts_whole_sequences():
    """A TCN saved in its single-frame training form (mode='window') lifts any length through its
    dilated form, and frame t equals the window form on the edge-padded window centred on t."""
    torch.manual_seed(0)
    model = posezoo.create("tcn-27f-lift", channels=32, mode="window").eval()
    x = smooth_input(40)[..., :2]
    out = Lifter(model).run(x)
    assert out.shape == (40, 17, 3) and model.backbone.mode == "sequence"
    padded = np.concatenate([x[:1].repeat(13, 0), x, x[-1:].repeat(13, 0)])
    model.backbone.mode = "window"
    with torch.no_grad():
        for t in (0, 20, 39):
            window = model(torch.from_numpy(padded[t:t + 27])[None])[0, 0].numpy()
            np.testing.assert_allclose(out[t], window, atol=1e-5)
