"""Readers on tiny files written in the real formats (VideoPose3D npz, MotionBERT pickle, pyskl
pickle, AMASS npz, mmpose cameras.pkl, the shared motion npz), and their early, clear errors."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from posezoo.data import readers as R
from posezoo.data.datasets import MotionBERTH36MDataset, NTUActionDataset, VideoPose3DH36MDataset
from posezoo.data.layouts import convert_keypoints


def _motionbert_split(rng, sources, cameras):
    n = len(sources)
    return {
        "joint_2d": rng.uniform(0, 1000, (n, 17, 2)), "confidence": rng.uniform(0, 1, (n, 17, 1)),
        "joint3d_image": rng.uniform(0, 1000, (n, 17, 3)), "joints_2.5d_image": rng.uniform(-900, 900, (n, 17, 3)),
        "2.5d_factor": rng.uniform(3, 5, n), "camera_name": np.array(cameras), "action": ["Walking"] * n,
        "source": sources,
    }


@pytest.fixture()
def motionbert_pkl(tmp_path):
    rng = np.random.default_rng(0)
    train_src = ["s_01_act_02_subact_01_ca_01"] * 30 + ["s_01_act_02_subact_01_ca_02"] * 10
    test_src = ["s_09_act_02_subact_01_ca_01"] * 25
    data = {"train": _motionbert_split(rng, train_src, ["54138969"] * 30 + ["55011271"] * 10),
            "test": _motionbert_split(rng, test_src, ["60457274"] * 25)}
    path = tmp_path / "h36m_sh_conf_cam_source_final.pkl"
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path, data


def test_motionbert_pickle_and_dataset(motionbert_pkl):
    path, data = motionbert_pkl
    got = R.read_motionbert_h36m(path)
    np.testing.assert_array_equal(got["train"]["joint_2d"], data["train"]["joint_2d"])
    ds = MotionBERTH36MDataset(path, split="train", clip_len=9, stride=3, flip=False)
    # video 1 (30 frames): windows 0, 3, ..., 21 -> 8; video 2 (10 frames): 0 -> 1
    assert len(ds) == 9
    item = ds[1]
    src = data["train"]
    xy = src["joint_2d"][3:12] / 1000 * 2 - [1, 1002 / 1000]  # camera 54138969 is 1000 x 1002
    np.testing.assert_allclose(item["inputs"][..., :2].numpy(), xy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item["inputs"][..., 2].numpy(), src["confidence"][3:12, :, 0], rtol=1e-6)
    mm = src["joints_2.5d_image"][3:12]
    np.testing.assert_allclose(item["target"].numpy(), (mm - mm[:, :1]) / 1000, atol=1e-6)
    np.testing.assert_allclose(item["meta"]["factor_2_5d"].numpy(), src["2.5d_factor"][3:12], rtol=1e-6)
    assert item["meta"]["camera"] == "54138969" and item["meta"]["start"] == 3
    norm = MotionBERTH36MDataset(path, split="train", clip_len=9, stride=3, flip=False, target="normalised")
    j3d = src["joint3d_image"][3:12]
    expect = np.concatenate([j3d[..., :2] / 1000 * 2 - [1, 1.002], j3d[..., 2:] / 1000 * 2], -1)
    np.testing.assert_allclose(norm[1]["target"].numpy(), expect - expect[:, :1], atol=1e-5)
    gt = MotionBERTH36MDataset(path, split="train", clip_len=9, stride=3, flip=False, gt_2d=True)[1]
    np.testing.assert_allclose(gt["inputs"][..., :2].numpy(), expect[..., :2], rtol=1e-5, atol=1e-6)
    assert torch.all(gt["inputs"][..., 2] == 1) and torch.equal(gt["target"], item["target"])
    test = MotionBERTH36MDataset(path, split="test", clip_len=40)  # shorter video: one resampled clip
    assert len(test) == 1 and test[0]["inputs"].shape == (40, 17, 3) and test[0]["meta"]["start"] == -1
    assert torch.equal(test[0]["inputs"], test[0]["inputs"])


def test_motionbert_pickle_errors(tmp_path, motionbert_pkl):
    _, data = motionbert_pkl
    bad = {"train": {k: v for k, v in data["train"].items() if k != "2.5d_factor"}, "test": data["test"]}
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(R.DataFormatError, match="2.5d_factor"):
        R.read_motionbert_h36m(tmp_path / "bad.pkl")
    nan = pickle.loads(pickle.dumps(data))
    nan["test"]["joint_2d"][3, 4, 1] = np.nan
    (tmp_path / "nan.pkl").write_bytes(pickle.dumps(nan))
    with pytest.raises(R.DataFormatError, match=r"NaN.*\(3, 4, 1\)"):
        R.read_motionbert_h36m(tmp_path / "nan.pkl")
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        R.read_motionbert_h36m(tmp_path / "missing.pkl")
    (tmp_path / "text.pkl").write_text("not a pickle")
    with pytest.raises(R.DataFormatError, match="not a readable pickle"):
        R.read_motionbert_h36m(tmp_path / "text.pkl")


class _Exploit:
    """A pickle that would run a shell command when loaded by the plain unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    marker = tmp_path / "ran"
    path.write_bytes(pickle.dumps({"train": _Exploit(marker)}))
    with pytest.raises(R.DataFormatError, match="refusing to unpickle posix.system"):
        R.load_pickle(path)
    evil_npz = tmp_path / "data_3d_h36m.npz"
    np.savez(evil_npz, positions_3d=np.array(_Exploit(marker), dtype=object))
    with pytest.raises(R.DataFormatError, match="refusing"):
        R.read_videopose3d_3d(evil_npz)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_reads_numpy(tmp_path, protocol):
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(["x", "yz"]),
           "o": np.array(["p", 1], dtype=object), "f": np.float64(2.5), "l": [np.int64(3)]}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = R.load_pickle(path)
    np.testing.assert_array_equal(got["a"], obj["a"])
    assert got["s"].tolist() == ["x", "yz"] and got["o"].tolist() == ["p", 1] and got["f"] == 2.5


def _h36m_cameras():
    cams = {}
    for s in ("S1", "S9"):
        for i, cam_id in enumerate(R.H36M_CAMERAS):
            a = 0.4 * i
            rot = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
            cams[(s, cam_id)] = dict(R=rot, T=np.array([[0.5 * i], [-1.0], [4.0]]), f=np.array([[1145.0], [1144.0]]),
                                     c=np.array([[512.0], [515.0]]), k=np.zeros((3, 1)), p=np.zeros((2, 1)),
                                     w=1000, h=R.H36M_RESOLUTION[cam_id][1], name=cam_id)
    return cams


def test_videopose3d_npz_and_dataset(tmp_path):
    rng = np.random.default_rng(1)
    world = {s: {"Walking 1": rng.normal(size=(20, 32, 3)), "Eating": rng.normal(size=(12, 32, 3))}
             for s in ("S1", "S9")}
    det = {s: {a: [rng.uniform(0, 1000, (len(v) + 2, 17, 2)) for _ in range(4)] for a, v in acts.items()}
           for s, acts in world.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(tmp_path / "data_3d_h36m.npz", positions_3d=world)
    np.savez_compressed(tmp_path / "data_2d_h36m_cpn.npz", positions_2d=det, metadata=meta)
    (tmp_path / "cameras.pkl").write_bytes(pickle.dumps(_h36m_cameras()))
    got3d = R.read_videopose3d_3d(tmp_path / "data_3d_h36m.npz")
    np.testing.assert_array_equal(got3d["S1"]["Eating"], world["S1"]["Eating"])
    got2d, got_meta = R.read_videopose3d_2d(tmp_path / "data_2d_h36m_cpn.npz")
    assert got_meta == meta and len(got2d["S9"]["Walking 1"]) == 4
    ds = VideoPose3DH36MDataset(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_cpn.npz",
                                tmp_path / "cameras.pkl", split="test", subjects=["S9"], clip_len=10, stride=10)
    # S9: Eating (12 frames -> 1 window) and Walking 1 (20 -> 2), 4 cameras each
    assert len(ds) == 12
    item, seq = ds[0], ds.sequences[0]
    assert seq["meta"]["action"] == "Eating" and seq["meta"]["camera"] == "54138969"
    cam = _h36m_cameras()[("S9", "54138969")]
    pts = (world["S9"]["Eating"][:10, list(R.H36M_32_TO_17)] - cam["T"].reshape(3)) @ cam["R"]
    np.testing.assert_allclose(item["target"].numpy(), pts - pts[:, :1], atol=1e-5)
    xy = det["S9"]["Eating"][0][:10] / 1000 * 2 - [1, 1.002]
    np.testing.assert_allclose(item["inputs"][..., :2].numpy(), xy, atol=1e-5)
    assert torch.all(item["inputs"][..., 2] == 1)


def test_videopose3d_wrong_format(tmp_path):
    np.savez(tmp_path / "x.npz", other=np.zeros(3))
    with pytest.raises(R.DataFormatError, match="positions_3d"):
        R.read_videopose3d_3d(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", positions_3d={"S1": {"Walk": np.zeros((5, 16, 3))}})
    with pytest.raises(R.DataFormatError, match=r"\(T, 32\|17, 3\), got \(5, 16, 3\)"):
        R.read_videopose3d_3d(tmp_path / "y.npz")
    (tmp_path / "z.npz").write_text("nope")
    with pytest.raises(R.DataFormatError, match="not a numpy .npz"):
        R.read_videopose3d_3d(tmp_path / "z.npz")


def _pyskl(rng):
    def ann(name, label, m, t):
        return dict(frame_dir=name, label=label, img_shape=(1080, 1920), original_shape=(1080, 1920),
                    total_frames=t, keypoint=rng.uniform(0, 1080, (m, t, 17, 2)).astype(np.float32),
                    keypoint_score=rng.uniform(0, 1, (m, t, 17)).astype(np.float32))
    anns = [ann("S001C001P001R001A001", 0, 1, 40), ann("S001C001P001R001A050", 49, 2, 30),
            ann("S002C001P003R001A001", 0, 1, 25)]
    return {"split": {"xsub_train": [a["frame_dir"] for a in anns[:2]], "xsub_val": [anns[2]["frame_dir"]]},
            "annotations": anns}


def test_pyskl_reader_and_ntu_dataset(tmp_path):
    data = _pyskl(np.random.default_rng(2))
    path = tmp_path / "ntu60_hrnet.pkl"
    path.write_bytes(pickle.dumps(data))
    assert R.read_pyskl(path)["split"]["xsub_val"] == ["S002C001P003R001A001"]
    ds = NTUActionDataset(path, split="xsub_val", clip_len=50)
    item = ds[0]
    assert item["inputs"].shape == (2, 50, 17, 3) and item["label"] == 0
    assert torch.equal(item["inputs"], ds[0]["inputs"])  # test items are deterministic
    # The official pipeline, step by step, for this test item (scale_range [2, 2]: no randomness)
    a = data["annotations"][2]
    cam = a["keypoint"].astype(np.float64) / 1920 * 2 - 1
    xy = convert_keypoints(cam, "coco-17", "h36m-17")
    idx = np.linspace(0, 25, 50, endpoint=False, dtype=int)
    motion = np.concatenate([xy[:, idx], a["keypoint_score"][:, idx, :, None]], -1)
    motion = np.concatenate([motion, np.zeros_like(motion)])
    valid = motion[motion[..., 2] != 0][:, :2]
    lo, hi = valid.min(0), valid.max(0)
    scale = (hi - lo).max() * 2
    expect = motion.copy()
    expect[..., :2] = ((motion[..., :2] - (lo + hi - scale) / 2) / scale - 0.5) * 2
    np.testing.assert_allclose(item["inputs"].numpy(), np.clip(expect, -1, 1), atol=1e-6)
    assert np.all(item["inputs"][1, ..., 2].numpy() == 0)  # the zero second person keeps conf 0
    train = NTUActionDataset(path, split="xsub_train", clip_len=50)
    assert len(train) == 2 and train[1]["label"] == 49 and train[1]["inputs"].shape == (2, 50, 17, 3)
    with pytest.raises(ValueError, match="xsub_val"):
        NTUActionDataset(path, split="xview_train")


def test_pyskl_bad_shapes(tmp_path):
    data = _pyskl(np.random.default_rng(3))
    data["annotations"][1]["keypoint"] = data["annotations"][1]["keypoint"][:, :10]
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(R.DataFormatError, match=r"\(M, T=30, V, C\)"):
        R.read_pyskl(tmp_path / "p.pkl")


def test_amass_npz(tmp_path):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "seq_poses.npz", poses=rng.normal(size=(8, 156)), trans=rng.normal(size=(8, 3)),
             betas=rng.normal(size=16), mocap_framerate=np.array(120.0), gender=np.array("female"))
    got = R.read_amass_npz(tmp_path / "seq_poses.npz")
    assert got["poses"].shape == (8, 156) and got["mocap_framerate"] == 120.0 and str(got["gender"]) == "female"
    np.savez(tmp_path / "bad.npz", poses=np.zeros((8, 156)), trans=np.zeros((7, 3)), betas=np.zeros(16),
             mocap_framerate=np.array(60.0))
    with pytest.raises(R.DataFormatError, match="trans"):
        R.read_amass_npz(tmp_path / "bad.npz")


def _motion_npz(path, positions, **extra):
    fields = dict(positions=positions, clip_offsets=np.array([0, 3, len(positions)]),
                  clip_names=np.array(["a_001", "a_002"]),
                  joint_names=np.array(["root", "chest", "neck", "right_hip", "right_knee", "right_ankle",
                                        "right_shoulder", "right_elbow", "right_wrist", "left_hip", "left_knee",
                                        "left_ankle", "left_shoulder", "left_elbow", "left_wrist"]),
                  fps=np.array([30.0, 60.0], np.float32), meta_json=np.array('{"units": "meters"}'))
    fields.update(extra)
    np.savez(path, **fields)
    return path


def test_motion_npz_tiny(tmp_path):
    pos = np.random.default_rng(5).normal(size=(7, 15, 3)).astype(np.float32)
    m = R.read_motion_npz(_motion_npz(tmp_path / "ok.npz", pos, label_content=np.array(["walk", "run"])))
    assert m.layout.name == "deepmimic-15" and m.num_clips == 2 and m.clip_length(1) == 4
    np.testing.assert_array_equal(m.clip(1), pos[3:])
    assert m.labels["content"].tolist() == ["walk", "run"] and m.fps.tolist() == [30.0, 60.0]
    bad = pos.copy()
    bad[5, 2, 0] = np.inf
    with pytest.raises(R.DataFormatError, match=r"NaN/inf.*\(5, 2, 0\)"):
        R.read_motion_npz(_motion_npz(tmp_path / "nan.npz", bad))
    with pytest.raises(R.DataFormatError, match="clip_offsets"):
        R.read_motion_npz(_motion_npz(tmp_path / "off.npz", pos[:6], clip_offsets=np.array([0, 3, 7])))
    with pytest.raises(R.DataFormatError, match="no registered keypoint layout"):
        R.read_motion_npz(_motion_npz(tmp_path / "names.npz", pos[:, :3], joint_names=np.array(["a", "b", "c"])))
    with pytest.raises(R.DataFormatError, match="lacks.*clip_offsets"):
        np.savez(tmp_path / "keys.npz", positions=pos)
        R.read_motion_npz(tmp_path / "keys.npz")


def test_shared_motion_files(data_dir):
    expect = {"bandai1": ("bandai-21", 174, 30.0), "bandai2": ("bandai-21", 2902, 30.0),
              "cmu": ("cmu-38", 38, 120.0), "deepmimic": ("deepmimic-15", 15, None),
              "treadmill_openpose": ("openpose-25", 3, 23.98)}
    for name, (layout, clips, fps) in expect.items():
        m = R.read_motion_npz(data_dir / f"{name}.npz")
        assert (m.layout.name, m.num_clips) == (layout, clips)
        assert m.is_2d == (name == "treadmill_openpose")
        if fps is not None:
            assert np.allclose(m.fps, fps, atol=1e-3)
    assert R.read_motion_npz(data_dir / "bandai2.npz") is R.read_motion_npz(data_dir / "bandai2.npz")  # cached


def test_noise_params_reader(tmp_path):
    torch.save({"mean": torch.zeros(17, 2), "std": torch.full((17, 2), 0.01), "weight": torch.ones(17)},
               tmp_path / "synthetic_noise.pth")
    (tmp_path / "d2c_params.pkl").write_bytes(pickle.dumps({"a": 0.5, "b": 0.1, "m": 0.0, "s": 0.05}))
    params = R.read_motionbert_noise_params(tmp_path / "synthetic_noise.pth", tmp_path / "d2c_params.pkl")
    assert params["std"].shape == (17, 2) and params["d2c"] == {"a": 0.5, "b": 0.1, "m": 0.0, "s": 0.05}
