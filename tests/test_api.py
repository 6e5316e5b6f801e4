"""The public API: names, entries, overrides, composition and input checks."""
from __future__ import annotations

import math

import pytest
import torch

import posezoo

TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)


def test_list_models_patterns_and_tags():
    names = posezoo.list_models("dstformer*")
    assert "dstformer-lift" in names and "dstformer-lite-lift" in names
    assert "dstformer-lift.h36m-ft" in names  # timm's arch.tag for published weights
    pretrained = posezoo.list_models("dstformer*", pretrained=True)
    assert pretrained and all("." in n for n in pretrained)
    assert set(pretrained) < set(names)
    assert posezoo.list_models("no-such-*") == []
    assert posezoo.list_models(["dstformer-lite*"]) == [n for n in names if n.startswith("dstformer-lite")]


def test_model_info_has_the_contract():
    info = posezoo.model_info("dstformer-lift")
    assert info["layout"] == "h36m-17"
    assert info["max_frames"] == 243
    assert info["params"] == 42_466_317
    assert info["license"] == "Apache-2.0"
    assert info["input"]["normalisation"] == "motionbert-screen"
    assert info["output"]["units"]
    assert info["config"]["backbone"]["dim_feat"] == 512
    assert "dstformer-lift.h36m-ft" in info["weights"]
    assert posezoo.model_info("dstformer-lift.pretrain")["selected_weights"] == "dstformer-lift.pretrain"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="dstformer-lift"):
        posezoo.create("dstfromer-lift")
    with pytest.raises(KeyError, match="no weights tagged 'nope'"):
        posezoo.create("dstformer-lift.nope")


def test_overrides_are_routed_to_their_part():
    model = posezoo.create("dstformer-lift", dim_out=4, **TINY)
    assert model.config["backbone"]["depth"] == 1 and model.config["backbone"]["dim_feat"] == 16
    assert model.config["head"]["dim_out"] == 4
    assert "depth" not in model.config["head"]
    out = model(torch.randn(2, 5, 17, 3))
    assert out.shape == (2, 5, 17, 4)


def test_unknown_override_lists_valid_names():
    with pytest.raises(TypeError, match="unknown hyper-parameter 'dpeth'.*depth.*dim_feat"):
        posezoo.create("dstformer-lift", dpeth=2)
    with pytest.raises(TypeError, match="unknown hyper-parameter 'in_channels'"):
        posezoo.create("dstformer-lift", in_channels=3)  # derived from the backbone, not settable


def test_mix_and_match_by_part_names():
    model = posezoo.create(backbone="dstformer", head="lift", **TINY)
    assert model(torch.randn(1, 3, 17, 3)).shape == (1, 3, 17, 3)
    swapped = posezoo.create("dstformer-lite-lift", head="lift", dim_out=2, **TINY)
    assert swapped(torch.randn(1, 3, 17, 3)).shape == (1, 3, 17, 2)
    with pytest.raises(TypeError, match="backbone= and head="):
        posezoo.create(backbone="dstformer")


def test_representation_and_leading_dims():
    model = posezoo.create("dstformer-lift", **TINY)
    x = torch.randn(2, 3, 7, 17, 3)  # (B, M, T, J, C)
    rep = model.representation(x)
    assert rep.shape == (2, 3, 7, 17, 16)
    torch.testing.assert_close(model(x)[1, 2], model(x[1, 2][None])[0], rtol=1e-5, atol=1e-6)


def test_short_clips_use_the_first_temporal_embeddings():
    model = posezoo.create("dstformer-lift", **TINY)
    assert model(torch.randn(1, 1, 17, 3)).shape == (1, 1, 17, 3)


@pytest.mark.parametrize("shape, message", [
    ((17, 3), "at least 4 dimensions"),
    ((1, 5, 26, 3), "expected 17 joints \\(h36m-17 layout\\) on dim -2, got 26"),
    ((1, 5, 17, 2), "expected 3 channels on dim -1, got 2"),
    ((1, 0, 17, 3), "empty input"),
    ((0, 5, 17, 3), "empty input"),
    ((1, 10, 17, 3), "T=10 frames but the model takes at most 9"),
])
def test_bad_shapes_name_expected_and_actual(shape, message):
    model = posezoo.create("dstformer-lift", **TINY)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_refused(bad):
    model = posezoo.create("dstformer-lift", **TINY)
    x = torch.zeros(1, 4, 17, 3)
    x[0, 2, 5, 1] = bad
    with pytest.raises(ValueError, match=r"NaN/inf values, first at index \(0, 2, 5, 1\)"):
        model(x)


def test_non_tensor_and_integer_input():
    model = posezoo.create("dstformer-lift", **TINY)
    with pytest.raises(ValueError, match="torch.Tensor"):
        model([[0.0]])
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(1, 4, 17, 3, dtype=torch.long))
