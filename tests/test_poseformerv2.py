"""PoseFormerV2 + lift head against the official fixtures (QitaoZhao/PoseFormerV2 at 008036a, random
weights): 3 kept frames / 3 coefficients, and 1 / 3 where the official f // 2 token split routes a
frequency token through the frequency MLP."""
from __future__ import annotations

import pytest
import torch

import posezoo
from posezoo.checkpoint import CheckpointError
from posezoo.entries import all_entries, get_entry
from posezoo.factory import build, convert_checkpoint
from posezoo.models.poseformerv2 import PoseFormerV2, _cached_dct_matrices, dct_matrices
from posezoo.registry import BACKBONES
from tests.test_poseformer import fp32_tolerance, read_fixture

FIXTURES = ["poseformerv2_f27_k3_c3_e8_d2_h4", "poseformerv2_f27_k1_c3_e8_d2_h4"]
# Official parameter counts of the published models (README table), 139 state-dict entries each.
OFFICIAL_PARAMS = {
    "poseformerv2-243f-lift": 14_381_899,
    "poseformerv2-81f-k9c9-lift": 14_362_279,
    "poseformerv2-81f-k3c3-lift": 14_355_739,
    "poseformerv2-27f-k3c3-lift": 14_355_739,
    "poseformerv2-81f-k1c3-lift": 14_354_649,
    "poseformerv2-27f-k1c3-lift": 14_354_649,
}
CPU = torch.device("cpu")


@pytest.fixture(scope="module", params=FIXTURES)
def fixture(request, fixtures_dir):
    return read_fixture(fixtures_dir, request.param)


def official_overrides(sidecar: dict) -> dict:
    """The official constructor arguments, ``args`` flattened (its ``number_of_frames`` is num_frame)."""
    ctor = dict(sidecar["constructor"]["PoseTransformerV2"])
    args = dict(ctor.pop("args"))
    assert args.pop("number_of_frames") == ctor["num_frame"]
    return {**ctor, **args}


def _model(fixture):
    _, sidecar, container = fixture
    return posezoo.create("poseformerv2-243f-lift", checkpoint=container, **official_overrides(sidecar))


def test_reproduces_official_output_fp32(fixture):
    tensors, sidecar, _ = fixture
    model = _model(fixture)
    assert sum(p.numel() for p in model.parameters()) == sidecar["param_count"]
    with torch.no_grad():
        out = model(tensors["input.x"])
    assert out.shape == tensors["output.y"].shape
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
    """DCT coefficients, frequency embedding and the two norms, as the official module records them."""
    tensors, _, _ = fixture
    model = _model(fixture).double()
    x = tensors["input.x"].double()
    dct, _ = dct_matrices(x.shape[1], torch.float64, CPU)
    coeffs = (dct[:model.backbone.num_coeff_kept] @ x.flatten(2)).unflatten(2, x.shape[2:])
    assert (coeffs - tensors["aux.dct_coeffs_kept"].double()).abs().max().item() <= 1e-5
    seen = {}
    for name in ("Freq_embedding", "Spatial_norm", "Temporal_norm"):
        getattr(model.backbone, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    with torch.no_grad():
        model(x)
    for name, key in (("Freq_embedding", "aux.freq_embedding_out"), ("Spatial_norm", "aux.spatial_norm_out"),
                      ("Temporal_norm", "aux.temporal_norm_out")):
        assert seen[name].shape == tensors[key].shape, name
        assert (seen[name] - tensors[key].double()).abs().max().item() <= 1e-5, name


def test_head_norm_eps_is_official_and_the_tolerance_catches_it(fixture):
    tensors, sidecar, _ = fixture
    model = _model(fixture)
    assert model.backbone.head_norm.eps == 1e-5 and model.backbone.blocks[0].norm3.eps == 1e-6
    model.backbone.head_norm.eps = 1e-6
    with torch.no_grad():
        err = (model(tensors["input.x"]) - tensors["output.y"]).abs().max().item()
    assert err > fp32_tolerance(sidecar, "y")


def test_dct_matrices_are_torch_dct_and_cached():
    n = 7
    dct, idct = dct_matrices(n, torch.float64, CPU)
    k, m = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    assert torch.allclose(dct, 2 * torch.cos(torch.pi * k * (2 * m + 1) / (2 * n)), atol=1e-14, rtol=0)
    assert torch.allclose(idct @ dct, torch.eye(n, dtype=torch.float64), atol=1e-14, rtol=0)
    assert dct_matrices(n, torch.float64, CPU)[0] is dct
    assert dct_matrices(n, torch.float32, CPU)[0].dtype == torch.float32


def test_no_buffers_and_export_leaves_the_cache_usable():
    """The DCT is derived in forward (no buffer to be left on the meta device); tracing with
    torch.export must not leave symbolic tensors in the cache for later eager calls."""
    model = posezoo.create("poseformerv2-27f-k1c3-lift", embed_dim_ratio=4, depth=1, num_heads=2)
    assert list(model.buffers()) == []
    x = torch.randn(2, 27, 17, 2)
    with torch.no_grad():
        before = model(x)
        _cached_dct_matrices.cache_clear()  # export first meets the sizes with an empty cache
        program = torch.export.export(model, (x,))
        assert torch.allclose(program.module()(x), before, atol=1e-6)
        assert torch.equal(model(x), before)


def test_official_param_counts():
    entries = {name: e for name, e in all_entries().items() if e.family == "poseformerv2"}
    assert set(entries) == set(OFFICIAL_PARAMS)
    for name, count in OFFICIAL_PARAMS.items():
        model = build(entries[name].model_config(), device="meta")
        assert sum(p.numel() for p in model.parameters()) == entries[name].params == count, name
        assert len(model.state_dict()) == 139
        assert model.backbone.num_frames == model.max_frames == entries[name].max_frames


def test_wrong_frame_count_names_the_receptive_field():
    model = posezoo.create("poseformerv2-27f-k3c3-lift", embed_dim_ratio=4, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="receptive field of 27 frames.*T=26"):
        model(torch.zeros(1, 26, 17, 2))
    with pytest.raises(ValueError, match="at most 27"):
        model(torch.zeros(1, 28, 17, 2))
    assert model(torch.zeros(1, 27, 17, 2)).shape == (1, 1, 17, 3)


def test_bad_kept_counts_are_refused():
    with pytest.raises(ValueError, match="must be odd"):
        PoseFormerV2(num_frame=27, embed_dim_ratio=4, depth=1, num_heads=2, number_of_kept_frames=2)
    with pytest.raises(ValueError, match="between 1 and num_frame"):
        PoseFormerV2(num_frame=9, embed_dim_ratio=4, depth=1, num_heads=2, number_of_kept_frames=3,
                     number_of_kept_coeffs=11)


def test_converter_and_other_family(fixture, fixtures_dir):
    tensors, sidecar, container = fixture
    state = convert_checkpoint(container, "poseformerv2")
    assert len(state) == len(sidecar["state_dict_keys_in_order"]) == 79
    assert torch.equal(state["backbone.head_norm.bias"], tensors["state_dict.head.0.bias"])
    assert torch.equal(state["head.fc.bias"], tensors["state_dict.head.1.bias"])
    assert torch.equal(state["backbone.blocks.1.mlp2.fc1.weight"], tensors["state_dict.blocks.1.mlp2.fc1.weight"])
    _, _, v1_container = read_fixture(fixtures_dir, "poseformer_f9_e8_d2_h4")
    with pytest.raises(CheckpointError, match="not a PoseFormerV2 checkpoint.*a PoseFormer checkpoint"):
        posezoo.create("poseformerv2-27f-k1c3-lift", checkpoint=v1_container)


def test_names_and_weights_tables():
    assert BACKBONES.get("PoseFormerV2") is BACKBONES.get("poseformerv2") is PoseFormerV2
    for name in OFFICIAL_PARAMS:
        entry, weights = get_entry(f"{name}.h36m-cpn")
        assert weights.hf_hub_id == f"posezoo/{name}.h36m-cpn"
        assert weights.source and "drive.google.com" in weights.source
        assert entry.license == "MIT"
