"""Mocap made to look like detections: H36M retargeting, detector noise, pose-frame normalisation,
the batched synthetic lifting dataset, and posezoo.lift on a pose-frame model."""
import numpy as np
import pytest
import torch

from posezoo.data import retarget as R
from posezoo.data import transforms as T
from posezoo.data.layouts import convert_keypoints
from posezoo.data.readers import read_motion_npz
from posezoo.data.synthetic import SyntheticLiftDataset, view_batch, DEFAULT_AUGMENT


def _dist(x, a, b):
    return np.linalg.norm(x[..., a, :] - x[..., b, :], axis=-1)


@pytest.fixture(scope="module")
def mocap_clips(data_dir):
    """Two clips of each shared mocap skeleton in h36m-17 (by name), (C, 24, 17, 3) metres."""
    clips = []
    for name in ("bandai1", "cmu", "deepmimic"):
        f = read_motion_npz(data_dir / f"{name}.npz")
        for ci in (0, 1):
            clips.append(convert_keypoints(f.clip(ci)[:24].astype(np.float32), f.layout.name, "h36m-17"))
    return np.stack(clips)


def test_retarget_gives_h36m_proportions(mocap_clips):
    x = R.retarget_h36m(mocap_clips)
    assert np.allclose(R.thigh_length(x), 0.452, atol=0.015)  # the H36M subjects' mean thigh (hips moved, knees kept)
    thigh = 0.452  # the ratios are of the clip's thigh after scaling, before the hips moved
    assert np.allclose(_dist(x, R.L_HIP, R.R_HIP) / thigh, 0.60, atol=1e-4)
    assert np.allclose(_dist(x, R.L_SHOULDER, R.R_SHOULDER) / thigh, 0.67, atol=1e-4)
    assert np.allclose(_dist(x, R.PELVIS, R.THORAX) / thigh, 1.10, atol=1e-4)
    assert np.allclose(_dist(x, R.THORAX, R.NOSE) / thigh, 0.27, atol=1e-4)
    assert np.allclose(_dist(x, R.THORAX, R.HEAD) / thigh, 0.41, atol=1e-4)
    assert np.allclose(x[..., R.PELVIS, :], (x[..., R.L_HIP, :] + x[..., R.R_HIP, :]) / 2, atol=1e-6)
    assert np.allclose(x[..., R.THORAX, :], (x[..., R.L_SHOULDER, :] + x[..., R.R_SHOULDER, :]) / 2, atol=1e-6)
    # knees and feet stay where the mocap put them (after the size change); arms move rigidly
    pelvis = (mocap_clips[..., [R.L_HIP], :] + mocap_clips[..., [R.R_HIP], :]) / 2
    scaled = pelvis + (mocap_clips - pelvis) * (0.452 / R.thigh_length(mocap_clips))[:, None, None, None]
    assert np.allclose(x[..., [R.L_KNEE, R.R_ANKLE], :], scaled[..., [R.L_KNEE, R.R_ANKLE], :], atol=1e-5)
    for a, b in ((R.L_ELBOW, R.L_WRIST), (R.R_SHOULDER, R.R_ELBOW), (R.L_KNEE, R.L_ANKLE)):
        ratio = _dist(x, a, b) / _dist(mocap_clips, a, b)
        assert np.allclose(ratio, ratio[:, :1], atol=1e-4)  # one scale per clip: the body size
    # the face points sit in front of the thorax (the body's facing), the head above the nose
    forward = R.facing(x)
    assert np.all(np.sum((x[..., R.NOSE, :] - x[..., R.THORAX, :]) * forward, -1) > 0.05)
    up = x[..., R.THORAX, :] - x[..., R.PELVIS, :]
    assert np.all(np.sum((x[..., R.HEAD, :] - x[..., R.NOSE, :]) * up, -1) > 0)  # further up the body


def test_retarget_per_clip_proportions_and_limb_scaling(mocap_clips):
    rng = np.random.default_rng(0)
    props = R.draw_proportions(rng, len(mocap_clips))
    for key, (lo, hi) in R.PROPORTION_RANGES.items():
        assert np.all((props[key] >= lo) & (props[key] <= hi))
    x = R.retarget_h36m(mocap_clips, props)
    assert np.allclose(R.thigh_length(x), props["thigh"], rtol=0.04)
    width = _dist(x, R.L_HIP, R.R_HIP) / props["thigh"][:, None]
    assert np.allclose(width, props["hip_width"][:, None], atol=1e-4)
    upper = np.full((len(x), 4), 1.1)
    lower = np.full((len(x), 4), 0.9)
    y = R.scale_limbs(x, upper, lower)
    assert np.allclose(_dist(y, R.R_HIP, R.R_KNEE), 1.1 * _dist(x, R.R_HIP, R.R_KNEE), rtol=1e-5)
    assert np.allclose(_dist(y, R.L_ELBOW, R.L_WRIST), 0.9 * _dist(x, R.L_ELBOW, R.L_WRIST), rtol=1e-5)
    assert np.array_equal(y[..., R.THORAX, :], x[..., R.THORAX, :])


def test_pose_frame_normalisation_is_per_frame_invariant():
    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.uniform(100, 500, (2, 6, 17, 2)), np.ones((2, 6, 17, 1))], -1)
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] * rng.uniform(0.2, 5, (2, 6, 1, 1)) + rng.uniform(-900, 900, (2, 6, 1, 2))
    a, b = T.normalize_pose_frames(kp), T.normalize_pose_frames(moved)
    assert np.allclose(a, b, atol=1e-5)  # translation and scale of each frame are gone
    assert np.allclose(a[..., 0, :2], 0)  # the pelvis at the origin
    assert np.allclose(np.max(a[..., :2].max(-2) - a[..., :2].min(-2), -1), 2.0)  # box's larger side = 2
    missing = kp.copy()
    missing[0, 1, 5, 2] = 0  # one joint missing: zero, left out of the box
    missing[0, 2, 0, 2] = 0  # the pelvis missing: centred on the box
    missing[0, 3, 1:, 2] = 0  # one joint left: the clip's median scale
    out = T.normalize_pose_frames(missing)
    assert np.array_equal(out[0, 1, 5], [0, 0, 0])
    box = out[0, 2, 1:, :2]
    assert np.allclose((box.max(0) + box.min(0)) / 2, 0, atol=1e-6)
    assert np.isfinite(out).all() and np.allclose(out[0, 3, 0], [0, 0, 1])


def test_batched_noise_matches_its_units():
    rng = np.random.default_rng(2)
    x = np.zeros((64, 30, 17, 3), np.float32)
    x[..., 2] = 1
    quiet = T.add_noise_2d(x, rng, std=0.01, jitter_std=0.0)
    loud = T.add_noise_2d(x, np.random.default_rng(2), std=0.01, jitter_std=0.0, scale=3.0)
    assert quiet.shape == (64, 30, 17, 3) and quiet.dtype == np.float32
    assert np.allclose(loud[..., :2], 3 * quiet[..., :2], atol=1e-6)
    assert 0.007 < np.std(quiet[..., :2]) < 0.013
    # confidence comes from the displacement in the official units, whatever the scale
    d2c = dict(a=0.028, b=1.1, m=0.0, s=0.0)
    c1 = T.add_noise_2d(x, np.random.default_rng(3), std=0.01, jitter_std=0.0, d2c=d2c)
    c3 = T.add_noise_2d(x, np.random.default_rng(3), std=0.01, jitter_std=0.0, d2c=d2c, scale=3.0)
    assert np.allclose(c1[..., 2], c3[..., 2], atol=1e-6) and c1[..., 2].min() < 0.9


def test_views_see_the_subject_from_in_front_of_the_lens(mocap_clips):
    rng = np.random.default_rng(4)
    world = R.retarget_h36m(mocap_clips)
    points = view_batch(world, rng, DEFAULT_AUGMENT)
    assert points.shape == world.shape
    assert np.all(points[..., 2] > 1.0)  # every joint in front of the camera, > 1 m away
    assert np.allclose(_dist(points, R.L_HIP, R.R_KNEE), _dist(world, R.L_HIP, R.R_KNEE), atol=1e-4)  # rigid
    xy = points[..., :2] / points[..., 2:]
    assert np.all(np.abs(xy.mean(axis=(1, 2))) < 0.5)  # the subject is near the optical axis
    head_up = points[..., R.HEAD, 1] < points[..., R.L_ANKLE, 1]  # image y points down
    assert head_up.mean() > 0.9


def test_synthetic_dataset_batches(data_dir):
    files = [str(data_dir / "deepmimic.npz"), str(data_dir / "bandai1.npz")]
    train = SyntheticLiftDataset(files, frames=27, split="train", file_weights=[0.5, 0.5])
    items = train.__getitems__(list(range(32)))
    assert len(items) == 32
    assert items[0]["inputs"].shape == (27, 17, 3) and items[0]["target"].shape == (1, 17, 3)
    inputs = torch.stack([i["inputs"] for i in items])
    target = torch.stack([i["target"] for i in items])
    assert torch.isfinite(inputs).all() and torch.all(target[..., 0, :] == 0)
    assert inputs[..., 2].min() >= 0 and inputs[..., 2].max() <= 1
    assert (inputs[..., 2] == 0).any()  # dropped joints
    assert torch.all(inputs[..., 2:][inputs[..., 2:] == 0] == 0)
    missing = inputs[..., 2] == 0
    assert torch.all(inputs[..., :2][missing] == 0)
    bones = torch.linalg.norm(target[:, 0, 2] - target[:, 0, 1], dim=-1)  # thigh, metres
    assert 0.3 < bones.min() and bones.max() < 0.6
    again = train.__getitems__(list(range(32)))
    assert torch.equal(again[5]["inputs"], items[5]["inputs"])  # seeded by the indices
    assert not torch.equal(train.__getitems__(list(range(1, 33)))[0]["inputs"], items[1]["inputs"])

    test = SyntheticLiftDataset(files, frames=27, target="all", split="test", test_windows=16)
    assert len(test) == 16
    single = test[7]
    assert torch.equal(test.__getitems__([6, 7])[1]["inputs"], single["inputs"])  # fixed per index
    assert single["target"].shape == (27, 17, 3) and single["meta"]["source"] in {"deepmimic.npz", "bandai1.npz"}
    with pytest.raises(ValueError, match="unknown augment"):
        SyntheticLiftDataset(files, augment=dict(nosie_level=(0, 1)))
    with pytest.raises(ValueError, match="file_weights"):
        SyntheticLiftDataset(files, file_weights=[1.0])


def test_lift_uses_pose_frame_normalisation_and_zero_root(data_dir):
    import posezoo

    model = posezoo.create("tcn-s-81f-lift", channels=32, filter_widths=[3, 3]).eval()
    rng = np.random.default_rng(5)
    xy = rng.uniform(300, 400, (1, 17, 2)) + np.cumsum(rng.normal(0, 0.5, (40, 17, 2)), axis=0)  # slow motion
    kp = np.concatenate([xy, rng.uniform(0.5, 1, (40, 17, 1))], -1)
    big = kp.copy()
    big[..., :2] = kp[..., :2] * 3 + 1000  # same person, closer and elsewhere in a bigger image
    a = posezoo.lift(kp, layout="h36m-17", model=model)
    b = posezoo.lift(big, layout="h36m-17", model=model, image_size=(4000, 3000))
    assert np.allclose(a.poses[0], b.poses[0], atol=1e-5)  # no image size, no box: nothing changes
    assert np.array_equal(a.poses[0][:, 0], np.zeros((40, 3), np.float32))


def _standing_clips(n: int, frames: int = 40) -> np.ndarray:
    """(n, frames, 17, 3) a standing H36M-17 skeleton (Y up, facing +z, left at +x) walking along +z."""
    pose = np.zeros((17, 3), np.float32)
    for side, (hip, knee, ankle, shoulder, elbow, wrist) in ((1, (4, 5, 6, 11, 12, 13)), (-1, (1, 2, 3, 14, 15, 16))):
        x = 0.13 * side
        pose[[hip, knee, ankle]] = [[x, 0.92, 0], [x, 0.47, 0], [x, 0.02, 0]]
        pose[[shoulder, elbow, wrist]] = [[1.3 * x, 1.42, 0], [1.4 * x, 1.14, 0], [1.5 * x, 0.89, 0.05]]
    pose[[0, 7, 8, 9, 10]] = [[0, 0.92, 0], [0, 1.16, 0], [0, 1.42, 0], [0, 1.52, 0.08], [0, 1.62, 0]]
    clips = np.repeat(pose[None, None], n, 0).repeat(frames, 1)
    clips[..., 2] += np.linspace(0, 1.2, frames)[None, :, None]  # 1.2 m of travel
    return clips


def test_seat_bends_the_legs_keeps_bones_and_feet_on_the_floor():
    """seating.seat: bones keep their lengths; seated frames have the thighs forward and about level,
    the lower foot on the floor and the hips still; some clips sit down or stand up in the window."""
    from posezoo.data import seating
    from posezoo.losses import H36M_LIMBS

    clips = _standing_clips(96)
    seated = seating.seat(clips, np.random.default_rng(0))
    limbs = np.array(H36M_LIMBS)
    bones = lambda x: np.linalg.norm(x[..., limbs[:, 0], :] - x[..., limbs[:, 1], :], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bones(seated), bones(clips), atol=1e-5)
    np.testing.assert_allclose(seated[..., 7:, :] - seated[..., :1, :], clips[..., 7:, :] - clips[..., :1, :], atol=1e-6)

    thigh = seated[..., R.L_KNEE, :] - seated[..., R.L_HIP, :]  # (N, T, 3), length 0.45
    sitting = thigh[..., 2] > 0.4  # knee well in front of the hip
    standing = thigh[..., 1] < -0.44
    whole = sitting.all(axis=1)
    assert 0.3 < whole.mean() < 0.7  # half the clips seated throughout
    assert np.any(standing[:, 0] & sitting[:, -1]) and np.any(sitting[:, 0] & standing[:, -1])  # down and up

    s = seating.seat(clips[:8], np.random.default_rng(1), seatedness=np.ones((8, 40)))
    assert np.all(np.abs(s[..., R.L_KNEE, 1] - s[..., R.L_HIP, 1]) < 0.45 * np.cos(np.deg2rad(64)))
    np.testing.assert_allclose(s[..., [R.L_ANKLE, R.R_ANKLE], 1].min(axis=-1), 0.02, atol=1e-5)  # the floor
    assert np.all(s[..., 0, 1] < 0.75)  # hips at chair height, not standing height
    np.testing.assert_allclose(s[..., 0, [0, 2]], s[:, :1, 0, [0, 2]].repeat(40, 1), atol=1e-5)  # still
    untouched = seating.seat(clips[:2], np.random.default_rng(1), seatedness=np.zeros((2, 40)))
    np.testing.assert_allclose(untouched, clips[:2], atol=1e-6)


def test_detector_inputs_leave_out_whole_joints():
    """A share of clips lack one joint in every frame (as Stacked Hourglass's 16 joints lack the
    neck/nose), half of them the nose; without it no joint is missing throughout."""
    from posezoo.data.synthetic import detector_inputs

    rng = np.random.default_rng(1)
    points = rng.normal(0, 0.3, (400, 30, 17, 3)).astype(np.float32)
    points[..., 2] += 5.0
    quiet = dict(DEFAULT_AUGMENT, drop=0.0, occlusion=0.0)
    absent = (detector_inputs(points, rng, dict(quiet, absent=1.0))[..., 2] == 0).all(axis=1)  # (N, J)
    assert np.all(absent.sum(1) == 1)
    assert 0.4 < absent[:, R.NOSE].mean() < 0.65 and not absent[:, 0].any()
    assert not (detector_inputs(points, rng, dict(quiet, absent=0.0))[..., 2] == 0).any()


def test_face_points_place_torso_and_head_as_coco_layouts_do():
    """In a share of clips the thorax, spine and head become COCO's (mid-shoulders, mean of hips and
    shoulders, mid-eyes between the neck/nose and the head top); every other joint and every other
    clip is untouched, and a zero share draws nothing."""
    from posezoo.data.synthetic import face_points

    rng = np.random.default_rng(2)
    xy = rng.normal(0, 1, (2000, 5, 17, 2)).astype(np.float32)
    out = face_points(xy, rng, 0.3)
    changed = (out != xy).any(axis=(1, 3))  # (N, J)
    chosen = changed.any(axis=1)
    assert 0.26 < chosen.mean() < 0.34
    assert not changed[:, [j for j in range(17) if j not in (R.SPINE, R.THORAX, R.HEAD)]].any()
    c, o = xy[chosen], out[chosen]
    np.testing.assert_allclose(o[..., R.THORAX, :], (c[..., R.L_SHOULDER, :] + c[..., R.R_SHOULDER, :]) / 2, atol=1e-6)
    as_coco = [0] * 5 + [R.L_SHOULDER, R.R_SHOULDER] + [0] * 4 + [R.L_HIP, R.R_HIP] + [0] * 4  # COCO's slots
    coco = convert_keypoints(o[..., as_coco, :], "coco-17", "h36m-17")
    np.testing.assert_allclose(o[..., R.SPINE, :], coco[..., R.SPINE, :], atol=1e-6)
    along = (o[..., R.HEAD, :] - c[..., R.NOSE, :]) / (c[..., R.HEAD, :] - c[..., R.NOSE, :])  # per clip fraction
    assert np.allclose(along[..., 0], along[..., 1], atol=1e-3) and 0.2 <= along.min() and along.max() <= 0.7
    assert np.ptp(along[:, 0, 0]) > 0.4  # the fraction varies from clip to clip
    state = rng.bit_generator.state
    assert face_points(xy, rng, 0.0) is xy and rng.bit_generator.state == state
