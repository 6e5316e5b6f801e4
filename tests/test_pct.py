"""PCT tokenizer, classifier head and token-lift head against the official fixtures (random weights,
small configs): outputs, token ids, distances, one training step (mask, EMA codebook update, losses,
gradients) and the classifier's training forward, in float32 and float64."""
from __future__ import annotations

import pytest
import torch

import posezoo
from posezoo.checkpoint import CheckpointError
from posezoo.entries import get_entry
from posezoo.factory import convert_checkpoint
from posezoo.models.pct import PCTTokenizer, codebook_usage, extract_joints_feat, joint_s1_loss
from posezoo.registry import CONVERTERS, HEADS, TOKENIZERS
from tests.conftest import load_fixture

FOLDER = "tcn-poseformer-pct"
TOKENIZER_FIXTURES = ["pct_tokenizer_noguide_k17_m8_d16_v32", "pct_tokenizer_guide0.5_k17_m8_d16_v32"]


def _load(fixtures_dir, name: str) -> tuple[dict, dict]:
    """All tensors of a fixture by their file keys (``state_dict.*``, ``input.*``, ``output.*``, ...)."""
    weights, io, sidecar = load_fixture(fixtures_dir, FOLDER, name)
    return {**weights, **io}, sidecar


def _tol(sidecar: dict, key: str) -> float:
    return max(10 * sidecar["max_abs_diff_fp32_vs_fp64"].get(key, 0.0), 1e-6)


def _close(actual: torch.Tensor, expected: torch.Tensor, atol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    torch.testing.assert_close(actual.to(expected.dtype), expected, atol=atol, rtol=1e-5, msg=lambda m: f"{what}: {m}")


def _tokenizer_overrides(sidecar: dict) -> dict:
    c = sidecar["constructor"]["PCT_Tokenizer"]
    t = c["tokenizer"]
    return dict(encoder=t["encoder"], decoder=t["decoder"], codebook=t["codebook"], loss_keypoint=t["loss_keypoint"],
                guide_ratio=c["guide_ratio"], guide_channels=c["guide_channels"], dim_in=3 + c["guide_channels"])


def _tokenizer_model(fixtures_dir, name: str, sidecar: dict):
    """posezoo.create('pct-tokenizer', checkpoint=<the official mmcv container>) at the fixture's config."""
    return posezoo.create("pct-tokenizer", checkpoint=fixtures_dir / FOLDER / f"{name}.official_layout.pt",
                          **_tokenizer_overrides(sidecar))


def _pose_input(io: dict) -> torch.Tensor:
    """Official (joints (B, K, 3), joints_feature (B, K, G)) as posezoo's input (B, T=1, K, 3 + G)."""
    parts = [io["input.joints"]] + ([io["input.joints_feature"]] if "input.joints_feature" in io else [])
    return torch.cat(parts, dim=-1).unsqueeze(1)


@pytest.mark.parametrize("name", TOKENIZER_FIXTURES)
def test_tokenizer_reproduces_official_eval(fixtures_dir, name):
    io, sidecar = _load(fixtures_dir, name)
    model = _tokenizer_model(fixtures_dir, name, sidecar)
    x = _pose_input(io)
    tok = model.head.tokenizer
    with torch.no_grad():
        out = model(x)
        recovered, ids, e_loss = model.head.tokenize(x)
        features = tok.encode(io["input.joints"], io.get("input.joints_feature"))
        _, distances = tok.quantize(features.flatten(0, 1))
    assert e_loss is None
    _close(out[:, 0], io["output.joints"], _tol(sidecar, "joints"), "joints")
    assert torch.equal(ids.flatten(), io["output.indices"]), "token ids differ"
    assert torch.equal(model.head.encode_ids(x).flatten(), io["output.indices"])
    _close(features, io["aux.encoder_features"], 1e-6, "encoder features")
    _close(distances, io["aux.distances"], 1e-5, "distances")
    _close(tok.codebook[ids.flatten()], io["aux.quantized"], 1e-6, "quantized")
    with torch.no_grad():  # float64 against the official float64 run
        out64 = model.double()(x.double())
    _close(out64[:, 0], io["output_fp64.joints"], 1e-9, "joints fp64")


def _train_step(tok: PCTTokenizer, io: dict, dtype: torch.dtype, keep: torch.Tensor | None):
    tok.to(dtype).train()
    feature = io["input.joints_feature"].to(dtype)
    recovered, ids, e_loss = tok(io["input.joints"].to(dtype), feature, keep)
    raw = e_loss.detach().clone()
    losses = tok.get_loss(recovered, io["input.joints"].to(dtype), e_loss)
    (losses["joint_loss"] + losses["e_latent_loss"]).backward()
    return recovered, ids, raw, losses


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tokenizer_training_step_matches_official(fixtures_dir, dtype):
    name = "pct_tokenizer_trainstep_guide0.5_k17"
    io, sidecar = _load(fixtures_dir, name)
    tok = _tokenizer_model(fixtures_dir, name, sidecar).head.tokenizer
    if dtype == torch.float32:  # the mask comes from the same RNG draw as the official code's
        torch.manual_seed(sidecar["mask_seed"])
        keep = None
    else:
        keep = io["input.rand_mask"]
    recovered, ids, raw, losses = _train_step(tok, io, dtype, keep)
    prefix = "output." if dtype == torch.float32 else "output_fp64."
    atol = (lambda k: _tol(sidecar, k)) if dtype == torch.float32 else (lambda k: 1e-9)
    assert torch.equal(ids, io["output.indices"])
    _close(recovered, io[prefix + "joints"], atol("joints"), "recovered joints")
    _close(raw, io[prefix + "e_latent_loss_raw"], atol("e_latent_loss_raw"), "e_latent_loss")
    for buffer in ("codebook", "ema_w", "ema_cluster_size"):
        _close(getattr(tok, buffer), io[prefix + "after." + buffer], atol("after." + buffer), f"{buffer} after")
    if dtype == torch.float32:
        for key in ("joint_loss", "e_latent_loss"):
            _close(losses[key], io["output.loss." + key], 1e-6, key)
        grads = {k[len("aux.grad."):]: v for k, v in io.items() if k.startswith("aux.grad.")}
        params = dict(tok.named_parameters())
        assert set(grads) == set(params)
        for key, grad in grads.items():
            _close(params[key].grad, grad, 2e-6, f"grad {key}")


def test_tokenizer_training_mask_is_the_recorded_one(fixtures_dir):
    io, sidecar = _load(fixtures_dir, "pct_tokenizer_trainstep_guide0.5_k17")
    torch.manual_seed(sidecar["mask_seed"])
    drop = sidecar["constructor"]["PCT_Tokenizer"]["tokenizer"]["encoder"]["drop_rate"]
    assert torch.equal(torch.rand(io["input.joints"].shape[:2]) > drop, io["input.rand_mask"])


def _classifier_model(fixtures_dir, name: str, sidecar: dict):
    c = sidecar["constructor"]["PCT_Head"]
    return posezoo.create("pct-classifier-head", checkpoint=fixtures_dir / FOLDER / f"{name}.official_layout.pt",
                          in_channels=c["in_channels"], image_size=c["image_size"], cls_head=c["cls_head"],
                          tokenizer=c["tokenizer"], loss_keypoint=c["loss_keypoint"])


def test_classifier_reproduces_official_eval(fixtures_dir):
    name = "pct_head_classifier_eval_k17"
    io, sidecar = _load(fixtures_dir, name)
    model = _classifier_model(fixtures_dir, name, sidecar)
    feature = io["input.feature"]
    with torch.no_grad():
        joints = model(feature)
        joints_p, scores = model.head.predict(feature)
        logits = model.head.cls_logits(feature)
    _close(joints, io["output.joints"], _tol(sidecar, "joints"), "joints")
    _close(joints_p, io["output.joints"], _tol(sidecar, "joints"), "predict joints")
    _close(scores, io["output.encoding_scores"], _tol(sidecar, "encoding_scores"), "encoding scores")
    _close(logits, io["aux.cls_logits"], 1e-5, "cls logits")
    # soft decoding: the argmax codes alone give a different pose
    hard = model.head.tokenizer.decode_ids(logits.argmax(-1))
    assert (hard - joints).abs().max() > 1e-3
    with torch.no_grad():
        joints64, scores64 = model.double().head.predict(feature.double())
    _close(joints64, io["output_fp64.joints"], 1e-9, "joints fp64")
    _close(scores64, io["output_fp64.encoding_scores"], 1e-9, "scores fp64")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_classifier_training_forward_matches_official(fixtures_dir, dtype):
    name = "pct_head_classifier_trainfwd_k17"
    io, sidecar = _load(fixtures_dir, name)
    head = _classifier_model(fixtures_dir, name, sidecar).head.to(dtype).train()
    joints = io["input.joints"].to(dtype)
    guide = io["input.extra_feature"].to(dtype)
    _close(extract_joints_feat(guide, joints, head.image_size), io["aux.joints_feature"].to(dtype), 0, "joints feature")
    logits, pred, ids = head.train_forward(io["input.feature"].to(dtype), joints, guide)
    losses = head.get_loss(logits, pred, ids, joints)
    assert torch.equal(ids, io["output.cls_label"])
    prefix = "output." if dtype == torch.float32 else "output_fp64."
    atol = (lambda k: _tol(sidecar, k)) if dtype == torch.float32 else (lambda k: 1e-9)
    _close(logits, io[prefix + "cls_logits"], atol("cls_logits"), "cls logits")
    _close(pred, io[prefix + "joints"], atol("joints"), "joints")
    for key in ("token_loss", "kpt_loss"):
        _close(losses[key], io[prefix + "loss." + key], atol("loss." + key), key)
    if dtype == torch.float32:  # BatchNorm running statistics after the train-mode forward
        state = head.state_dict()
        for key, value in io.items():
            if key.startswith("output.after."):
                _close(state[key[len("output.after."):]], value, 1e-6, key)
        assert head.tokenizer.training is False and not any(p.requires_grad for p in head.tokenizer.parameters())


@pytest.mark.parametrize("name", ["pct-tokenizer", "pct-tokenizer-woimgguide", "pct-classifier-head",
                                  "dstformer-token-lift", "pct-tokenizer-3d"])
def test_entry_parameter_counts(name):
    with torch.device("meta"):
        model = posezoo.create(name)
    assert sum(p.numel() for p in model.parameters()) == get_entry(name)[0].params


def test_registrations_and_aliases():
    assert TOKENIZERS.get("pct-tokenizer") is PCTTokenizer
    tok = TOKENIZERS.build(dict(type="pct-tokenizer", codebook=dict(token_num=4, token_dim=8, token_class_num=16),
                                encoder=dict(hidden_dim=16, hidden_inter_dim=16, token_inter_dim=8, num_blocks=1)))
    assert tok.codebook.shape == (16, 8)
    assert HEADS.get("token-lift").__name__ == "TokenLiftHead"
    assert HEADS.get("pct-classifier").__name__ == "PCTClassifierHead"


def test_converter_containers_and_errors(fixtures_dir):
    tok = convert_checkpoint(fixtures_dir / FOLDER / "pct_tokenizer_guide0.5_k17_m8_d16_v32.official_layout.pt", "pct")
    assert "head.tokenizer.codebook" in tok and all(k.startswith("head.tokenizer.") for k in tok)
    cls = convert_checkpoint(fixtures_dir / FOLDER / "pct_head_classifier_eval_k17.official_layout.pt", "pct")
    assert "head.cls_pred_layer.weight" in cls and "head.tokenizer.codebook" in cls
    # image backbones of a real PCT checkpoint are dropped
    extra = {"backbone.patch_embed.proj.weight": torch.zeros(1), "extra_backbone.norm.weight": torch.zeros(1),
             **{f"keypoint_head.{k[5:]}": v for k, v in cls.items()}}
    assert set(CONVERTERS.get("pct")(extra)) == set(cls)
    with pytest.raises(ValueError, match="not a PCT checkpoint"):
        CONVERTERS.get("pct")({"joints_embed.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="does not fit"):  # a classifier checkpoint is not a tokenizer
        posezoo.create("pct-tokenizer",
                       checkpoint=fixtures_dir / FOLDER / "pct_head_classifier_eval_k17.official_layout.pt")


def test_bad_inputs_raise_clear_errors():
    model = posezoo.create("pct-tokenizer-woimgguide", encoder=dict(num_blocks=1, hidden_dim=16, hidden_inter_dim=16),
                           codebook=dict(token_num=4, token_dim=8, token_class_num=16))
    with pytest.raises(ValueError, match="expected 17 joints"):
        model(torch.zeros(1, 1, 16, 3))
    with pytest.raises(ValueError, match="pass dim_in=27"):
        posezoo.create("pct-tokenizer", guide_channels=24)
    cls = posezoo.create("pct-classifier-head", in_channels=12, image_size=[64, 64],
                         cls_head=dict(conv_channels=8, conv_num_blocks=1, num_blocks=1, hidden_dim=8))
    with pytest.raises(ValueError, match=r"image feature map \(B, 12"):
        cls(torch.zeros(1, 8, 2, 2))
    with pytest.raises(ValueError, match="needs feature maps of"):
        cls(torch.zeros(1, 12, 4, 4))
    with pytest.raises(ValueError, match="feature_layout 'map'"):
        HEADS.get("PCTClassifierHead")(in_channels=4, feature_layout="joint")


SMALL_3D_TOKENIZER = dict(encoder=dict(num_blocks=1, hidden_dim=32, hidden_inter_dim=32, token_inter_dim=16),
                          decoder=dict(hidden_dim=16, hidden_inter_dim=16, token_inter_dim=16),
                          codebook=dict(token_num=16, token_dim=16, token_class_num=32))


def test_token_lift_composes_decodes_and_trains():
    torch.manual_seed(0)
    model = posezoo.create("dstformer-token-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9,
                           num_blocks=1, hidden_dim=16, hidden_inter_dim=32, tokenizer=SMALL_3D_TOKENIZER)
    head = model.head
    x = torch.randn(2, 9, 17, 3)
    target = torch.randn(2, 9, 17, 3) * 0.3
    assert model(x).shape == (2, 9, 17, 3)
    # the output is the frozen tokenizer's decoding of the softmax mix of codebook entries
    logits = head.cls_logits(model.representation(x))
    assert logits.shape == (2, 9, 16, 32)
    expected = head.tokenizer.decode(logits.softmax(-1).flatten(0, 1) @ head.tokenizer.codebook)
    torch.testing.assert_close(model(x).flatten(0, 1), expected)
    # training: CE on the tokenizer's ids + joint loss; the tokenizer stays frozen
    model.train()
    assert not head.tokenizer.training
    frozen = {k: v.clone() for k, v in head.tokenizer.state_dict().items()}
    features = model.representation(x).detach()
    opt = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(30):
        losses = head.loss(features, target)
        total = losses["token_loss"] + losses["joint_loss"]
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.7 * first
    assert all(torch.equal(v, head.tokenizer.state_dict()[k]) for k, v in frozen.items())
    # the same head on a frame-layout backbone: features (B, T, C)
    frame_head = HEADS.get("token-lift")(in_channels=24, num_joints=17, feature_layout="frame", num_blocks=1,
                                         hidden_inter_dim=32, tokenizer=SMALL_3D_TOKENIZER)
    assert frame_head(torch.randn(2, 5, 24)).shape == (2, 5, 17, 3)


def test_save_and_reload_roundtrip(tmp_path):
    model = posezoo.create("pct-tokenizer-woimgguide", encoder=dict(num_blocks=1, hidden_dim=16, hidden_inter_dim=16),
                           codebook=dict(token_num=4, token_dim=8, token_class_num=16))
    posezoo.save(model, tmp_path)
    again = posezoo.create(tmp_path)
    x = torch.rand(2, 3, 17, 3)
    torch.testing.assert_close(again(x), model(x))


def test_codebook_usage_and_joint_loss():
    usage = codebook_usage(torch.tensor([0, 0, 1, 1]), 4)
    assert usage["fraction_used"] == 0.5 and abs(usage["perplexity"] - 2.0) < 1e-12
    assert codebook_usage(torch.arange(8), 8)["perplexity"] == pytest.approx(8.0)
    pred, gt = torch.zeros(1, 2, 2), torch.tensor([[[0.01, 1.0, 1.0], [5.0, 5.0, 0.0]]])
    # 0.5 * 0.01^2 / 0.05 and 1 - 0.025 on the visible joint; the invisible one counts 0
    assert joint_s1_loss(pred, gt).item() == pytest.approx((0.5 * 1e-4 / 0.05 + 0.975) / 2 / 2)


def test_dead_code_restart_reseeds_only_unused_codes():
    tok = PCTTokenizer(codebook=dict(token_num=4, token_dim=8, token_class_num=16),
                       encoder=dict(hidden_dim=16, hidden_inter_dim=16, token_inter_dim=8, num_blocks=1))
    tok.ema_cluster_size[:10] = 5.0  # codes 10..15 unused
    alive = tok.codebook[:10].clone()
    features = torch.randn(64, 8) + 100.0
    assert tok.restart_dead_codes(features, min_size=0.5, generator=torch.Generator().manual_seed(0)) == 6
    assert torch.equal(tok.codebook[:10], alive)
    assert (tok.codebook[10:] - 100.0).abs().max() < 10  # now among the encoder outputs
    torch.testing.assert_close(tok.ema_w[10:], tok.codebook[10:] * tok.ema_cluster_size[10:, None])
    assert tok.restart_dead_codes(features, min_size=0.5) == 0
