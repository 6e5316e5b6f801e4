"""Human3.6M as users hold it: VideoPose3D's npz files (+ mmpose's cameras.pkl, else the published
calibration) and MotionBERT's pickle, written from the shared mocap (posezoo.data.h36m_files); the
camera of every view, missing views, the detectors' joint layouts, and the H36M recipes end to end
under the real Runner."""
from __future__ import annotations

import json

import numpy as np
import pytest

from posezoo.data import h36m_files as F
from posezoo.data.datasets import SH_16_TO_H36M_17, VideoPose3DH36MDataset
from posezoo.data.readers import H36M_CAMERAS, DataFormatError
from posezoo.data.transforms import denormalize_screen_coordinates
from tests.conftest import load_tool


@pytest.fixture(scope="module")
def subjects(data_dir):
    """Every bandai1 clip cut to 60 frames at 50 fps, as S1-S11 (held-out clips: S9, S11)."""
    return F.mocap_subjects([data_dir / "bandai1.npz"], max_frames=60)


@pytest.fixture(scope="module")
def cameras(subjects):
    return F.h36m_cameras(subjects)


def _write_2d(path, subjects, cameras, views=lambda s, a, v: v, joints=None, layout="h36m"):
    """A data_2d npz of the ground-truth projections, each entry's view list passed through ``views``."""
    tree = {}
    for s, actions in subjects.items():
        tree[s] = {}
        for a, world in actions.items():
            kp = [F.project(world.astype(np.float64), cameras[(s, c)])[1].astype(np.float32) for c in H36M_CAMERAS]
            if joints is not None:
                kp = [k[:, joints] for k in kp]
            tree[s][a] = views(s, a, kp)
    np.savez_compressed(path, positions_2d=tree, metadata={"layout_name": layout, "num_joints": len(kp[0][0])})
    return path


def _check_pairs(ds, subjects, cameras):
    """Every sequence's 2D is the projection of its 3D through the camera it is labelled with."""
    for seq in ds.sequences:
        m = seq["meta"]
        world = subjects[m["subject"]][m["action"]].astype(np.float64)
        _, pixels = F.project(world, cameras[(m["subject"], m["camera"])])
        xy = denormalize_screen_coordinates(seq["inputs"][..., :2], m["width"], m["height"])
        np.testing.assert_allclose(xy, pixels[:len(xy)], atol=0.05)


def test_videopose3d_views_pair_with_their_cameras(tmp_path, subjects, cameras):
    """Issue 16: a view list with a missing camera paired 2D with the wrong camera. A missing view
    (None, as VideoPose3D's scripts write it, or an empty array; or a camera left out of a dict) is
    skipped and listed; an action without 2D is skipped; a shorter list is refused."""
    paths = F.write_videopose3d_files(tmp_path, subjects, cameras)
    s11 = sorted(subjects["S11"])

    def views(s, a, kp):
        if s == "S11" and a == s11[0]:
            return [None, *kp[1:]]  # like S11 Directions' 54138969 in the SH detections
        if s == "S11" and a == s11[1]:
            return [kp[0], np.zeros((0, 17, 2), np.float32), kp[2], kp[3]]
        if s == "S9":
            return {H36M_CAMERAS[i]: kp[i] for i in (1, 3)}
        return kp

    two_d = _write_2d(tmp_path / "data_2d_h36m_gt.npz", subjects, cameras, views)
    ds = VideoPose3DH36MDataset(paths["data_3d"], two_d, paths["cameras"], split="test", clip_len=27, stride=27)
    _check_pairs(ds, subjects, cameras)
    by_action = {}
    for seq in ds.sequences:
        by_action.setdefault((seq["meta"]["subject"], seq["meta"]["action"]), []).append(seq["meta"]["camera"])
    assert by_action[("S11", s11[0])] == list(H36M_CAMERAS[1:])
    assert by_action[("S11", s11[1])] == [H36M_CAMERAS[i] for i in (0, 2, 3)]
    assert all(cams == [H36M_CAMERAS[1], H36M_CAMERAS[3]] for (s, _), cams in by_action.items() if s == "S9")
    assert f"S11 {s11[0]} {H36M_CAMERAS[0]}" in ds.metainfo["missing_views"]

    def no_action(s, a, kp):
        return kp
    tree_path = _write_2d(tmp_path / "gone.npz", {s: {a: w for a, w in acts.items() if a != s11[2]}
                                                  for s, acts in subjects.items()}, cameras, no_action)
    ds = VideoPose3DH36MDataset(paths["data_3d"], tree_path, paths["cameras"], split="test", clip_len=27)
    assert all(seq["meta"]["action"] != s11[2] for seq in ds.sequences)
    assert f"S11 {s11[2]} {H36M_CAMERAS[3]}" in ds.missing_views

    short = _write_2d(tmp_path / "short.npz", subjects, cameras, lambda s, a, kp: kp[1:] if s == "S9" else kp)
    with pytest.raises(DataFormatError, match="cannot say which camera"):
        VideoPose3DH36MDataset(paths["data_3d"], short, paths["cameras"], split="test", clip_len=27)


def _hamilton(a, b):
    """Quaternion product a * b, (w, x, y, z)."""
    w1, v1, w2, v2 = a[0], np.asarray(a[1:]), b[0], np.asarray(b[1:])
    return np.array([w1 * w2 - v1 @ v2, *(w1 * v2 + w2 * v1 + np.cross(v1, v2))])


def test_published_calibration_matches_the_quaternions_and_the_studio():
    """Human3.6M's own calibration, for VideoPose3D's files (which carry none): R is the rotation
    of the published quaternion (checked against q* (X - t) q), and every camera of every subject
    sits where the studio's are (transfer.md section 3: 1.46-1.63 m high, 4.1-5.7 m from the
    origin, looking 10.5-16 degrees down), with a person at the origin inside the image."""
    from posezoo.data.h36m_calibration import EXTRINSICS, h36m_calibration

    cams = h36m_calibration()
    assert sorted({s for s, _ in cams}) == ["S1", "S11", "S5", "S6", "S7", "S8", "S9"] and len(cams) == 28
    point = np.array([0.3, -0.2, 1.1])
    for (subject, cam_id), cam in cams.items():
        q, centre = EXTRINSICS[subject][H36M_CAMERAS.index(cam_id)]
        q = np.asarray(q) / np.linalg.norm(q)
        rotated = _hamilton(_hamilton(q * [1, -1, -1, -1], [0, *(point - np.asarray(centre) / 1000)]), q)[1:]
        np.testing.assert_allclose((point - cam["T"].ravel()) @ cam["R"], rotated, atol=1e-9)
        np.testing.assert_allclose(cam["R"].T @ cam["R"], np.eye(3), atol=1e-6)
        assert np.linalg.det(cam["R"]) == pytest.approx(1.0, abs=1e-6)
        height, ground = cam["T"][2, 0], np.linalg.norm(cam["T"][:2, 0])
        down = np.degrees(np.arcsin(-cam["R"][2, 2]))  # the optical axis (3rd column) below horizontal
        assert 1.45 <= height <= 1.64 and 4.1 <= ground <= 5.7 and 10.0 <= down <= 16.5, (subject, cam_id)
        body = (np.array([[0, 0, 0.0], [0, 0, 1.8]]) - cam["T"].ravel()) @ cam["R"]  # feet and head
        pixels = body[:, :2] / body[:, 2:] * cam["f"].ravel() + cam["c"].ravel()
        assert np.all(body[:, 2] > 3.5) and np.all((pixels > 0) & (pixels < [cam["w"], cam["h"]])), (subject, cam_id)
        assert 1140 < cam["f"].min() and cam["f"].max() < 1155


def test_videopose3d_files_alone_use_the_published_calibration(tmp_path, subjects):
    """VideoPose3D's two npz files and no cameras.pkl: the targets are moved into each camera with
    Human3.6M's published calibration, and the data sources say so; a cameras.pkl beside the npz
    files is read instead; a named one that does not exist is a clear error."""
    from posezoo.data.datasets import PUBLISHED_CALIBRATION
    from posezoo.data.h36m_calibration import h36m_calibration

    published = h36m_calibration()
    paths = F.write_videopose3d_files(tmp_path, subjects, published)
    paths["cameras"].unlink()
    ds = VideoPose3DH36MDataset(paths["data_3d"], paths["data_2d"], split="test", clip_len=27)
    assert ds.cameras == PUBLISHED_CALIBRATION
    assert ds.metainfo["sources"][-1]["file"] == PUBLISHED_CALIBRATION
    _check_pairs(ds, subjects, published)
    for seq in ds.sequences:
        m = seq["meta"]
        cam = published[(m["subject"], m["camera"])]
        points = (subjects[m["subject"]][m["action"]].astype(np.float64) - cam["T"].ravel()) @ cam["R"]
        np.testing.assert_allclose(seq["target"], (points - points[:, :1])[:len(seq["target"])], atol=1e-5)

    F.write_videopose3d_files(tmp_path, subjects, F.h36m_cameras(subjects))  # the stand-in's own cameras
    beside = VideoPose3DH36MDataset(paths["data_3d"], paths["data_2d"], split="test", clip_len=27)
    assert beside.cameras == str(paths["cameras"])
    assert not np.allclose(beside.sequences[0]["target"], ds.sequences[0]["target"], atol=1e-3)
    with pytest.raises(FileNotFoundError, match="elsewhere.pkl"):
        VideoPose3DH36MDataset(paths["data_3d"], paths["data_2d"], tmp_path / "elsewhere.pkl", split="test")


def test_videopose3d_detector_layouts(tmp_path, subjects, cameras):
    """Stacked Hourglass's 16 MPII joints and COCO detections become H36M-17 inputs."""
    paths = F.write_videopose3d_files(tmp_path, subjects, cameras)
    gt = VideoPose3DH36MDataset(paths["data_3d"], paths["data_2d"], paths["cameras"], split="test", clip_len=27)
    sh_order = [SH_16_TO_H36M_17.index(i) for i in range(16)]  # the SH file's joints, from H36M's
    sh = _write_2d(tmp_path / "data_2d_h36m_sh_ft_h36m.npz", subjects, cameras, joints=sh_order, layout="mpii")
    ds = VideoPose3DH36MDataset(paths["data_3d"], sh, paths["cameras"], split="test", clip_len=27)
    nose = 9
    keep = [j for j in range(17) if j != nose]
    np.testing.assert_allclose(ds.sequences[0]["inputs"][:, keep], gt.sequences[0]["inputs"][:, keep], atol=1e-6)
    assert np.all(ds.sequences[0]["inputs"][:, nose] == 0)
    from posezoo.data.layouts import convert_keypoints

    coco = {s: {a: w for a, w in acts.items()} for s, acts in subjects.items()}
    two_d = _write_2d(tmp_path / "coco.npz", coco, cameras, views=lambda s, a, kp: [
        np.concatenate([k, np.ones_like(k[..., :1])], -1)[:, [0] * 17] for k in kp], layout="coco")
    ds = VideoPose3DH36MDataset(paths["data_3d"], two_d, paths["cameras"], split="test", clip_len=27)
    seq = ds.sequences[0]["inputs"]
    raw = gt.sequences[0]["inputs"][:, [0] * 17]
    np.testing.assert_allclose(seq, convert_keypoints(raw, "coco-17", "h36m-17", conf_mode="min"), atol=1e-6)


def _run(recipe, options, tmp_path, monkeypatch, data):
    from mmengine.runner import Runner

    from posezoo.engine.runner import load_config, prepare

    monkeypatch.setenv("POSEZOO_H36M", str(data))
    monkeypatch.setenv("POSEZOO_H36M_2D", "gt")
    cfg = prepare(load_config(recipe, options), str(tmp_path / "work"), "none")
    Runner.from_cfg(cfg).train()
    return tmp_path / "work"


@pytest.mark.slow
def test_tcn_h36m_recipe_end_to_end(tmp_path, monkeypatch, subjects, cameras):
    """tcn-27f-lift-h36m on VideoPose3D-format files: trains, validates, tests; the saved model's
    meta names the data and its license, and the results' label follows overridden files."""
    data = tmp_path / "h36m"
    F.write_videopose3d_files(data, subjects, cameras)
    options = {"train_cfg.max_iters": 4, "train_dataloader.batch_size": 64, "val_dataloader.batch_size": 256,
               "model.model.channels": 32}
    work = _run("tcn-27f-lift-h36m", options, tmp_path, monkeypatch, data)
    saved = json.loads((work / "best" / "config.json").read_text())["meta"]
    assert saved["license"] == "Human3.6M license (research only)" and saved["code_license"] == "CC-BY-NC-4.0"
    assert [s["file"] for s in saved["data"]["sources"]] == ["data_3d_h36m.npz", "data_2d_h36m_gt.npz", "cameras.pkl"]
    tool = load_tool("test")
    base = ["tcn-27f-lift-h36m", "--checkpoint", str(work / "best"), "--work-dir", str(tmp_path / "test"),
            "--cfg-options", "model.model.channels=32", "test_dataloader.dataset.stride=9"]
    got = tool.main(base)
    assert got["dataset"].startswith("Human3.6M protocol 1") and 0 < got["metrics"]["pose/mpjpe"]["value"] < 1000
    (data / "data_2d_h36m_mine.npz").write_bytes((data / "data_2d_h36m_gt.npz").read_bytes())
    other = tool.main(base + [f"test_dataloader.dataset.data_2d={data / 'data_2d_h36m_mine.npz'}"])
    assert "data_2d_h36m_mine.npz" in other["dataset"] and "overridden" in other["dataset"]
    assert other["metrics"]["pose/mpjpe"]["value"] == pytest.approx(got["metrics"]["pose/mpjpe"]["value"])


@pytest.mark.slow
def test_dstformer_h36m_recipe_end_to_end(tmp_path, monkeypatch, subjects, cameras):
    """dstformer-lift-h36m-small on a MotionBERT-format pickle, read through the restricted unpickler."""
    data = tmp_path / "h36m"
    F.write_motionbert_pickle(data / "h36m_sh_conf_cam_source_final.pkl", subjects, cameras)
    options = {"train_cfg.max_iters": 2, "train_dataloader.batch_size": 8, "val_dataloader.batch_size": 64,
               "model.model.depth": 1, "model.model.dim_feat": 16, "model.model.dim_rep": 16,
               "model.model.num_heads": 2}
    work = _run("dstformer-lift-h36m-small", options, tmp_path, monkeypatch, data)
    saved = json.loads((work / "last" / "config.json").read_text())["meta"]
    assert saved["data"]["sources"][0]["file"] == "h36m_sh_conf_cam_source_final.pkl"


@pytest.mark.slow
def test_learning_curve_of_h36m_recipes(tmp_path, monkeypatch, data_dir, subjects, cameras):
    """tools/lift_curve.py --setting h36m: mlp-lift-h36m trains through tools/train.py on
    VideoPose3D-format files, its curve and the single-frame ridge floor land in curves.csv."""
    import csv

    data = tmp_path / "h36m"
    F.write_videopose3d_files(data, subjects, cameras)
    monkeypatch.setenv("POSEZOO_H36M", str(data))
    monkeypatch.setenv("POSEZOO_H36M_2D", "gt")
    monkeypatch.setenv("POSEZOO_DATA", str(data_dir))  # the tool sets it from --data for its recipes
    load_tool("lift_curve").main(["mlp-lift-h36m", "--setting", "h36m", "--iters", "4", "--points", "2",
                        "--ridge-windows", "2000", "--out", str(tmp_path / "curves")])
    out = tmp_path / "curves" / "h36m"
    # plain newlines, so that rows appended by hand or by other tools stay rows
    assert b"\r" not in (out / "curves.csv").read_bytes()
    assert b"\r" not in (out / "mlp-lift-h36m" / "curve.csv").read_bytes()
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["recipe"], int(r["iter"])) for r in rows] == [("mlp-lift-h36m", 2), ("mlp-lift-h36m", 4),
                                                              ("ridge (floor)", 0)]
    assert all(0 < float(r["pose/mpjpe"]) < 2000 for r in rows)
    # the ridge floor is fitted on single frames: better than a pose of zeros, worse than perfect
    assert 1 < float(rows[-1]["pose/p_mpjpe"]) < float(rows[-1]["pose/mpjpe"]) < 300
    assert (out / "curves.png").stat().st_size > 10_000


def test_learning_curve_runs_each_recipe_as_shipped_unless_told():
    """Without --iters every recipe trains its own schedule (the DSTformer's batch-16 steps are
    twice the TCN's count); --iters sets one length for all. Either way, validated --points times."""
    tool = load_tool("lift_curve")
    own = tool.curve_options("dstformer-lift-h36m-small", None, 12, {})
    assert own == {"train_cfg.max_iters": 6000, "train_cfg.val_interval": 500}
    assert tool.curve_options("tcn-27f-lift-h36m", None, 12, {"x": 1}) == {
        "x": 1, "train_cfg.max_iters": 3000, "train_cfg.val_interval": 250}
    assert tool.curve_options("dstformer-lift-h36m-small", 40, 6, {}) == {
        "train_cfg.max_iters": 40, "train_cfg.val_interval": 6}


def test_motionbert_pickle_from_mocap_is_consistent(tmp_path, subjects, cameras):
    """The written pickle's 2.5D targets are the camera-frame pose to within weak perspective."""
    from posezoo.data.datasets import MotionBERTH36MDataset

    path = F.write_motionbert_pickle(tmp_path / "mb.pkl", subjects, cameras)
    ds = MotionBERTH36MDataset(path, split="test", clip_len=27)
    vp = F.write_videopose3d_files(tmp_path, subjects, cameras)
    ref = VideoPose3DH36MDataset(vp["data_3d"], vp["data_2d"], vp["cameras"], split="test", clip_len=27)
    a, b = ds.sequences[0], ref.sequences[0]
    assert a["meta"]["camera"] == b["meta"]["camera"]
    err = np.linalg.norm(a["target"] - b["target"], axis=-1).mean()
    assert err < 0.03  # metres: weak perspective of a ~1.8 m body 4-6 m away


def test_lift_scored_end_to_end_on_h36m_files(tmp_path, data_dir):
    """tools/lift_h36m.py: posezoo.lift on VideoPose3D-format files, the issues' benchmark protocol.
    The 2D is given back in pixels exactly as projected; the Stacked-Hourglass-like file has 16
    joints and lacks the neck/nose; the default lifter scores far below a broken pairing's error,
    and the JSON's per-video rows add up to the frames scored."""
    from posezoo.evaluation.lift_eval import h36m_videos

    subjects = F.mocap_subjects([data_dir / "bandai1.npz"], max_frames=60, split_rule="auto", retarget=True)
    cameras = F.h36m_cameras(subjects)
    test_only = {s: a for s, a in subjects.items() if s in ("S9", "S11")}
    F.write_videopose3d_files(tmp_path, test_only, cameras)
    sh = F.write_detected_2d(tmp_path, test_only, cameras, seed=3)
    videos, missing = h36m_videos(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz",
                                  tmp_path / "cameras.pkl")
    assert not missing and len(videos) == 4 * sum(len(a) for a in test_only.values())
    for v in videos[:8]:
        _, pixels = F.project(test_only[v.subject][v.action].astype(np.float64), cameras[(v.subject, v.camera)])
        np.testing.assert_allclose(v.keypoints[..., :2], pixels, atol=0.05)
        assert v.size == (1000, 1002) and np.all(v.keypoints[..., 2] == 1)
    stored = np.load(sh, allow_pickle=True)["positions_2d"].item()
    assert stored["S9"][sorted(stored["S9"])[0]][0].shape[1:] == (16, 2)
    sh_videos, _ = h36m_videos(tmp_path / "data_3d_h36m.npz", sh, tmp_path / "cameras.pkl")
    assert np.all(sh_videos[0].keypoints[:, 9] == 0) and np.all(sh_videos[0].keypoints[:, 10, 2] == 1)
    face, _ = h36m_videos(tmp_path / "data_3d_h36m.npz", F.write_face_points_2d(tmp_path, test_only, cameras),
                          tmp_path / "cameras.pkl")
    moved = np.abs(face[0].keypoints - videos[0].keypoints).max(axis=(0, 2)) > 0.5  # pixels
    assert list(np.flatnonzero(moved)) == [7, 8, 10]  # spine, thorax, head

    tool = load_tool("lift_h36m")
    out = tmp_path / "gt.json"
    assert tool.main([str(tmp_path), "--out", str(out)]) == 0
    result = json.loads(out.read_text())["results"]["tcn-s-81f-lift.mocap"]
    assert result["frames"] == sum(len(v.keypoints) for v in videos) == sum(r["frames"] for r in result["videos"])
    assert 5 < result["p_mpjpe"] < result["mpjpe"] < 80  # a wrong pairing or unit is hundreds of mm
