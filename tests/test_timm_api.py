"""timm's model surface on PoseModel: forward_features, forward_head, num_classes, reset_classifier."""
import pytest
import torch

import posezoo


def test_features_head_and_classifier_reset():
    torch.manual_seed(0)
    model = posezoo.create("dstformer-action", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9,
                           num_classes=10, hidden_dim=32).eval()
    x = model.example_input(batch=2)
    features = model.forward_features(x)
    assert torch.equal(features, model.representation(x))
    assert torch.allclose(model.forward_head(features), model(x))
    assert model.forward_head(features, pre_logits=True).shape == (2, 32)
    assert model.num_classes == 10
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.reset_classifier(3)
    assert model.num_classes == 3 and model(x).shape == (2, 3)
    assert model.config["head"]["num_classes"] == 3 and model.config["head"]["hidden_dim"] == 32
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, backbone[k])  # the backbone is kept
    rebuilt = posezoo.factory.build(model.config)  # the config describes the new model
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match=">= 1"):
        model.reset_classifier(0)


def test_lift_models_have_no_classes():
    model = posezoo.create("tcn-s-81f-lift", channels=16, filter_widths=[3])
    assert model.num_classes == 0
    features = model.forward_features(model.example_input())
    assert torch.equal(model.forward_head(features, pre_logits=True), features)
    with pytest.raises(TypeError, match="head='action'"):
        model.reset_classifier(5)
