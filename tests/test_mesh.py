"""Mesh head (SMPLRegressor) against the official MotionBERT MeshRegressor fixture, the rotation
conversions, the flip test, and the optional SMPL body model on a small synthetic model file."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import posezoo
from posezoo.data.layouts import get_layout
from posezoo.entries import get_entry
from posezoo.factory import build, route_overrides
from posezoo.models.mesh import SMPLRegressor, flip_thetas, mesh_flip_test, rot6d_to_rotmat, rotmat_to_axis_angle
from posezoo.registry import CONVERTERS, HEADS
from tests.conftest import load_fixture, write_body_model

FIXTURE = "mesh_small_head"
OFFICIAL_SMPL_KEYS = {  # what a real official mesh checkpoint holds under head.smpl.* (shapes shrunk)
    "betas": (64, 10), "global_orient": (64, 3), "body_pose": (64, 69), "shapedirs": (40, 3, 10),
    "faces_tensor": (20, 3), "v_template": (40, 3), "J_regressor": (24, 40), "posedirs": (207, 120),
    "parents": (24,), "lbs_weights": (40, 24), "vertex_joint_selector.extra_joints_idxs": (21,),
    "J_regressor_extra": (9, 40), "J_regressor_h36m": (17, 40),
}


@pytest.fixture(scope="module")
def mesh_fixture(fixtures_dir):
    weights, io, sidecar = load_fixture(fixtures_dir, "motionbert", FIXTURE)
    return weights, io, sidecar, fixtures_dir / "motionbert" / sidecar["official_ckpt_file"]


def small_overrides(config: dict) -> dict:
    return dict(dim_feat=config["dim_feat"], dim_rep=config["dim_rep"], depth=config["depth"],
                num_heads=config["num_heads"], mlp_ratio=config["mlp_ratio"], maxlen=config["maxlen"],
                att_fuse=config["att_fuse"], norm_eps=config["layernorm_eps"], hidden_dim=config["hidden_dim"])


def test_reproduces_official_outputs_fp32(mesh_fixture):
    _, io, sidecar, ckpt = mesh_fixture
    model = posezoo.create("dstformer-mesh", checkpoint=ckpt, **small_overrides(sidecar["config"]))
    with torch.no_grad():
        out = model(io["input"])
        mirrored = model(get_layout("h36m-17").flip(io["input"]))
    checks = {k: out[k] for k in ("theta", "pose6d", "rotmat", "betas")}
    checks["theta_flip_pose_flipped_back"] = flip_thetas(mirrored["theta"][..., :72])
    for key, value in checks.items():
        assert value.shape == io[key].shape
        err = (value - io[key]).abs().max().item()
        assert err <= 1e-5, f"{key}: max abs error {err:.2e}"
    assert set(out) == {"theta", "pose6d", "rotmat", "betas"}  # no body model given


def test_reproduces_official_outputs_fp64(mesh_fixture):
    weights, io, sidecar, _ = mesh_fixture
    model = posezoo.create("dstformer-mesh", **small_overrides(sidecar["config"])).double()
    model.load_state_dict(CONVERTERS.get("dstformer")(weights))
    with torch.no_grad():
        out = model(io["input"].double())
    for key in ("theta", "rotmat"):
        err = (out[key] - io[f"{key}_f64"]).abs().max().item()
        assert err <= 1e-9, f"{key}_f64: max abs error {err:.2e}"


def test_official_checkpoint_with_smpl_arrays_loads_without_them(mesh_fixture, tmp_path):
    """A real mesh checkpoint carries the licensed SMPL arrays under head.smpl.*: they are dropped."""
    _, io, sidecar, ckpt = mesh_fixture
    container = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert set(container) >= {"model"} and all(k.startswith("module.") for k in container["model"])
    assert not any(".smpl." in k for k in container["model"])
    for key, shape in OFFICIAL_SMPL_KEYS.items():
        container["model"][f"module.head.smpl.{key}"] = torch.ones(shape)
    path = tmp_path / "best_epoch.bin"
    torch.save(container, path)
    model = posezoo.create("dstformer-mesh", checkpoint=path, **small_overrides(sidecar["config"]))
    state = model.state_dict()
    assert not any("smpl" in k for k in state) and not any(k.startswith("backbone.head.") for k in state)
    torch.testing.assert_close(state["head.init_pose"], container["model"]["module.head.init_pose"])
    torch.testing.assert_close(state["head.init_shape"], container["model"]["module.head.init_shape"])
    with torch.no_grad():
        assert (model(io["input"])["theta"] - io["theta"]).abs().max().item() <= 1e-5


def test_param_counts():
    entry, weights = get_entry("dstformer-mesh")
    model = build(route_overrides(entry.model_config(), {}), device="meta")
    head = sum(p.numel() for p in model.head.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert head == entry.extra["head_params"] == 17_989_786
    # official 60,461,351 counts the unused 3D head (1,539) and the smplx layer's batch parameters (5,248)
    assert total == entry.params == 60_461_351 - 1_539 - 5_248
    assert len(model.state_dict()) == 293 - 2 - len(OFFICIAL_SMPL_KEYS)
    assert model.head.fc1.out_features == 1024 and model.head.dropout.p == 0.1
    assert get_entry("dstformer-mesh.pw3d-ft")[1].hf_hub_id == "posezoo/dstformer-mesh.pw3d-ft"
    assert HEADS.get("mesh") is SMPLRegressor


def test_init_buffers_are_persistent_with_identity_defaults():
    head = SMPLRegressor(in_channels=8, num_joints=3, hidden_dim=4).eval()
    assert {"init_pose", "init_shape"} <= set(head.state_dict())
    with torch.no_grad():
        head.head_pose.weight.zero_()
        head.head_pose.bias.zero_()
        head.head_shape.weight.zero_()
        head.head_shape.bias.zero_()
        out = head(torch.randn(2, 5, 3, 8))
    torch.testing.assert_close(out["rotmat"], torch.eye(3).expand(2, 5, 24, 3, 3))
    torch.testing.assert_close(out["theta"], torch.zeros(2, 5, 82))


def test_mean_params_file(tmp_path):
    pose, shape = np.random.default_rng(0).normal(size=144), np.random.default_rng(1).normal(size=10)
    np.savez(tmp_path / "smpl_mean_params.npz", pose=pose, shape=shape)
    head = SMPLRegressor(in_channels=8, num_joints=3, hidden_dim=4,
                         mean_params_path=str(tmp_path / "smpl_mean_params.npz"))
    assert head.init_pose.dtype == torch.float32 and head.init_pose.shape == (1, 144)
    torch.testing.assert_close(head.init_shape, torch.tensor(shape, dtype=torch.float32)[None])


TINY = dict(dim_feat=16, dim_rep=24, depth=1, num_heads=2, mlp_ratio=2, maxlen=9, hidden_dim=8)


def test_4d_and_5d_inputs():
    torch.manual_seed(0)
    model = posezoo.create("dstformer-mesh", **TINY)
    x = torch.randn(2, 3, 9, 17, 3)  # (B, M, T, J, C): each person regressed on its own
    with torch.no_grad():
        five = model(x)
        four = model(x[:, 1])
    shapes = {"theta": (82,), "pose6d": (144,), "rotmat": (24, 3, 3), "betas": (10,)}
    for key, tail in shapes.items():
        assert five[key].shape == (2, 3, 9, *tail) and four[key].shape == (2, 9, *tail)
        torch.testing.assert_close(five[key][:, 1], four[key])
    torch.testing.assert_close(four["betas"], four["betas"][:, :1].expand(-1, 9, -1))  # one shape per clip


def test_frame_layout_features():
    head = SMPLRegressor(in_channels=32, hidden_dim=16, feature_layout="frame").eval()
    assert head.fc1.in_features == head.fc2.in_features == 32
    with torch.no_grad():
        out = head(torch.randn(2, 5, 32))
    assert out["theta"].shape == (2, 5, 82) and out["rotmat"].shape == (2, 5, 24, 3, 3)
    with pytest.raises(ValueError, match=r"frame-layout features .* got shape \(2, 5, 31\)"):
        head(torch.randn(2, 5, 31))


def test_rot6d_gives_rotations():
    R = rot6d_to_rotmat(torch.randn(100, 6, dtype=torch.float64))
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(100, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))


def test_axis_angle_round_trip_in_every_quaternion_branch():
    lbs = pytest.importorskip("smplx.lbs")
    g = torch.Generator().manual_seed(0)
    axis = torch.nn.functional.normalize(torch.randn(4000, 3, generator=g, dtype=torch.float64), dim=-1)
    aa = axis * torch.rand(4000, 1, generator=g, dtype=torch.float64) * 3.1
    R = lbs.batch_rodrigues(aa)
    low_z, r00, r11 = R[:, 2, 2] < 1e-6, R[:, 0, 0], R[:, 1, 1]
    branches = [low_z & (r00 > r11), low_z & ~(r00 > r11), ~low_z & (r00 < -r11), ~low_z & ~(r00 < -r11)]
    assert all(b.sum() > 100 for b in branches)
    torch.testing.assert_close(rotmat_to_axis_angle(R), aa, atol=1e-6, rtol=0)
    assert rotmat_to_axis_angle(torch.eye(3)).abs().max() == 0  # zero angle: no NaN


def test_flip_thetas_is_an_involution_that_mirrors():
    pose = torch.randn(2, 4, 72)
    flipped = flip_thetas(pose)
    torch.testing.assert_close(flip_thetas(flipped), pose)
    p, f = pose.unflatten(-1, (24, 3)), flipped.unflatten(-1, (24, 3))
    torch.testing.assert_close(f[..., 1, :], p[..., 2, :] * torch.tensor([1.0, -1, -1]))  # left hip <- right hip
    torch.testing.assert_close(f[..., 0, :], p[..., 0, :] * torch.tensor([1.0, -1, -1]))  # pelvis stays


# --- the optional body model -------------------------------------------------------------------


def official_smpl(path, arrays, dtype=torch.float32):
    """smplx.SMPL built the way MotionBERT builds it (vertex-selected extra joints pointed at vertex 0,
    since the synthetic model has too few vertices for SMPL's extra-joint vertex ids)."""
    smplx = pytest.importorskip("smplx")
    from smplx.vertex_ids import vertex_ids

    return smplx.SMPL(str(path), data_struct=smplx.utils.Struct(**arrays), create_transl=False, batch_size=64,
                      vertex_ids={k: 0 for k in vertex_ids["smplh"]}, dtype=dtype)


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_body_model_vertices_and_joints(mesh_fixture, tmp_path, suffix):
    pytest.importorskip("smplx")
    _, io, sidecar, ckpt = mesh_fixture
    path, regressor, arrays = write_body_model(tmp_path, suffix=suffix)
    model = posezoo.create("dstformer-mesh", checkpoint=ckpt, smpl_model_path=str(path),
                           j_regressor_path=str(regressor), **small_overrides(sidecar["config"]))
    assert not any("smpl" in k or "body" in k for k in model.state_dict())
    with torch.no_grad():
        out = model(io["input"])
    assert out["verts"].shape == (2, 27, 40, 3) and out["joints"].shape == (2, 27, 24, 3)
    assert out["kp_3d"].shape == (2, 27, 17, 3)
    assert (out["theta"] - io["theta"]).abs().max().item() <= 1e-5
    # the official call: SMPL(betas, body_pose=R[:, 1:], global_orient=R[:, :1], pose2rot=False), x1000 mm
    rotmat, betas = out["rotmat"].reshape(-1, 24, 3, 3), out["betas"].reshape(-1, 10)
    with torch.no_grad():
        ref = official_smpl(path, arrays)(betas=betas, body_pose=rotmat[:, 1:], global_orient=rotmat[:, :1],
                                          pose2rot=False)
    torch.testing.assert_close(out["verts"].reshape(-1, 40, 3), ref.vertices * 1000.0, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(out["joints"].reshape(-1, 24, 3), ref.joints[:, :24] * 1000.0, atol=1e-3, rtol=1e-5)
    h36m = torch.tensor(np.load(regressor), dtype=torch.float32)
    torch.testing.assert_close(out["kp_3d"], torch.einsum("kv,btvc->btkc", h36m, out["verts"]), atol=1e-3, rtol=1e-5)


def test_body_model_in_float64_and_flip_test(mesh_fixture, tmp_path):
    pytest.importorskip("smplx")
    _, io, sidecar, ckpt = mesh_fixture
    path, regressor, arrays = write_body_model(tmp_path)
    model = posezoo.create("dstformer-mesh", checkpoint=ckpt, smpl_model_path=str(path),
                           j_regressor_path=str(regressor), **small_overrides(sidecar["config"])).double()
    x = io["input"].double()
    with torch.no_grad():
        avg = mesh_flip_test(model, x)
        out = model(x)
    assert out["verts"].dtype == torch.float64
    assert set(avg) == {"theta", "verts", "joints", "kp_3d"}
    expected_pose = (out["theta"][..., :72] + io["theta_flip_pose_flipped_back"].double()) / 2
    assert (avg["theta"][..., :72] - expected_pose).abs().max().item() <= 1e-5
    # the mirrored run is re-posed from its flipped-back axis-angle, as the official test does
    theta_back = 2 * avg["theta"] - out["theta"]
    with torch.no_grad():
        ref = official_smpl(path, arrays, torch.float64)(
            betas=theta_back[..., 72:].reshape(-1, 10), body_pose=theta_back[..., 3:72].reshape(-1, 69),
            global_orient=theta_back[..., :3].reshape(-1, 3))
    torch.testing.assert_close((2 * avg["verts"] - out["verts"]).reshape(-1, 40, 3), ref.vertices * 1000.0)


def test_body_model_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not shipped"):
        SMPLRegressor(in_channels=8, smpl_model_path=str(tmp_path / "SMPL_NEUTRAL.pkl"))
    pytest.importorskip("smplx")
    np.savez(tmp_path / "broken.npz", v_template=np.zeros((4, 3)))
    head = SMPLRegressor(in_channels=8, num_joints=3, hidden_dim=4, smpl_model_path=str(tmp_path / "broken.npz")).eval()
    with pytest.raises(ValueError, match="not an SMPL model file: it lacks"):
        head(torch.randn(1, 2, 3, 8))
