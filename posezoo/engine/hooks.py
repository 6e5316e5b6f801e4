"""Training hooks: safetensors export of every checkpoint, a rich progress bar, data checks."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from posezoo.entries import current_keys
from posezoo.registry import HOOKS


def task_of(runner):
    """The task model (``LiftTask``, ...) of a runner, unwrapped from DDP."""
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def export_model_dir(pose_model, state: dict[str, torch.Tensor], folder: str | Path) -> Path:
    """Write ``state`` (weights of ``pose_model``'s architecture) as a posezoo.save folder."""
    from posezoo.checkpoint import load_strict
    from posezoo.factory import build, save

    copy = build(pose_model.config, meta=pose_model.meta, device="meta")
    return save(load_strict(copy, state, source="training checkpoint"), folder)


def training_data_meta(dataset) -> dict:
    """What a model trained on ``dataset`` records in ``meta["data"]``: the source files with their
    licenses (the dataset's ``metainfo["sources"]``), the split, and the licenses
    the weights inherit from that data (``"unknown"`` where a source names none)."""
    info = dict(getattr(dataset, "metainfo", None) or {})
    sources = [current_keys(dict(s)) for s in info.get("sources") or []] or [{"file": type(dataset).__name__}]
    licenses = sorted({str(s.get("license") or "unknown") for s in sources})
    return {"sources": sources, "split": info.get("split"), "license": "; ".join(licenses)}


@HOOKS.register_module()
class SafetensorsExportHook(Hook):
    """Writes every checkpoint's model weights (EMA weights when an EMAHook runs) as safetensors.

    Beside each ``iter_N.pth`` / ``best_*.pth`` of CheckpointHook: ``<same name>.safetensors`` (the
    posezoo model's state dict); and the folders ``last/`` and ``best/`` in ``posezoo.save`` format
    (``model.safetensors`` + ``config.json``), ready for ``posezoo.create(folder)`` and the Hub.
    Every file is written atomically (temp file + ``os.replace``). Safetensors files whose ``.pth``
    CheckpointHook has deleted (``max_keep_ckpts``) are deleted too. Before training, the model's
    meta records the training data (:func:`training_data_meta`): ``meta["data"]``, and
    ``meta["license"]`` becomes the data's license (the architecture's moves to ``code_license``).
    """

    priority = "VERY_LOW"  # after EMAHook has swapped the EMA weights into the checkpoint

    def __init__(self, prefix: str = "model."):
        self.prefix = prefix
        self._seen = {"last_ckpt": None, "best_ckpt": None}

    def before_train(self, runner) -> None:
        meta = task_of(runner).model.meta
        data = training_data_meta(runner.train_dataloader.dataset)
        meta.setdefault("code_license", meta.get("license"))
        meta.update(data=data, license=data["license"])

    def _which(self, runner) -> tuple[str | None, str]:
        """Which checkpoint CheckpointHook is writing: its path (from the message hub) and kind."""
        for key, kind in (("last_ckpt", "last"), ("best_ckpt", "best")):
            path = runner.message_hub.get_info(key)
            if path is not None and path != self._seen[key]:
                self._seen[key] = path
                return path, kind
        return None, "last"

    @master_only
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from posezoo.checkpoint import save_weights_atomic

        state = {k[len(self.prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(self.prefix)}
        pose_model = task_of(runner).model
        path, kind = self._which(runner)
        work_dir = Path(runner.work_dir)
        current = Path(path).with_suffix(".safetensors") if path is not None else None
        if current is not None:
            save_weights_atomic(state, current, metadata={"format": "pt", "iter": str(checkpoint["meta"].get("iter"))})
        export_model_dir(pose_model, state, work_dir / kind)
        for stale in work_dir.glob("*.safetensors"):  # the .pth of `current` is written after this hook
            if stale.name != getattr(current, "name", None) and not stale.with_suffix(".pth").exists():
                stale.unlink()


@HOOKS.register_module()
class RichProgressHook(Hook):
    """A rich progress bar for training (iterations, losses, eta), validation and testing.

    On rank 0 only. While the bar is live, mmengine's log lines are printed above it (the logger's
    console handlers are pointed at rich's redirected stdout and restored afterwards).
    """

    priority = "LOW"

    def __init__(self, refresh_per_second: int = 4):
        self.refresh_per_second = refresh_per_second
        self.progress = None
        self.tasks: dict[str, int] = {}
        self._streams: list[tuple[logging.StreamHandler, object]] = []

    def _start(self, runner) -> None:
        if self.progress is not None:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 refresh_per_second=self.refresh_per_second)
        self.progress.start()
        for handler in runner.logger.handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.__stdout__, sys.__stderr__):
                self._streams.append((handler, handler.stream))
                handler.setStream(sys.stdout)

    def _add(self, runner, name: str, total: int, done: int = 0) -> None:
        self._start(runner)
        if name in self.tasks:
            self.progress.remove_task(self.tasks.pop(name))
        self.tasks[name] = self.progress.add_task(name, total=total, completed=done, info="")

    def _advance(self, name: str, info: str = "") -> None:
        if name in self.tasks:
            self.progress.update(self.tasks[name], advance=1, info=info)

    def _remove(self, name: str) -> None:
        if name in self.tasks:
            self.progress.remove_task(self.tasks.pop(name))

    @master_only
    def before_train(self, runner) -> None:
        self._add(runner, "train", runner.max_iters, runner.iter)

    @master_only
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        info = " ".join(f"{k.removeprefix('loss_')}={float(v.detach()):.4f}" for k, v in (outputs or {}).items()
                        if k.startswith("loss"))
        self._advance("train", info)

    @master_only
    def before_val_epoch(self, runner) -> None:
        self._add(runner, "val", len(runner.val_dataloader))

    @master_only
    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._advance("val")

    @master_only
    def after_val_epoch(self, runner, metrics=None) -> None:
        self._remove("val")

    @master_only
    def before_test_epoch(self, runner) -> None:
        self._add(runner, "test", len(runner.test_dataloader))

    @master_only
    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._advance("test")

    @master_only
    def after_run(self, runner) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.tasks.clear()
        for handler, stream in self._streams:  # the streams saved here: setStream may return None
            handler.setStream(stream)
        self._streams.clear()


def check_dataset(task, dataset, split: str) -> None:
    """Raise ``ValueError`` before training when ``dataset`` cannot feed the task's model: empty, another
    keypoint layout or joint count, other channels, or NaN/inf in its first sample."""
    pose_model = task.model
    name = pose_model.meta.get("name") or pose_model.config["backbone"]["type"]
    if len(dataset) == 0:
        raise ValueError(f"the {split} dataset ({type(dataset).__name__}) is empty")
    data_layout = getattr(dataset, "layout_out", None) or getattr(dataset, "layout", None)
    data_layout = getattr(data_layout, "name", data_layout)  # a KeypointLayout or its name
    model_layout = pose_model.meta.get("layout")
    if isinstance(data_layout, str) and model_layout and data_layout != model_layout:
        raise ValueError(f"the {split} dataset gives keypoints in layout {data_layout!r} but model {name} "
                         f"takes {model_layout!r}; set the dataset's layout_out={model_layout!r}")
    sample = dataset[0]
    inputs = np.asarray(sample["inputs"])
    joints, channels = pose_model.backbone.num_joints, pose_model.backbone.dim_in
    taken = getattr(task, "input_channels", None)  # the task feeds the first `taken` channels
    fits = inputs.shape[-1] >= taken == channels if taken else inputs.shape[-1] == channels
    if inputs.shape[-2] != joints or not fits:
        raise ValueError(f"the {split} dataset gives inputs of shape {inputs.shape} (..., J, C) but model {name} "
                         f"takes J={joints} joints ({model_layout or 'its layout'}) with C={channels} channels"
                         + (f" (the task feeds the first {taken})" if taken else ""))
    target = sample.get("target")
    arrays = {"inputs": sample["inputs"], **({f"target.{k}": v for k, v in target.items()}
                                           if isinstance(target, dict) else {"target": target})}
    for key, value in arrays.items():
        if value is not None and not np.isfinite(np.asarray(value, dtype=np.float64)).all():
            raise ValueError(f"the {split} dataset's first sample has NaN/inf in {key!r}; clean the data first")


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Checks train/val/test datasets against the model (:func:`check_dataset`) before the loops run."""

    priority = "VERY_HIGH"

    def before_train(self, runner) -> None:
        check_dataset(task_of(runner), runner.train_dataloader.dataset, "train")
        if runner.val_loop is not None and hasattr(runner.val_loop, "dataloader"):
            check_dataset(task_of(runner), runner.val_loop.dataloader.dataset, "val")

    def before_test(self, runner) -> None:
        check_dataset(task_of(runner), runner.test_loop.dataloader.dataset, "test")


@HOOKS.register_module()
class TokenizerStageHook(Hook):
    """Runs the staged schedule of a ``TokenizerTask`` in mmengine's loop (the task's
    :class:`posezoo.models.pct.TokenizerTrainer`, as ``train_tokenizer`` does in its own loop).

    Before iteration ``stage1_iters``: stage 2 starts (encoder frozen, decoder re-initialised,
    codebook seeded from the encoder outputs of up to ``seed_poses`` training poses, drawn with the
    trainer's generator) and the optimiser's state is cleared (a fresh AdamW, as
    ``train_tokenizer``). After each iteration: dead-code restart when due. A run resumed in stage 2
    freezes the encoder again. Logs ``train/stage`` and ``train/codes_restarted`` every iteration,
    and records the training data's scale in the model's ``meta["input"]["scale_m"]``.
    """

    priority = "NORMAL"

    def __init__(self, seed_poses: int = 16384):
        self.seed_poses = seed_poses

    def _poses(self, runner) -> torch.Tensor:
        """Up to ``seed_poses`` training poses (N, J, C) on the model's device."""
        task, dataset = task_of(runner), runner.train_dataloader.dataset
        n = len(dataset)
        if n <= self.seed_poses:
            pick = range(n)
        else:
            pick = torch.randperm(n, generator=task.trainer.generator)[:self.seed_poses].tolist()
        inputs = torch.stack([torch.as_tensor(dataset[i]["inputs"]) for i in pick])
        poses, _ = task.poses(inputs.to(next(task.parameters()).device))
        return poses

    def before_train(self, runner) -> None:
        task = task_of(runner)
        stage2 = task.trainer.stage2_step
        if stage2 is not None and runner.iter >= stage2:
            task.trainer.freeze_encoder()
        scale = getattr(runner.train_dataloader.dataset, "scale", None)
        if scale is not None:
            task.model.meta["input"] = {**task.model.meta.get("input", {}), "scale_m": float(scale)}

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        task = task_of(runner)
        if runner.iter == task.trainer.stage2_step:
            task.trainer.start_stage2(self._poses(runner))
            runner.optim_wrapper.optimizer.state.clear()
            runner.logger.info(f"tokenizer stage 2 from iteration {runner.iter + 1}: encoder frozen, "
                               f"decoder re-initialised, codebook seeded")

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        task = task_of(runner)
        poses, _ = task.poses(data_batch["inputs"].to(next(task.parameters()).device))
        restarted = task.trainer.after_step(poses, runner.iter)
        runner.message_hub.update_scalar("train/stage", task.trainer.stage)
        runner.message_hub.update_scalar("train/codes_restarted", restarted)
