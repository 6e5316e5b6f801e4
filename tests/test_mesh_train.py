"""Mesh recovery training under mmengine on a synthetic SMPL body model (the real one is licensed):
AMASS-format clips posed and projected by AMASSMeshDataset (checked against posing the world
directly), MotionBERT's MeshLoss in MeshTask, the errors before training, and tools/train.py +
tools/test.py on the dstformer-mesh-small recipe."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from posezoo import losses as L
from posezoo.data.datasets import (Z_UP_TO_Y_UP, AMASSMeshDataset, _item_rng, project_clip, sample_camera,
                                   screen_inputs)
from posezoo.data.readers import DataFormatError
from posezoo.engine.hooks import check_dataset
from posezoo.engine.runner import check_paths, load_config
from posezoo.engine.tasks import MeshTask
from posezoo.models.mesh import SMPLBody, axis_angle_to_rotmat, flip_thetas
from tests.conftest import load_tool, write_body_model

pytest.importorskip("smplx")  # poses the body model

TINY = dict(name="dstformer-mesh", dim_feat=16, dim_rep=16, depth=1, num_heads=2, mlp_ratio=2, maxlen=16,
            hidden_dim=32)


def write_amass(folder: Path, clips: int = 8, seed: int = 0) -> Path:
    """AMASS-format clips (SMPL-H poses (T, 156), 16 betas, trans, 60 fps), smooth random motion."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        n = 40 + 8 * i
        t = np.arange(n)[:, None] / 60.0
        poses = rng.normal(size=156) * 0.2 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0, 156) * t
                                                          + rng.uniform(0, 6.3, 156))
        trans = np.concatenate([0.5 * t, 0.1 * np.sin(t), 0.9 + 0 * t], axis=1)  # walking along x, Z up
        np.savez(folder / f"clip_{i:02d}_poses.npz", poses=poses, betas=rng.normal(size=16), trans=trans,
                 mocap_framerate=60.0, gender="neutral")
    return folder


@pytest.fixture(scope="module")
def mesh_data(tmp_path_factory):
    """(folder, body model file, regressor file, amass folder): $POSEZOO_DATA and $POSEZOO_SMPL layout."""
    root = tmp_path_factory.mktemp("mesh")
    body, regressor, _ = write_body_model(root, suffix=".pkl")
    return root, body, regressor, write_amass(root / "amass")


def dataset(mesh_data, **kwargs) -> AMASSMeshDataset:
    _, body, regressor, amass = mesh_data
    return AMASSMeshDataset(str(amass), str(body), str(regressor), **{"split": "test", "test_every": 2, **kwargs})


def camera_of(ds: AMASSMeshDataset, index: int) -> tuple:
    """The item's window, its camera and the Y-up world root (centred), drawn as the dataset does."""
    ci, start = ds.items[index]
    clip, frames = ds.clips[ci], np.arange(start, start + ds.clip_len)
    root = (clip["trans"][frames] + clip["rest_root"]) @ Z_UP_TO_Y_UP.T
    offset = np.array([root[:, 0].mean(), 0.0, root[:, 2].mean()])
    travel = np.linalg.norm((root - offset)[:, [0, 2]], axis=-1).max()
    return clip, frames, sample_camera(_item_rng(ds.seed, index, False), {}, float(travel)), root - offset, offset


def test_dataset_poses_and_projects_like_the_world(mesh_data):
    """The one body-model pass per item (camera-frame orientation, root moved back) equals posing the
    Z-up world clip directly, turning it Y up, centring it and projecting it with the item's camera."""
    _, body_path, regressor, _ = mesh_data
    ds = dataset(mesh_data, flip=False, seed=3)
    train = dataset(mesh_data, split="train")
    assert not {c["name"] for c in ds.clips} & {c["name"] for c in train.clips}  # split by clip
    assert len(ds.clips) + len(train.clips) == 8 and len(ds) >= len(ds.clips)
    body = SMPLBody(body_path, regressor)
    for index in (0, len(ds) - 1):
        item = ds[index]
        clip, frames, camera, _, offset = camera_of(ds, index)
        assert item["inputs"].shape == (16, 17, 3) and item["target"]["theta"].shape == (16, 82)
        assert item["target"]["verts"].shape == (16, 40, 3) and item["target"]["kp_3d"].shape == (16, 17, 3)
        posed = body(torch.from_numpy(clip["betas"]).expand(16, -1), torch.from_numpy(clip["pose"][frames]))
        world = (posed["kp_3d"].double().numpy() / 1000 + clip["trans"][frames][:, None]) @ Z_UP_TO_Y_UP.T
        inputs, points = project_clip(world - offset, camera)
        np.testing.assert_allclose(item["inputs"].numpy(), inputs, atol=1e-6)
        assert item["inputs"][..., 2].mean() > 0.9  # the subject is in view
        kp = item["target"]["kp_3d"].double().numpy()
        np.testing.assert_allclose(kp - kp[:, :1], (points - points[:, :1]) * 1000, atol=1e-3)
        assert item["meta"]["clip"] == clip["name"] and item["meta"]["fps"] == 30.0


def test_flip_mirrors_the_scene(mesh_data):
    """A flipped item: the mirrored SMPL pose, posed, with its root at the mirrored camera-frame position."""
    _, body_path, regressor, _ = mesh_data
    plain, flipping = dataset(mesh_data, flip=False), dataset(mesh_data, flip=True)
    flipped = [i for i in range(len(flipping)) if flipping[i]["meta"]["flipped"]]
    assert flipped and len(flipped) < len(flipping)
    body = SMPLBody(body_path, regressor)
    for i in flipped[:2]:
        a, b = plain[i], flipping[i]
        torch.testing.assert_close(b["target"]["theta"][:, :72], flip_thetas(a["target"]["theta"][:, :72]))
        clip, _, camera, root, _ = camera_of(flipping, i)
        kp = body(torch.from_numpy(clip["betas"]).expand(16, -1), b["target"]["theta"][:, :72])["kp_3d"]
        torch.testing.assert_close(kp, b["target"]["kp_3d"])
        mirrored_root = camera.world_to_camera(root) * [-1.0, 1.0, 1.0]
        points = kp.double().numpy() / 1000 + (mirrored_root - clip["rest_root"])[:, None]
        np.testing.assert_allclose(b["inputs"].numpy(), screen_inputs(points, camera), atol=1e-6)


def test_mesh_loss_terms():
    g = torch.Generator().manual_seed(0)
    theta = torch.cat([torch.randn(2, 4, 72, generator=g) * 0.3, torch.randn(2, 4, 10, generator=g)], -1)
    target = dict(theta=theta, kp_3d=torch.randn(2, 4, 17, 3, generator=g) * 100,
                  verts=torch.randn(2, 4, 40, 3, generator=g) * 100)
    exact = dict(target, rotmat=axis_angle_to_rotmat(theta[..., :72].unflatten(-1, (24, 3))))
    weights = dict(mpjpe=0.5, velocity=10.0, pose=1000.0, shape=1.0, norm=20.0, verts=1.0)
    losses = L.weighted_mesh_loss(exact, target, weights)
    assert set(losses) == {f"loss_{k}" for k in weights}
    for key in ("loss_mpjpe", "loss_velocity", "loss_pose", "loss_shape", "loss_verts"):
        assert losses[key].abs() < 1e-4, key
    torch.testing.assert_close(losses["loss_norm"], 20 * theta.norm(dim=-1).mean())
    moved = dict(exact, kp_3d=exact["kp_3d"] + 5.0, verts=exact["verts"] + 5.0)  # a shift: root-relative
    assert L.weighted_mesh_loss(moved, target, dict(mpjpe=1.0, verts=1.0))["loss_mpjpe"] < 1e-4
    off = dict(exact, kp_3d=exact["kp_3d"] * 1.1, theta=theta + 0.1)
    off_losses = L.weighted_mesh_loss(off, target, dict(mpjpe=1.0, shape=1.0))
    assert off_losses["loss_mpjpe"] > 1 and off_losses["loss_shape"] == pytest.approx(0.1, abs=1e-5)
    with pytest.raises(KeyError, match="known"):
        L.weighted_mesh_loss(exact, target, dict(vertices=1.0))


def test_mesh_task_modes_and_data_check(mesh_data):
    _, body, regressor, _ = mesh_data
    torch.manual_seed(0)
    task = MeshTask(model=TINY, body_model=str(body), j_regressor=str(regressor), flip_test=True)
    assert not any("smpl" in k or "body" in k for k in task.model.state_dict())
    ds = dataset(mesh_data)
    check_dataset(task, ds, "test")
    batch = default_collate([ds[0], ds[1]])
    losses = task(**batch, mode="loss")
    assert set(losses) == {"loss_mpjpe", "loss_velocity", "loss_pose", "loss_shape", "loss_norm"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert task.model.backbone.joints_embed.weight.grad.abs().sum() > 0
    task.eval()
    with torch.no_grad():
        preds = task(**batch, mode="predict")
    assert len(preds) == 2 and preds[0]["pred"]["verts"].shape == (16, 40, 3)
    assert preds[1]["target"]["kp_3d"].shape == preds[1]["pred"]["kp_3d"].shape == (16, 17, 3)
    assert preds[1]["meta"]["clip"] == batch["meta"]["clip"][1]
    with pytest.raises(ValueError, match="mesh head"):
        MeshTask(model=dict(name="dstformer-lite-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2),
                 body_model=str(body), j_regressor=str(regressor))
    with pytest.raises(KeyError, match="unknown mesh loss"):
        MeshTask(model=TINY, body_model=str(body), j_regressor=str(regressor), losses=dict(mpjep=1.0))


def test_bad_input_fails_before_training(mesh_data, tmp_path):
    root, body, regressor, amass = mesh_data
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.pkl"):
        AMASSMeshDataset(str(amass), str(tmp_path / "SMPL_NEUTRAL.pkl"), str(regressor))
    with pytest.raises(FileNotFoundError, match="not shipped"):
        MeshTask(model=TINY, body_model=str(tmp_path / "SMPL_NEUTRAL.pkl"), j_regressor=str(regressor))
    with pytest.raises(FileNotFoundError, match="missing_amass"):
        AMASSMeshDataset(str(tmp_path / "missing_amass"), str(body), str(regressor))
    np.savez(tmp_path / "broken_smpl.npz", v_template=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="not an SMPL model file"):
        AMASSMeshDataset(str(amass), str(tmp_path / "broken_smpl.npz"), str(regressor))
    good = dict(np.load(next(amass.glob("*.npz"))))
    bad = {"no_trans": {k: v for k, v in good.items() if k != "trans"},
           "nan": dict(good, poses=np.where(np.arange(good["poses"].size).reshape(good["poses"].shape) == 7,
                                            np.nan, good["poses"])),
           "short_pose": dict(good, poses=good["poses"][:, :60])}
    messages = {"no_trans": r"lacks \['trans'\]", "nan": "NaN", "short_pose": r"72 \| 156 \| 165"}
    for name, arrays in bad.items():
        folder = tmp_path / name
        folder.mkdir()
        np.savez(folder / "clip.npz", **arrays)
        with pytest.raises(DataFormatError, match=messages[name]):
            AMASSMeshDataset(str(folder), str(body), str(regressor), split_rule="hash", test_every=10**9)
    # the recipe's paths are checked before the Runner starts, naming the missing body model
    os.environ["POSEZOO_SMPL"], os.environ["POSEZOO_DATA"] = str(tmp_path / "nowhere"), str(root)
    try:
        cfg = load_config("dstformer-mesh-small")
    finally:
        del os.environ["POSEZOO_SMPL"], os.environ["POSEZOO_DATA"]
    with pytest.raises(FileNotFoundError, match=r"body_model: .*nowhere/SMPL_NEUTRAL.pkl does not exist.*POSEZOO_SMPL"):
        check_paths(cfg)


def run_tool(name: str, args: list[str], root: Path, monkeypatch):
    """``tools/<name>.py ARGS`` in this process (as the user runs it, less the interpreter start)."""
    tool = load_tool(name)
    monkeypatch.setenv("POSEZOO_DATA", str(root))
    monkeypatch.setenv("POSEZOO_SMPL", str(root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend on the shared CPU
    try:
        return tool.main(args)
    finally:
        torch.set_num_threads(threads)


def test_train_and_test_tools(mesh_data, tmp_path, monkeypatch):
    """tools/train.py on dstformer-mesh-small (tiny width, 24 iterations), then tools/test.py."""
    import posezoo

    root, body, regressor, _ = mesh_data
    work, iters = tmp_path / "work", 24
    tiny = [f"model.model.{k}={v}" for k, v in TINY.items() if k not in ("name", "maxlen")]
    run_tool("train", ["dstformer-mesh-small", "--work-dir", str(work), "--cfg-options", *tiny,
              "train_dataloader.batch_size=8", f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={iters}",
              f"default_hooks.checkpoint.interval={iters}", "default_hooks.logger.interval=1"], root, monkeypatch)
    rows = [json.loads(line) for path in work.glob("*/vis_data/scalars.json")
            for line in path.read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    assert [r["iter"] for r in train] == list(range(1, iters + 1))
    terms = ("loss_mpjpe", "loss_velocity", "loss_pose", "loss_shape", "loss_norm")
    assert all(np.isfinite(r[k]) for r in train for k in terms)
    first, last = (np.mean([r["loss"] for r in part]) for part in (train[:4], train[-4:]))
    assert last < first, (first, last)
    assert (work / f"iter_{iters}.pth").is_file() and (work / "best" / "model.safetensors").is_file()
    saved = json.loads((work / "last" / "config.json").read_text())
    assert str(root) not in json.dumps(saved)  # no local body-model paths in the saved model

    model = posezoo.create(str(work / "last"), smpl_model_path=str(body), j_regressor_path=str(regressor))
    with torch.no_grad():
        out = model(torch.rand(2, 16, 17, 3) * 2 - 1)
    shapes = {"theta": (82,), "rotmat": (24, 3, 3), "betas": (10,), "verts": (40, 3), "joints": (24, 3),
              "kp_3d": (17, 3)}
    assert {k: tuple(out[k].shape) for k in shapes} == {k: (2, 16, *v) for k, v in shapes.items()}

    out_file = tmp_path / "results.json"
    run_tool("test", ["dstformer-mesh-small", "--checkpoint", str(work / "last"), "--out", str(out_file),
              "--work-dir", str(tmp_path / "test"), "--cfg-options", *tiny], root, monkeypatch)
    results = json.loads(out_file.read_text())
    mpve = results["metrics"]["mesh/mpve"]
    assert mpve["unit"] == "mm" and mpve["protocol"] == "mpve" and np.isfinite(mpve["value"]) and mpve["value"] > 0
    assert results["metrics"]["mesh/mpjpe"]["unit"] == "mm" and "held-out" in results["dataset"]
    val = [r for r in rows if "mesh/mpve" in r]
    assert val and val[-1]["mesh/mpve"] == pytest.approx(mpve["value"], rel=1e-5)  # same weights, same test items
