"""DSTformer + lift head against the official MotionBERT fixtures (random weights, small configs)."""
from __future__ import annotations

import pytest
import torch

import posezoo
from posezoo.checkpoint import CheckpointError
from posezoo.data.layouts import get_layout
from posezoo.factory import convert_checkpoint
from tests.conftest import load_fixture

LIFT_FIXTURES = ["dstformer_small_attfuse", "dstformer_small_noattfuse"]


def _small_model(config: dict, **kw):
    return posezoo.create(
        "dstformer-lift", dim_feat=config["dim_feat"], dim_rep=config["dim_rep"], depth=config["depth"],
        num_heads=config["num_heads"], mlp_ratio=config["mlp_ratio"], maxlen=config["maxlen"],
        att_fuse=config["att_fuse"], norm_eps=config["layernorm_eps"], **kw)


@pytest.fixture(params=LIFT_FIXTURES)
def lift_fixture(request, fixtures_dir):
    weights, io, sidecar = load_fixture(fixtures_dir, "motionbert", request.param)
    return request.param, weights, io, sidecar


def _flip_avg(model, x):
    h36m = get_layout("h36m-17")
    return (model(x) + h36m.flip(model(h36m.flip(x)))) / 2


def test_reproduces_official_outputs_fp32(lift_fixture, fixtures_dir):
    name, _, io, sidecar = lift_fixture
    model = _small_model(sidecar["config"], checkpoint=fixtures_dir / "motionbert" / sidecar["official_ckpt_file"])
    with torch.no_grad():
        out = model(io["input"])
        checks = {
            "output": out,
            "representation": model.representation(io["input"]),
            "output_short": model(io["input_short"]),
            "output_flip_avg": _flip_avg(model, io["input"]),
        }
    for key, value in checks.items():
        assert value.shape == io[key].shape
        err = (value - io[key]).abs().max().item()
        assert err <= 1e-5, f"{name} {key}: max abs error {err:.2e}"


def test_reproduces_official_outputs_fp64(lift_fixture):
    name, weights, io, sidecar = lift_fixture
    model = _small_model(sidecar["config"]).double()
    model.load_state_dict(convert_checkpoint_state(weights))
    with torch.no_grad():
        x = io["input"].double()
        checks = {
            "output_f64": model(x),
            "representation_f64": model.representation(x),
            "output_short_f64": model(io["input_short"].double()),
            "output_flip_avg_f64": _flip_avg(model, x),
        }
    for key, value in checks.items():
        err = (value - io[key]).abs().max().item()
        assert err <= 1e-9, f"{name} {key}: max abs error {err:.2e}"


def convert_checkpoint_state(weights):
    from posezoo.registry import CONVERTERS

    return CONVERTERS.get("dstformer")(weights)


def test_converter_reads_official_container(fixtures_dir):
    path = fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin"
    state = convert_checkpoint(path, "dstformer")
    assert len(state) == 110
    assert "backbone.blocks_st.0.attn_s.qkv.weight" in state and "head.fc.weight" in state


def test_official_param_counts():
    full = posezoo.create("dstformer-lift")
    lite = posezoo.create("dstformer-lite-lift")
    assert sum(p.numel() for p in full.parameters()) == 42_466_317
    assert sum(p.numel() for p in lite.parameters()) == 16_001_549
    assert len(full.state_dict()) == 260


def test_fuse_starts_even_and_init_is_official():
    model = posezoo.create("dstformer-lift", depth=2, dim_feat=32, dim_rep=32, num_heads=2, maxlen=9)
    fuse = model.backbone.ts_attn[1]
    assert torch.all(fuse.weight == 0) and torch.all(fuse.bias == 0.5)
    assert model.backbone.blocks_st[0].norm1_s.eps == 1e-6
    assert model.backbone.temp_embed.std().item() == pytest.approx(0.02, rel=0.2)


def test_wrong_family_checkpoint_is_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"layers.0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="not a MotionBERT/DSTformer checkpoint"):
        posezoo.create("dstformer-lift", depth=1, checkpoint=path)


def test_mismatched_config_gives_readable_diff(fixtures_dir):
    path = fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin"
    with pytest.raises(CheckpointError) as err:
        posezoo.create("dstformer-lift", dim_feat=64, dim_rep=128, depth=3, num_heads=4, maxlen=27, checkpoint=path)
    text = str(err.value)
    assert "missing (" in text and "blocks_st.*.attn_s.qkv.weight" in text
    assert "wrong shape" not in text


def test_truncated_checkpoint(fixtures_dir, tmp_path):
    data = (fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin").read_bytes()
    path = tmp_path / "best_epoch.bin"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        posezoo.create("dstformer-lift", checkpoint=path)


class Payload:
    """An arbitrary object: unpickling it would run code from this module."""


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model_pos": {"w": torch.zeros(1)}, "args": Payload()}, path)
    with pytest.raises(CheckpointError, match="not safe to unpickle"):
        posezoo.create("dstformer-lift", checkpoint=path)
