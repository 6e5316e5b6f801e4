"""Action heads (class, embed) against the official MotionBERT ActionNet fixtures, plus shapes,
frame-layout features and the published parameter counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import posezoo
from posezoo.entries import get_entry
from posezoo.factory import build, convert_checkpoint, route_overrides
from posezoo.models.action import ActionHeadClassification, ActionHeadEmbed
from posezoo.registry import BACKBONES, CONVERTERS, HEADS
from tests.conftest import load_fixture

FIXTURES = {"action_small_class": "dstformer-action", "action_small_embed": "dstformer-action-embed"}
UNUSED_3D_HEAD = 3 * 512 + 3  # backbone.head of the official DSTformer, never used by ActionNet


def small_overrides(config: dict) -> dict:
    return dict(dim_feat=config["dim_feat"], dim_rep=config["dim_rep"], depth=config["depth"],
                num_heads=config["num_heads"], mlp_ratio=config["mlp_ratio"], maxlen=config["maxlen"],
                att_fuse=config["att_fuse"], norm_eps=config["layernorm_eps"],
                hidden_dim=config["head_hidden_dim"], dropout_ratio=config["dropout_ratio"])


@pytest.fixture(params=list(FIXTURES))
def action_fixture(request, fixtures_dir):
    weights, io, sidecar = load_fixture(fixtures_dir, "motionbert", request.param)
    return request.param, weights, io, sidecar


def test_reproduces_official_outputs_fp32(action_fixture, fixtures_dir):
    name, _, io, sidecar = action_fixture
    ckpt = fixtures_dir / "motionbert" / sidecar["official_ckpt_file"]
    model = posezoo.create(FIXTURES[name], checkpoint=ckpt, **small_overrides(sidecar["config"]))
    assert not model.training
    x = io["input"]  # (N, M=2, T, J, 3), the last sample's second person all zeros
    with torch.no_grad():
        out = model(x)
        rep = model.representation(x)
    assert rep.shape == (2, 2, 27, 17, 128)
    checks = {"output": out, "backbone_representation": rep.reshape(4, 27, 17, 128)}
    for key, value in checks.items():
        assert value.shape == io[key].shape
        err = (value - io[key]).abs().max().item()
        assert err <= 1e-5, f"{name} {key}: max abs error {err:.2e}"


def test_reproduces_official_outputs_fp64(action_fixture):
    name, weights, io, sidecar = action_fixture
    model = posezoo.create(FIXTURES[name], **small_overrides(sidecar["config"])).double()
    model.load_state_dict(CONVERTERS.get("dstformer")(weights))
    with torch.no_grad():
        out = model(io["input"].double())
    err = (out - io["output_f64"]).abs().max().item()
    assert err <= 1e-9, f"{name} output_f64: max abs error {err:.2e}"


def test_official_checkpoint_keys_and_params(action_fixture, fixtures_dir):
    name, weights, _, sidecar = action_fixture
    state = convert_checkpoint(fixtures_dir / "motionbert" / sidecar["official_ckpt_file"], "dstformer")
    assert set(state) == set(weights) - {"backbone.head.weight", "backbone.head.bias"}
    model = posezoo.create(FIXTURES[name], **small_overrides(sidecar["config"]))
    assert set(model.state_dict()) == set(state)
    # the official count includes the unused 3D head (dim_rep 128 -> 3) the converter drops
    assert sum(p.numel() for p in model.parameters()) == sidecar["num_params"] - (3 * 128 + 3)


def _meta_model(name: str, **overrides):
    entry, _ = get_entry(name)
    return build(route_overrides(entry.model_config(), overrides), device="meta")


@pytest.mark.parametrize("name, overrides, official", [
    ("dstformer-action", {}, 60_421_193),
    ("dstformer-action-embed", {}, 60_294_157),
    ("dstformer-lite-action", {}, 33_956_425),
    ("dstformer-action-embed", {"dim_feat": 256, "mlp_ratio": 4}, 33_829_389),  # embed-lite
])
def test_official_param_counts(name, overrides, official):
    model = _meta_model(name, **overrides)
    params = sum(p.numel() for p in model.parameters())
    assert params == official - UNUSED_3D_HEAD
    if not overrides:
        assert get_entry(name)[0].params == params
    # BatchNorm running statistics are buffers: in the state dict, not in the parameter count
    keys = 267 if "embed" not in name else 260  # official 269 / 262 minus backbone.head.{weight,bias}
    assert len(model.state_dict()) == keys


def test_entries_use_official_heads():
    cls = _meta_model("dstformer-action").head
    assert isinstance(cls, ActionHeadClassification)
    assert cls.fc1.in_features == 17 * 512 and cls.fc1.out_features == 2048 and cls.fc2.out_features == 60
    assert cls.dropout.p == 0.5 and cls.bn.momentum == 0.1 and cls.bn.eps == 1e-5
    embed = _meta_model("dstformer-action-embed").head
    assert isinstance(embed, ActionHeadEmbed)
    assert embed.fc1.out_features == 2048 and embed.dropout.p == 0.1
    assert HEADS.get("action") is ActionHeadClassification and HEADS.get("action-embed") is ActionHeadEmbed
    entry, weights = get_entry("dstformer-action.ntu60-xsub")
    assert weights.hf_hub_id == "posezoo/dstformer-action.ntu60-xsub" and weights.license == "Apache-2.0"
    assert "MB_ft_NTU60_xsub" in weights.source
    assert get_entry("dstformer-action.ntu60-xview")[1].hf_hub_id == "posezoo/dstformer-action.ntu60-xview"


TINY = dict(dim_feat=16, dim_rep=24, depth=1, num_heads=2, mlp_ratio=2, maxlen=9, hidden_dim=8, num_classes=5)


@pytest.fixture
def tiny_class():
    torch.manual_seed(0)
    model = posezoo.create("dstformer-action", **TINY)
    with torch.no_grad():  # give BN non-trivial statistics so eval-mode checks mean something
        model.head.bn.running_mean.normal_(0, 0.1)
        model.head.bn.running_var.uniform_(0.5, 1.5)
    return model


def test_4d_and_5d_inputs(tiny_class):
    x = torch.randn(3, 2, 9, 17, 3)
    with torch.no_grad():
        five = tiny_class(x)
        four = tiny_class(x[:, 0])
        single = tiny_class(x[:, :1])
        both_same = tiny_class(torch.stack([x[:, 0], x[:, 0]], dim=1))
        # persons are averaged after pooling: the mean of the two persons' pooled features
        pooled = tiny_class.head.pool(tiny_class.representation(x))
    assert five.shape == four.shape == (3, 5)
    torch.testing.assert_close(single, four)
    torch.testing.assert_close(both_same, four)
    rep = tiny_class.representation(x)
    torch.testing.assert_close(pooled, rep.mean(dim=2).flatten(-2).mean(dim=1))
    assert not torch.allclose(five, four)


def test_embed_is_unit_length():
    model = posezoo.create("dstformer-action-embed", **{k: v for k, v in TINY.items() if k != "num_classes"})
    with torch.no_grad():
        out = model(torch.randn(2, 2, 9, 17, 3))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))


@pytest.mark.parametrize("head_cls", [ActionHeadClassification, ActionHeadEmbed])
def test_frame_layout_features(head_cls):
    torch.manual_seed(1)
    kw = {"num_classes": 5} if head_cls is ActionHeadClassification else {}
    head = head_cls(in_channels=32, hidden_dim=16, feature_layout="frame", **kw).eval()
    assert head.fc1.in_features == 32  # per-frame features: no joint axis to flatten
    feats = torch.randn(2, 3, 7, 32)  # (B, M, T, C)
    with torch.no_grad():
        out = head(feats)
        pooled = feats.mean(dim=2).mean(dim=1)
        expected = (head.fc2(torch.relu(head.bn(head.fc1(pooled)))) if head_cls is ActionHeadClassification
                    else nn.functional.normalize(head.fc1(pooled), dim=-1))
        single = head(feats[:, 0])  # (B, T, C)
    torch.testing.assert_close(out, expected)
    assert single.shape == out.shape


class FramePoolBackbone(nn.Module):
    """A minimal per-frame backbone (joints flattened, one Linear), standing in for TCN/PoseFormer."""

    feature_layout = "frame"

    def __init__(self, num_joints: int = 17, dim_in: int = 3, channels: int = 12):
        super().__init__()
        self.num_joints, self.dim_in, self.in_channels, self.max_frames = num_joints, dim_in, channels, None
        self.proj = nn.Linear(num_joints * dim_in, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(-2))


def test_heads_compose_with_a_frame_layout_backbone():
    if BACKBONES.get("FramePoolBackbone") is None:
        BACKBONES.register_module(module=FramePoolBackbone)
    model = build({"backbone": {"type": "FramePoolBackbone"},
                   "head": {"type": "action", "num_classes": 4, "hidden_dim": 6}}).eval()
    assert model.head.feature_layout == "frame" and model.head.fc1.in_features == 12
    with torch.no_grad():
        assert model(torch.randn(2, 2, 5, 17, 3)).shape == (2, 4)
        assert model(torch.randn(2, 5, 17, 3)).shape == (2, 4)


def test_bad_features_are_named(tiny_class):
    head = tiny_class.head
    with pytest.raises(ValueError, match=r"joint-layout features .* got shape \(2, 9, 17, 7\)"):
        head(torch.randn(2, 9, 17, 7))
    with pytest.raises(ValueError, match="got shape"):
        head(torch.randn(2, 2, 2, 9, 17, 24))  # more than one persons axis
    with pytest.raises(ValueError, match="feature_layout must be"):
        ActionHeadEmbed(in_channels=8, feature_layout="pixel")
    with pytest.raises(ValueError, match="expected 17 joints"):
        tiny_class(torch.randn(2, 9, 16, 3))
