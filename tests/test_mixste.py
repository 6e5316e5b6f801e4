"""MixSTE against the official fixture (MixSTE2, random weights, F=9, width 16, depth 2, 4 heads)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import posezoo
from posezoo.checkpoint import CheckpointError
from posezoo.entries import get_entry
from posezoo.factory import build
from posezoo.models.mixste import convert_mixste

FOLDER = "tcn-poseformer-pct"
NAME = "mixste_f9_e16_d2_h4"


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    path = fixtures_dir / FOLDER / f"{NAME}.safetensors"
    if not path.is_file():
        pytest.skip(f"fixture {path} not found")
    tensors = load_file(path)
    meta = json.loads((fixtures_dir / FOLDER / f"{NAME}.json").read_text())
    state = {k[len("state_dict."):]: v for k, v in tensors.items() if k.startswith("state_dict.")}
    return state, tensors, meta


def _model(meta, checkpoint=None, **overrides):
    return posezoo.create("mixste-243f-lift", checkpoint=checkpoint, **{**meta["constructor"]["MixSTE2"], **overrides})


def test_reproduces_official_output_fp32(fixture, fixtures_dir):
    """Through posezoo.create with the official container (model_pos, DataParallel 'module.' keys)."""
    _, t, meta = fixture
    model = _model(meta, checkpoint=fixtures_dir / FOLDER / f"{NAME}.official_layout.pt")
    with torch.no_grad():
        out = model(t["input.x"])
    tol = max(10 * meta["max_abs_diff_fp32_vs_fp64"]["y"], 1e-6)
    torch.testing.assert_close(out, t["output.y"], atol=tol, rtol=1e-5)
    assert (out - t["output.y"]).abs().max().item() <= 1e-5


def test_reproduces_official_output_fp64(fixture):
    """fp64 at 1e-9: catches a wrong LayerNorm eps (1e-6 in blocks and shared norms, 1e-5 in the head)."""
    state, t, meta = fixture
    model = _model(meta).double()
    model.load_state_dict(convert_mixste(state))
    assert model.backbone.head_norm.eps == 1e-5 and model.backbone.Spatial_norm.eps == 1e-6
    with torch.no_grad():
        err = (model(t["input.x"].double()) - t["output_fp64.y"]).abs().max().item()
    assert err <= 1e-9, f"max abs error {err:.2e}"
    explicit = _model(meta, qk_scale=(16 // 4) ** -0.5).double()  # the default scale, set explicitly
    explicit.load_state_dict(convert_mixste(state))
    with torch.no_grad():
        err = (explicit(t["input.x"].double()) - t["output_fp64.y"]).abs().max().item()
    assert err <= 1e-9


def test_short_clip_is_edge_padded_like_official_eval(fixture):
    """T < num_frame: run.py's eval_data_prepare replicates the last frame up to num_frame."""
    state, t, meta = fixture
    model = _model(meta).double()
    model.load_state_dict(convert_mixste(state))
    x = t["input.x"][:, :5].double()
    padded = torch.cat([x, x[:, -1:].expand(-1, 4, -1, -1)], 1)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 5, 17, 3)
        torch.testing.assert_close(out, model(padded)[:, :5], atol=1e-12, rtol=0)
        with pytest.raises(ValueError, match="at most 9"):
            model(torch.zeros(1, 10, 17, 2, dtype=torch.float64))


def test_official_param_count():
    entry, _ = get_entry("mixste-243f-lift")
    model = build(entry.model_config(), device="meta")
    assert sum(p.numel() for p in model.parameters()) == 33_783_811 == entry.params
    assert len(model.state_dict()) == 204
    assert model.max_frames == 243 and model.backbone.feature_layout == "joint"


def test_wrong_family_checkpoint_is_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "poseformer.safetensors"  # PoseFormer shares the embedding names, not the blocks
    save_file({"Spatial_patch_to_embedding.weight": torch.zeros(2, 2), "Spatial_blocks.0.norm1.weight": torch.zeros(2)},
              path)
    with pytest.raises(CheckpointError, match="not a MixSTE checkpoint"):
        posezoo.create("mixste-243f-lift", depth=1, embed_dim_ratio=8, num_frame=9, checkpoint=path)
