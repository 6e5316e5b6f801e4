"""PoseFormer + lift head against the official fixture (zczcwh/PoseFormer at a908b29, random weights)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import posezoo
from posezoo.checkpoint import CheckpointError
from posezoo.entries import get_entry
from posezoo.factory import build, convert_checkpoint
from posezoo.models.poseformer import PoseFormer
from posezoo.registry import BACKBONES

FOLDER = "tcn-poseformer-pct"
NAME = "poseformer_f9_e8_d2_h4"
# Official parameter counts at the published config (embed 32, depth 4, 8 heads, mlp_ratio 2, 17 joints).
OFFICIAL_PARAMS = {"poseformer-9f-lift": 9_563_645, "poseformer-27f-lift": 9_573_455, "poseformer-81f-lift": 9_602_885}


def read_fixture(fixtures_dir, name: str):
    """(tensors by full key, JSON sidecar, path of the official checkpoint container) of a fixture
    whose keys are prefixed ``state_dict.`` / ``input.`` / ``output.`` / ``output_fp64.`` / ``aux.``."""
    folder = fixtures_dir / FOLDER
    path = folder / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"fixture {path} not found")
    sidecar = json.loads((folder / f"{name}.json").read_text())
    return load_file(path), sidecar, folder / sidecar["files"]["official_layout"]


def fp32_tolerance(sidecar: dict, key: str) -> float:
    """10x the official fp32-vs-fp64 noise, at least 1e-6, at most 1e-5."""
    return min(1e-5, max(10 * sidecar["max_abs_diff_fp32_vs_fp64"][key], 1e-6))


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return read_fixture(fixtures_dir, NAME)


def _model(fixture):
    _, sidecar, container = fixture
    # The fixture's constructor arguments are the official names, passed through unchanged.
    return posezoo.create("poseformer-81f-lift", checkpoint=container, **sidecar["constructor"]["PoseTransformer"])


def test_reproduces_official_output_fp32(fixture):
    tensors, sidecar, _ = fixture
    model = _model(fixture)
    assert sum(p.numel() for p in model.parameters()) == sidecar["param_count"] == 309_069
    with torch.no_grad():
        out = model(tensors["input.x"])
    assert out.shape == tensors["output.y"].shape == (3, 1, 17, 3)
    err = (out - tensors["output.y"]).abs().max().item()
    assert err <= fp32_tolerance(sidecar, "y"), f"max abs error {err:.2e}"


def test_reproduces_official_output_fp64(fixture):
    tensors, _, _ = fixture
    model = _model(fixture).double()
    with torch.no_grad():
        out = model(tensors["input.x"].double())
    err = (out - tensors["output_fp64.y"]).abs().max().item()
    assert err <= 1e-9, f"max abs error {err:.2e}"


def test_intermediates_match(fixture):
    """The spatial and temporal norms' outputs, as the official module records them."""
    tensors, _, _ = fixture
    model = _model(fixture).double()
    seen = {}
    for name in ("Spatial_norm", "Temporal_norm"):
        getattr(model.backbone, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    with torch.no_grad():
        model(tensors["input.x"].double())
    for name, key in (("Spatial_norm", "aux.spatial_norm_out"), ("Temporal_norm", "aux.temporal_norm_out")):
        assert seen[name].shape == tensors[key].shape
        assert (seen[name] - tensors[key].double()).abs().max().item() <= 1e-5, name


def test_head_norm_eps_is_official_and_the_tolerance_catches_it(fixture):
    tensors, sidecar, _ = fixture
    model = _model(fixture)
    backbone = model.backbone
    assert backbone.head_norm.eps == 1e-5
    assert backbone.Spatial_norm.eps == backbone.Temporal_norm.eps == backbone.blocks[0].norm1.eps == 1e-6
    backbone.head_norm.eps = 1e-6  # the slip the reference warns about
    with torch.no_grad():
        err = (model(tensors["input.x"]) - tensors["output.y"]).abs().max().item()
    assert err > fp32_tolerance(sidecar, "y")


def test_lift_head_holds_only_the_final_linear(fixture):
    model = _model(fixture)
    assert [k for k in model.state_dict() if k.startswith("head.")] == ["head.fc.weight", "head.fc.bias"]
    assert model.head.fc.in_features == model.backbone.in_channels == 17 * 8
    assert list(model.buffers()) == []


def test_converter_reads_official_container(fixture):
    tensors, sidecar, container = fixture
    state = convert_checkpoint(container, "poseformer")
    official = [k for k in tensors if k.startswith("state_dict.")]
    assert len(state) == len(official) == len(sidecar["state_dict_keys_in_order"]) == 62
    assert torch.equal(state["backbone.head_norm.weight"], tensors["state_dict.head.0.weight"])
    assert torch.equal(state["head.fc.weight"], tensors["state_dict.head.1.weight"])
    assert torch.equal(state["backbone.weighted_mean.weight"], tensors["state_dict.weighted_mean.weight"])


def test_other_family_checkpoint_is_named(fixtures_dir):
    _, _, v2_container = read_fixture(fixtures_dir, "poseformerv2_f27_k3_c3_e8_d2_h4")
    with pytest.raises(CheckpointError, match="not a PoseFormer checkpoint.*PoseFormerV2"):
        posezoo.create("poseformer-9f-lift", checkpoint=v2_container)


def test_official_param_counts():
    for name, count in OFFICIAL_PARAMS.items():
        entry, _ = get_entry(name)
        model = build(entry.model_config(), device="meta")
        assert sum(p.numel() for p in model.parameters()) == entry.params == count, name
        assert len(model.state_dict()) == 110
        assert model.backbone.num_frames == model.max_frames == entry.max_frames


def test_wrong_frame_count_names_the_receptive_field():
    model = posezoo.create("poseformer-9f-lift", embed_dim_ratio=8, depth=1, num_heads=4)
    with pytest.raises(ValueError, match="receptive field of 9 frames.*T=8"):
        model(torch.zeros(2, 8, 17, 2))
    with pytest.raises(ValueError, match="at most 9"):  # PoseModel's check comes first for T > 9
        model(torch.zeros(2, 10, 17, 2))
    with pytest.raises(ValueError, match="receptive field of 9 frames.*T=10"):
        model.backbone(torch.zeros(2, 10, 17, 2))
    assert model(torch.zeros(2, 9, 17, 2)).shape == (2, 1, 17, 3)


def test_names_and_weights_tables():
    assert BACKBONES.get("PoseFormer") is BACKBONES.get("poseformer") is PoseFormer
    entry, _ = get_entry("poseformer-81f-lift")
    assert set(entry.weights) == {"h36m-cpn", "h36m-gt"}
    for tag, weights in entry.weights.items():
        assert weights.hf_hub_id == f"posezoo/poseformer-81f-lift.{tag}"
        assert weights.source and "drive.google.com" in weights.source
    assert posezoo.list_models("poseformer-81f-lift.*") == ["poseformer-81f-lift.h36m-cpn", "poseformer-81f-lift.h36m-gt"]
