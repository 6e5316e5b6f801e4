"""Keypoint layouts: registry, mirror pairs, names from the shared files, and conversions to
H36M-17 (the official MotionBERT rules reproduced against the data_utils fixture at 1e-10)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from posezoo.data.layouts import (H36M_17, KEYPOINT_CONVERSIONS, KEYPOINT_LAYOUTS, convert_keypoints,
                                  get_conversion, get_layout, guess_layout, normalise_joint_names)
from posezoo.data.readers import read_motion_npz

LAYOUTS = {"h36m-17": 17, "coco-17": 17, "halpe-26": 26, "openpose-25": 25, "mediapipe-33": 33,
           "bandai-21": 21, "cmu-38": 38, "deepmimic-15": 15}


def test_registered_layouts():
    assert set(LAYOUTS) <= set(KEYPOINT_LAYOUTS.names())
    for name, count in LAYOUTS.items():
        layout = get_layout(name)
        assert layout.num_joints == count and len(set(layout.joints)) == count
        if layout.parents is not None:  # a tree: one root, parents before nothing cyclic
            assert len(layout.parents) == count and layout.parents.count(-1) == 1
            for j in range(count):
                seen, k = set(), j
                while k != -1:
                    assert k not in seen
                    seen.add(k)
                    k = layout.parents[k]
    with pytest.raises(KeyError, match="known: .*coco-17"):
        get_layout("coco-18")


@pytest.mark.parametrize("name", LAYOUTS)
def test_mirror_pairs(name):
    layout = get_layout(name)
    mirror = layout.mirror
    assert all(mirror[mirror[j]] == j for j in range(layout.num_joints))  # an involution
    for j, joint in enumerate(layout.joints):
        if joint.startswith(("left_", "right_")):
            other = layout.joints[mirror[j]]
            assert other != joint and other.split("_", 1)[1] == joint.split("_", 1)[1]
        else:
            assert mirror[j] == j
    assert sum(j.startswith("left_") for j in layout.joints) == sum(j.startswith("right_") for j in layout.joints)


def test_h36m_mirror_is_the_official_one():
    left, right = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]
    expect = list(range(17))
    for a, b in zip(left, right):
        expect[a], expect[b] = b, a
    assert list(H36M_17.mirror) == expect


def test_normalise_joint_names():
    assert normalise_joint_names(["UpperArm_L", "Hips", "LShoulder", "RShoulder"]) == (
        "left_upper_arm", "hips", "left_shoulder", "right_shoulder")
    assert normalise_joint_names(["lhumerus", "rhumerus", "lowerback", "root", "mouth_left", "mouth_right"]) == (
        "left_humerus", "right_humerus", "lowerback", "root", "left_mouth", "right_mouth")
    with pytest.raises(ValueError, match="not unique"):
        normalise_joint_names(["Hand_L", "LHand"])


@pytest.mark.parametrize("file,layout", [("bandai1", "bandai-21"), ("bandai2", "bandai-21"), ("cmu", "cmu-38"),
                                         ("deepmimic", "deepmimic-15"), ("treadmill_openpose", "openpose-25")])
def test_layouts_match_the_shared_files(data_dir, file, layout):
    data = np.load(data_dir / f"{file}.npz")
    assert normalise_joint_names(data["joint_names"]) == get_layout(layout).joints
    if "parents" in data.files:
        assert tuple(data["parents"].tolist()) == get_layout(layout).parents


def test_halpe_and_coco_match_official_fixture(data_utils):
    got = convert_keypoints(data_utils["halpe26_pixels"], "halpe-26", "h36m-17")
    np.testing.assert_allclose(got, data_utils["halpe2h36m"], rtol=0, atol=1e-10)
    got = convert_keypoints(data_utils["coco17_xy"], "coco-17", "h36m-17")
    assert got.shape == (2, 27, 17, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, data_utils["coco2h36m"], rtol=0, atol=1e-10)
    got_t = convert_keypoints(torch.from_numpy(data_utils["coco17_xy"]), "coco-17", "h36m-17")
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.float64
    np.testing.assert_allclose(got_t.numpy(), data_utils["coco2h36m"], rtol=0, atol=1e-10)


def test_flip_matches_official_fixture(data_utils):
    x = data_utils["crop_scale_1_1"].astype(np.float32)
    np.testing.assert_array_equal(H36M_17.flip(x), data_utils["flip_data_of_crop_scale"])
    np.testing.assert_array_equal(H36M_17.flip(torch.from_numpy(x)).numpy(), data_utils["flip_data_of_crop_scale"])


@pytest.mark.parametrize("src", [n for n in LAYOUTS if n != "h36m-17"])
def test_conversion_commutes_with_flip(src):
    """A correct left/right mapping: converting a mirrored pose = mirroring the converted pose."""
    layout = get_layout(src)
    x = np.random.default_rng(0).normal(size=(4, layout.num_joints, 3))
    a = convert_keypoints(layout.flip(x), src, "h36m-17")
    b = H36M_17.flip(convert_keypoints(x, src, "h36m-17"))
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_conversion_rules_by_name():
    x = np.random.default_rng(1).normal(size=(25, 3))
    op = get_layout("openpose-25")
    y = convert_keypoints(x, "openpose-25", "h36m-17")
    j = op.index
    np.testing.assert_allclose(y[0], (x[j("left_hip")] + x[j("right_hip")]) / 2)
    np.testing.assert_allclose(y[10], (x[j("left_eye")] + x[j("right_eye")]) / 2)
    np.testing.assert_array_equal(y[13], x[j("left_wrist")])
    mp = np.random.default_rng(2).normal(size=(33, 2))
    np.testing.assert_array_equal(convert_keypoints(mp, "mediapipe-33", "h36m-17")[16], mp[16])  # right_wrist
    assert get_conversion("bandai-21", "h36m-17").approximate == ("spine", "thorax", "nose", "head")
    assert get_conversion("h36m-17", "h36m-17")(x[:17]).tolist() == x[:17].tolist()
    assert set(KEYPOINT_CONVERSIONS.names()) >= {f"{n}->h36m-17" for n in LAYOUTS if n != "h36m-17"}


def test_confidence_min_mode_and_nan_locality():
    x = np.random.default_rng(3).uniform(0.1, 1, size=(25, 3))
    op = get_layout("openpose-25")
    x[op.index("left_eye"), 2] = 0  # a missing eye makes the derived head missing
    mean = convert_keypoints(x, "openpose-25", "h36m-17")
    assert mean[10, 2] == pytest.approx(x[op.index("right_eye"), 2] / 2)  # official: averaged
    low = convert_keypoints(x, "openpose-25", "h36m-17", conf_mode="min")
    np.testing.assert_array_equal(low[10], 0)
    assert low[0, 2] == min(x[op.index("left_hip"), 2], x[op.index("right_hip"), 2])
    x[op.index("right_ear")] = np.nan  # unused by the conversion: must not leak
    assert np.isfinite(convert_keypoints(x, "openpose-25", "h36m-17")).all()


def test_wrong_joint_count_and_guess():
    with pytest.raises(ValueError, match=r"coco-17 keypoints need 17 joints.*\(5, 26, 3\)"):
        convert_keypoints(np.zeros((5, 26, 3)), "coco-17", "h36m-17")
    assert convert_keypoints(np.zeros((5, 26, 3)), None, "h36m-17").shape == (5, 17, 3)
    for name, count in LAYOUTS.items():
        if count != 17:
            assert guess_layout(count).name == name
    with pytest.raises(ValueError, match="ambiguous: coco-17, h36m-17"):
        guess_layout(17)
    with pytest.raises(ValueError, match="no keypoint layout has 99 joints"):
        guess_layout(99)
    with pytest.raises(KeyError, match="no keypoint conversion h36m-17->coco-17"):
        convert_keypoints(np.zeros((17, 2)), "h36m-17", "coco-17")


@pytest.mark.parametrize("file", ["bandai1", "cmu", "deepmimic"])
def test_mocap_conversions_are_anatomical(data_dir, file):
    """On real standing poses, converted joints are stacked head > thorax > pelvis > knee > ankle
    and the bone lengths are human."""
    m = read_motion_npz(data_dir / f"{file}.npz")
    pose = convert_keypoints(m.positions[: min(len(m.positions), 3000)].astype(np.float32),
                             m.layout.name, "h36m-17")
    y = np.median(pose[..., 1], axis=0)  # Y up
    j = H36M_17.index
    assert y[j("head")] > y[j("nose")] > y[j("thorax")] > y[j("spine")] > y[j("pelvis")] > y[j("right_knee")] > y[j("right_ankle")]
    thigh = np.median(np.linalg.norm(pose[:, j("left_hip")] - pose[:, j("left_knee")], axis=-1))
    assert 0.3 < thigh < 0.5
    np.testing.assert_allclose(pose[:, 0], (pose[:, j("left_hip")] + pose[:, j("right_hip")]) / 2,
                               atol=1e-6 if file != "deepmimic" else 0.1)
