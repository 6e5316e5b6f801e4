"""PCT tokenizer training under mmengine: the single-pose mocap dataset, TokenizerTask's modes, and
tools/train.py + tools/test.py on the pct-tokenizer-small recipe (real Bandai-Namco 1 poses, shrunk
with --cfg-options) across the stage switch of posezoo's staged schedule."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import posezoo
from posezoo.data.datasets import MocapPoseDataset
from posezoo.engine.runner import load_config
from posezoo.engine.tasks import TokenizerTask
from posezoo.models.pct import PCTTokenizer, TokenizerRecipe, TokenizerTrainer

SMALL = dict(name="pct-tokenizer-3d", encoder=dict(num_blocks=1, hidden_dim=16, token_inter_dim=8, hidden_inter_dim=16),
             decoder=dict(num_blocks=1, hidden_dim=8, token_inter_dim=8, hidden_inter_dim=8),
             codebook=dict(token_num=4, token_dim=8, token_class_num=16))


@pytest.fixture(scope="module")
def bandai1(data_dir) -> Path:
    path = data_dir / "bandai1.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_pose_dataset_split_by_clip_root_relative_and_scaled(bandai1):
    train = MocapPoseDataset(bandai1, split="train", split_rule="index", frame_step=8)
    test = MocapPoseDataset(bandai1, split="test", split_rule="index", frame_step=8)
    assert train.scale == test.scale and 0.2 < train.scale < 0.7  # metres: the median pelvis-thorax distance
    thorax = np.linalg.norm(train.poses_m[:, 8], axis=-1)
    assert np.median(thorax) == pytest.approx(train.scale)
    clips = {split: {d.clip_meta(*d.index[i, :2])["clip"] for i in range(len(d))} for split, d in
             (("train", train), ("test", test))}
    assert clips["train"] and clips["test"] and not clips["train"] & clips["test"]
    assert len(clips["test"]) == len(range(0, len(train.files[0].clip_names), 5))  # every 5th clip held out
    item = test[3]
    assert item["inputs"].shape == (17, 4) and item["target"].shape == (17, 3)
    assert torch.all(item["inputs"][0, :3] == 0) and torch.all(item["inputs"][:, 3] == 1)
    torch.testing.assert_close(item["inputs"][:, :3] * test.scale, item["target"])
    assert item["meta"]["scale"] == test.scale and item["meta"]["frame"] % 8 == 0
    torch.testing.assert_close(test.poses()[3], item["inputs"])
    assert MocapPoseDataset(bandai1, split="test", split_rule="index", frame_step=8, scale=1.0).scale == 1.0


def test_tokenizer_task_modes_and_stages():
    task = TokenizerTask(model=SMALL, stage1_iters=2, restart_every=1, restart_fraction=2.0)
    poses = torch.cat((torch.randn(64, 17, 3) * 0.5, torch.ones(64, 17, 1)), -1)
    assert set(task(poses[:8], mode="loss")) == {"loss_joint"}  # stage 1: no quantisation
    codebook = task.tokenizer.codebook.clone()
    encoder = [p.detach().clone() for p in task.tokenizer.encoder_parameters()]
    task.trainer.start_stage2(poses)
    assert not torch.equal(task.tokenizer.codebook, codebook)  # seeded from encoder outputs
    assert not any(p.requires_grad for p in task.tokenizer.encoder_parameters())
    losses = task(poses[:8, None], mode="loss")  # (B, T, J, C): T independent poses
    assert set(losses) == {"loss_joint", "loss_e_latent"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in task.tokenizer.encoder_parameters())
    assert all(torch.equal(a, b) for a, b in zip(encoder, task.tokenizer.encoder_parameters()))
    # restart_fraction 2: every code's EMA size (1 after seeding) is below 2 x the mean, so all restart
    assert task.trainer.after_step(task.poses(poses[:8])[0], step=2) == 16
    task.eval()
    scale = torch.full((4,), 0.5, dtype=torch.float64)
    preds = task(poses[:4], target=poses[:4, :, :3] * 0.5, meta={"scale": scale, "clip": list("abcd")}, mode="predict")
    assert len(preds) == 4 and preds[2]["tokens"].shape == (4,) and preds[2]["meta"] == {"scale": 0.5, "clip": "c"}
    torch.testing.assert_close(preds[0]["pred"], task(poses[:1], mode="tensor")[0] * 0.5)
    with pytest.raises(ValueError, match="PCTTokenizerHead"):
        TokenizerTask(model=dict(name="dstformer-lite-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9))
    with pytest.raises(ValueError, match="image guidance"):
        TokenizerTrainer(PCTTokenizer(encoder=dict(hidden_dim=16, hidden_inter_dim=16, num_blocks=1),
                                      codebook=dict(token_num=4, token_dim=8, token_class_num=16),
                                      guide_ratio=0.5, guide_channels=4), TokenizerRecipe())


def test_stage_hook_is_required(tmp_path, bandai1):
    """A staged tokenizer recipe without TokenizerStageHook stops at the switch instead of silently
    training stage 1 on."""
    from mmengine.runner import Runner

    from posezoo.engine.runner import prepare

    cfg = load_config("pct-tokenizer-small", {"model.model": SMALL, "model.stage1_iters": 2,
                                              "train_cfg.max_iters": 4, "train_cfg.val_interval": 4,
                                              "train_dataloader.batch_size": 8,
                                              "train_dataloader.dataset.files": [str(bandai1)],
                                              "val_dataloader.dataset.files": [str(bandai1)],
                                              "test_dataloader.dataset.files": [str(bandai1)]})
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != "TokenizerStageHook"]
    with pytest.raises(RuntimeError, match="iteration 3 is past stage1_iters=2.*TokenizerStageHook"):
        Runner.from_cfg(prepare(cfg, str(tmp_path / "work"), "none")).train()


def test_recipes_load():
    full, small = load_config("pct-tokenizer"), load_config("pct-tokenizer-small")
    assert full.model.type == "TokenizerTask" and full.model.model.name == "pct-tokenizer-3d"
    assert full.optim_wrapper.optimizer.lr == 1e-2 and full.optim_wrapper.optimizer.weight_decay == 0.15
    assert full.val_evaluator[0].num_tokens == 2048 and small.val_evaluator[0].num_tokens == 32
    assert small.model.model.codebook.token_class_num == 32 and small.model.stage1_iters == 200
    assert any(h.type == "TokenizerStageHook" for h in small.custom_hooks)


def _scalars(work: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(work.glob("*/vis_data/scalars.json"))
            for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_train_across_the_stage_switch_then_test(tmp_path, bandai1):
    from tools.test import main as test_main
    from tools.train import main as train_main

    files = f"[{bandai1}]"
    options = [f"train_dataloader.dataset.files={files}", f"val_dataloader.dataset.files={files}",
               f"test_dataloader.dataset.files={files}", "train_dataloader.dataset.frame_step=8",
               "val_dataloader.dataset.frame_step=8", "test_dataloader.dataset.frame_step=8",
               "train_dataloader.batch_size=64", "train_cfg.max_iters=40", "train_cfg.val_interval=40",
               "model.stage1_iters=20", "model.restart_every=5", "default_hooks.logger.interval=1",
               "default_hooks.checkpoint.interval=10", "default_hooks.checkpoint.max_keep_ckpts=5"]
    work = tmp_path / "work"
    train_main(["pct-tokenizer-small", "--work-dir", str(work), "--cfg-options", *options])

    rows = _scalars(work)
    stages = {r["iter"]: r["stage"] for r in rows if "stage" in r}
    assert stages == {i: 1 if i <= 20 else 2 for i in range(1, 41)}
    losses = [r for r in rows if "loss" in r]
    assert all(np.isfinite(r["loss"]) for r in losses)
    assert all(("loss_e_latent" in r) == (r["iter"] > 20) for r in losses)
    val = next(r for r in rows if "codebook/perplexity" in r)
    assert 1 < val["codebook/perplexity"] <= 32 and 0 < val["codebook/usage"] <= 100
    assert np.isfinite(val["reconstruction/mpjpe"]) and val["reconstruction/mpjpe"] > 0

    # stage 1 trains the encoder; from the switch on it is frozen while the decoder and codebook learn
    weights = {i: load_file(work / f"iter_{i}.safetensors") for i in (10, 20, 30, 40)}
    enc, dec = "head.tokenizer.encoder.0.MLP_channel.ff.0.weight", "head.tokenizer.recover_embed.weight"
    assert not torch.equal(weights[10][enc], weights[20][enc])
    assert all(torch.equal(weights[20][k], weights[40][k]) for k in weights[20]
               if k.startswith(("head.tokenizer.encoder.", "head.tokenizer.start_embed", "head.tokenizer.token_mlp",
                                "head.tokenizer.feature_embed", "head.tokenizer.invisible_token")))
    assert not torch.equal(weights[30][dec], weights[40][dec])
    assert not torch.equal(weights[20]["head.tokenizer.codebook"], weights[40]["head.tokenizer.codebook"])

    # the exported tokenizer loads with posezoo.create and tokenizes held-out poses
    model = posezoo.create(work / "last").eval()
    assert model.meta["layout"] == "h36m-17" and model.meta["input"]["scale_m"] > 0
    poses = MocapPoseDataset(bandai1, split="test", split_rule="index", frame_step=8).poses()[:32, None]
    ids = model.head.encode_ids(poses)
    assert ids.shape == (32, 1, 8) and int(ids.max()) < 32
    torch.testing.assert_close(model(poses), model.head.tokenizer.decode_ids(ids[:, 0])[:, None])

    out = tmp_path / "results.json"
    data = test_main(["pct-tokenizer-small", "--checkpoint", str(work / "last"), "--out", str(out),
                      "--work-dir", str(tmp_path / "test"), "--cfg-options", *options])
    results = json.loads(out.read_text())
    assert results == json.loads(json.dumps(data)) and results["model"] == "pct-tokenizer-3d"
    metrics = results["metrics"]
    assert metrics["codebook/usage"]["unit"] == "%" and metrics["codebook/usage"]["protocol"] == "codebook-usage"
    assert metrics["codebook/perplexity"]["protocol"] == "codebook-perplexity"
    assert metrics["reconstruction/mpjpe"]["protocol"] == "tokenizer-reconstruction"
    assert metrics["reconstruction/mpjpe"]["unit"] == "mm"
    assert metrics["reconstruction/p_mpjpe"]["protocol"] == "h36m-p2"
    assert metrics["codebook/perplexity"]["value"] == pytest.approx(val["codebook/perplexity"])
    assert metrics["reconstruction/mpjpe"]["value"] == pytest.approx(val["reconstruction/mpjpe"], rel=1e-5)
    # the test's own data file, not the recipe's label (issue 16: overridden data files are named)
    assert "bandai1.npz" in results["dataset"] and "overridden" in results["dataset"]
