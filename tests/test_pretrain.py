"""tools/train.py on the dstformer-lift-pretrain recipe (a tiny DSTformer, a few iterations on the real
Bandai-Namco 1 mocap, via --cfg-options): the batches the model trains on carry MotionBERT's 2D
corruption (masked joints and frames) while validation batches do not, the exported last/ folder holds
the EMA weights (not the raw ones), and the loss is finite."""
from __future__ import annotations

import json

import pytest
import torch
from mmengine.hooks import Hook

import posezoo
from posezoo.engine.hooks import task_of
from posezoo.engine.runner import load_config
from posezoo.registry import HOOKS

SEEN: dict[str, list] = {}


@HOOKS.register_module(force=True)
class RecordBatchesHook(Hook):
    """Keeps the inputs of every train and val batch, and at the end the raw and the EMA weights."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        SEEN["train"].append(data_batch["inputs"].clone())

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        SEEN["val"].append(data_batch["inputs"].clone())

    def after_train(self, runner):
        ema = next(h for h in runner.hooks if type(h).__name__ == "EMAHook")
        SEEN["raw"] = {k: v.clone() for k, v in task_of(runner).model.state_dict().items()}
        SEEN["ema"] = {k: v.clone() for k, v in ema.ema_model.module.model.state_dict().items()}


def zero_fractions(batches: list[torch.Tensor]) -> tuple[float, float]:
    """(share of frames whose joints are all (0, 0, 0), share of zeroed joints in the other frames)."""
    x = torch.cat(batches)  # (B, T, J, 3)
    zero_joint = (x == 0).all(dim=-1)
    zero_frame = zero_joint.all(dim=-1)
    return float(zero_frame.float().mean()), float(zero_joint[~zero_frame].float().mean())


@pytest.mark.slow
def test_pretrain_corrupts_training_inputs_and_exports_ema_weights(tmp_path, data_dir):
    from tools.train import main

    files = f"[{data_dir / 'bandai1.npz'}]"
    hooks = load_config("dstformer-lift-pretrain").custom_hooks
    assert [h.type for h in hooks] == ["DataCheckHook", "EMAHook", "SafetensorsExportHook", "RichProgressHook"]
    SEEN.update(train=[], val=[])
    work = tmp_path / "work"
    main(["dstformer-lift-pretrain", "--work-dir", str(work), "--cfg-options",
          "model.model.name=dstformer-lite-lift", "model.model.depth=1", "model.model.dim_feat=16",
          "model.model.dim_rep=16", "model.model.num_heads=2", "model.model.mlp_ratio=2", "model.model.maxlen=9",
          "model.flip_test=False", f"train_dataloader.dataset.files={files}", "train_dataloader.dataset.clip_len=9",
          "train_dataloader.dataset.stride=9", "train_dataloader.batch_size=16",
          f"val_dataloader.dataset.files={files}", "val_dataloader.dataset.clip_len=9",
          "val_dataloader.dataset.stride=400", f"test_dataloader.dataset.files={files}",
          "train_cfg.max_iters=6", "train_cfg.val_interval=6", "optim_wrapper.optimizer.lr=2e-3",
          "default_hooks.logger.interval=1", "default_hooks.checkpoint.interval=6",
          "custom_hooks.3.type=RecordBatchesHook"])  # the progress bar's slot: record what the model sees

    # MotionBERT's masking (frames p 0.1, joints p 0.05) in the training batches, none in validation
    assert len(SEEN["train"]) == 6 and SEEN["train"][0].shape == (16, 9, 17, 3)
    frames, joints = zero_fractions(SEEN["train"])
    assert 0.04 < frames < 0.2 and 0.02 < joints < 0.1, (frames, joints)
    assert SEEN["val"] and zero_fractions(SEEN["val"])[0] == 0.0

    rows = [json.loads(line) for line in next(work.glob("*/vis_data/scalars.json")).read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))

    # last/ holds the EMA weights, which differ from the raw weights after training
    model = posezoo.create(work / "last")
    exported = model.state_dict()
    assert exported.keys() == SEEN["ema"].keys() == SEEN["raw"].keys()
    for key, value in exported.items():
        torch.testing.assert_close(value, SEEN["ema"][key], rtol=0, atol=0)
    moved = [k for k in exported if exported[k].is_floating_point() and not torch.equal(exported[k], SEEN["raw"][k])]
    assert len(moved) > len(exported) // 2, "most weights differ between the EMA export and the raw model"
