"""Task models: what mmengine's Runner trains. Each wraps one posezoo model (``self.model``, a
``PoseModel`` built through posezoo.factory) and adds the task's losses and predictions.

Batches are the collated dataset samples: ``inputs`` (B, [M,] T, J, C), and ``target`` (B, T, J, 3)
or ``label`` (B,), plus ``meta``. ``forward(mode="loss")`` returns named losses, ``mode="predict"``
one dict per sample for the metrics, ``mode="tensor"`` the raw output.
"""
from __future__ import annotations

from typing import Any

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from posezoo import losses as L
from posezoo.models.composed import PoseModel
from posezoo.registry import MODELS


def build_pose_model(model: dict) -> PoseModel:
    """``dict(name=<entry or saved folder>, **overrides)`` (posezoo.create) or
    ``dict(backbone=dict(type=...), head=dict(type=...))`` (a config, as in a saved config.json)."""
    from posezoo import factory

    model = dict(model)
    if "name" in model:
        built = factory.create(model.pop("name"), **model)
    elif {"backbone", "head"} <= set(model):
        built = factory.build({"backbone": model.pop("backbone"), "head": model.pop("head")}, meta=model.pop("meta", None))
        if model:
            raise TypeError(f"unexpected model keys {sorted(model)} next to backbone/head")
    else:
        raise ValueError(f"model needs 'name' (a posezoo entry) or 'backbone' and 'head', got keys {sorted(model)}")
    return built.train()


def _unbatch(meta: Any, size: int) -> list[dict]:
    """Collated ``meta`` (dict of lists/tensors) -> one plain dict per sample."""
    out: list[dict] = [{} for _ in range(size)]
    for key, value in (meta or {}).items():
        if isinstance(value, (list, tuple, torch.Tensor)) and len(value) == size:
            for i in range(size):
                item = value[i]
                out[i][key] = item.item() if isinstance(item, torch.Tensor) and item.numel() == 1 else item
    return out


class PoseTask(BaseModel):
    """Common part of the tasks: model building, and a loss check that stops on NaN/inf."""

    def __init__(self, model: dict, data_preprocessor: dict | None = None, init_checkpoint: str | None = None,
                 input_channels: int | None = None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.model = build_pose_model(model)
        # Feed only the first channels of the data (e.g. 2: x, y without confidence, for VideoPose3D).
        self.input_channels = input_channels
        if init_checkpoint is not None:  # e.g. pretrained weights to finetune from (posezoo or official)
            from posezoo.factory import load_checkpoint

            load_checkpoint(self.model, init_checkpoint)

    def init_weights(self) -> None:
        """Nothing to do: posezoo models initialise themselves when built, and a Runner-time re-init
        would overwrite ``init_checkpoint``."""

    def model_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The batch's inputs as the model takes them: float32, the first ``input_channels`` channels."""
        inputs = inputs.float()
        return inputs[..., :self.input_channels] if self.input_channels else inputs

    def parse_losses(self, losses: dict[str, torch.Tensor]):
        loss, log_vars = super().parse_losses(losses)
        if not torch.isfinite(loss):
            it = MessageHub.get_current_instance().get_info("iter")
            where = f"at iteration {it + 1}" if it is not None else "outside a training loop"
            parts = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            raise FloatingPointError(f"training stopped: loss is {float(loss.detach())} {where} ({parts}); "
                                     "lower the learning rate or check the data for NaN/inf")
        return loss, log_vars


@MODELS.register_module()
class LiftTask(PoseTask):
    """2D -> 3D lifting: ``inputs`` (B, T, J, 3) -> joints (B, T, J, 3) compared with ``target``.

    Args:
        model: the posezoo model (see :func:`build_pose_model`).
        losses: weight per name of ``posezoo.losses.POSE_LOSSES``; MotionBERT's pose3d recipe is
            ``dict(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0)``.
        flip_test: average the prediction with the mirrored prediction of the mirrored input.
        root_relative: set the predicted root joint to 0 in predictions (MotionBERT ``rootrel``).
        output: what the model learns to output, recorded in the saved model's ``meta["output"]``
            (default: the lifting datasets' root-relative camera-frame metres, ``LiftTask.OUTPUT``).
        score_frames: ``"all"`` scores every predicted frame; ``"centre"`` only the centre frame of
            each clip, where every model has its whole receptive field (to compare seq2seq models
            with centre-frame models such as PoseFormer on the same frames).

    A model that lifts a window to its centre frame (output (B, 1, J, 3) for T input frames) is
    trained and scored against the target's centre frame ``T // 2``.
    """

    OUTPUT = {"units": "m", "frame": "camera", "root_relative": True,
              "description": "x, y, z in metres in the camera frame (x right, y down, z forward), "
                             "relative to the root joint (pelvis)"}

    def __init__(self, model: dict, losses: dict[str, float] | None = None, flip_test: bool = False,
                 root_relative: bool = True, output: dict | None = None, score_frames: str = "all", **kwargs):
        super().__init__(model, **kwargs)
        if score_frames not in ("all", "centre"):
            raise ValueError(f"score_frames must be 'all' or 'centre', got {score_frames!r}")
        self.score_frames = score_frames
        joints_out = {k: v for k, v in self.model.meta.get("output", {}).items() if k == "layout"}  # kept
        self.model.meta.update(output=dict(output or self.OUTPUT, **joints_out), max_frames=self.model.max_frames)
        self.loss_weights = dict(losses or {"mpjpe": 1.0})
        unknown = sorted(set(self.loss_weights) - set(L.POSE_LOSSES))
        if unknown:
            raise KeyError(f"unknown pose loss(es) {unknown}; known: {', '.join(L.POSE_LOSSES)}")
        self.flip_test, self.root_relative = flip_test, root_relative

    def _flip(self, x: torch.Tensor, output: bool = False) -> torch.Tensor:
        """Mirror inputs in the model's input layout, or outputs (``output``) in its output layout."""
        from posezoo.data.layouts import get_layout

        layout = self.model.meta.get("layout", "h36m-17")
        if output:
            layout = self.model.meta.get("output", {}).get("layout", layout)
        return get_layout(layout).flip(x)

    def lift(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = self.model_inputs(inputs)
        pred = self.model(inputs)
        if self.flip_test and not self.training:
            pred = (pred + self._flip(self.model(self._flip(inputs)), output=True)) / 2
        return pred.float()

    def forward(self, inputs: torch.Tensor, target: torch.Tensor | None = None, meta: dict | None = None,
                mode: str = "tensor", **_):
        pred = self.lift(inputs)
        if mode == "tensor":
            return pred
        if target is None:
            raise ValueError(f"mode={mode!r} needs 'target' in the batch")
        target = target.float()
        if pred.shape[1] != target.shape[1]:
            if pred.shape[1] != 1:
                raise ValueError(f"the model gives {pred.shape[1]} frames for {target.shape[1]} target frames: "
                                 "LiftTask takes models that lift every frame or only the centre frame")
            centre = target.shape[1] // 2
            target = target[:, centre:centre + 1]
        if mode == "loss":
            return L.weighted_pose_loss(pred, target, self.loss_weights)
        if mode == "predict":
            if self.score_frames == "centre":
                centre = pred.shape[1] // 2
                pred, target = pred[:, centre:centre + 1], target[:, centre:centre + 1]
            if self.root_relative:
                pred = pred - pred[..., :1, :]
            return [{"pred": p, "target": t, "meta": m}
                    for p, t, m in zip(pred, target, _unbatch(meta, len(pred)))]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")


@MODELS.register_module()
class ActionTask(PoseTask):
    """Action recognition: ``inputs`` (B, M, T, J, 3) -> logits (B, K), cross entropy with ``label``."""

    def __init__(self, model: dict, label_smoothing: float = 0.0, **kwargs):
        super().__init__(model, **kwargs)
        self.label_smoothing = label_smoothing

    def forward(self, inputs: torch.Tensor, label: torch.Tensor | None = None, meta: dict | None = None,
                mode: str = "tensor", **_):
        logits = self.model(self.model_inputs(inputs)).float()
        if logits.ndim != 2:
            raise ValueError(f"ActionTask needs a classification head giving (B, K) logits, got {tuple(logits.shape)}")
        if mode == "tensor":
            return logits
        if label is None:
            raise ValueError(f"mode={mode!r} needs 'label' in the batch")
        if mode == "loss":
            return {"loss_ce": L.cross_entropy(logits, label, self.label_smoothing)}
        if mode == "predict":
            return [{"logits": lg, "label": int(lb), "meta": m}
                    for lg, lb, m in zip(logits, label, _unbatch(meta, len(logits)))]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")



@MODELS.register_module()
class MeshTask(PoseTask):
    """Mesh recovery: ``inputs`` (B, T, J, 3) 2D -> SMPL parameters, posed by a body model, compared
    with ``target`` = dict(``theta`` (B, T, 82), ``kp_3d`` (B, T, 17, 3) mm, ``verts`` (B, T, V, 3) mm).

    Args:
        model: a posezoo model with the mesh head (``SMPLRegressor``), e.g. ``dict(name="dstformer-mesh")``.
        body_model: your SMPL model file (``SMPL_NEUTRAL.pkl`` or a plain-array ``.npz``; licensed, never
            shipped) and ``j_regressor``: the 17 x V H36M joint regressor
            (``J_regressor_h36m_correct.npy``). They are given to the task, not to the model config,
            so checkpoints and saved models hold no local paths; give them again to
            ``posezoo.create(folder, smpl_model_path=..., j_regressor_path=...)`` for vertices.
        losses: weights of :func:`posezoo.losses.weighted_mesh_loss`; MotionBERT's mesh recipe
            (``MeshLoss``, L1) is ``dict(mpjpe=0.5, velocity=10.0, pose=1000.0, shape=1.0, norm=20.0)``.
        flip_test: evaluate with the official mesh flip test (:func:`posezoo.models.mesh.mesh_flip_test`).

    ``mode="predict"`` gives ``{"pred": {verts, kp_3d}, "target": {verts, kp_3d}, "meta"}`` per sample
    (``MeshMetric``); ``mode="tensor"`` the head's dict with ``verts``, ``joints`` and ``kp_3d``.
    """

    LOSSES = {"mpjpe": 0.5, "velocity": 10.0, "pose": 1000.0, "shape": 1.0, "norm": 20.0}

    def __init__(self, model: dict, body_model: str, j_regressor: str, losses: dict[str, float] | None = None,
                 flip_test: bool = False, **kwargs):
        from posezoo.models.mesh import SMPLBody

        super().__init__(model, **kwargs)
        head = self.model.head
        if not hasattr(head, "body"):
            raise ValueError(f"MeshTask needs a mesh head (SMPLRegressor) giving SMPL parameters, got "
                             f"{type(head).__name__}")
        head.body = SMPLBody(body_model, j_regressor)  # not a module: stays out of state dicts
        self.model.meta.update(max_frames=self.model.max_frames)
        self.loss_weights = dict(self.LOSSES if losses is None else losses)
        unknown = sorted(set(self.loss_weights) - set(L.POSE_LOSSES) - set(L.MESH_TERMS))
        if unknown:
            raise KeyError(f"unknown mesh loss(es) {unknown}; known: {', '.join([*L.POSE_LOSSES, *L.MESH_TERMS])}")
        self.flip_test = flip_test

    def forward(self, inputs: torch.Tensor, target: dict | None = None, meta: dict | None = None,
                mode: str = "tensor", **_):
        from posezoo.models.mesh import mesh_flip_test

        inputs = self.model_inputs(inputs)
        if self.flip_test and not self.training and mode != "loss":
            out = mesh_flip_test(self.model, inputs, self.model.meta.get("layout", "h36m-17"))
        else:
            out = self.model(inputs)
        if mode == "tensor":
            return out
        if target is None:
            raise ValueError(f"mode={mode!r} needs 'target' in the batch")
        target = {k: v.float() for k, v in target.items()}
        if mode == "loss":
            return L.weighted_mesh_loss(out, target, self.loss_weights)
        if mode == "predict":
            keys = ("verts", "kp_3d")
            return [{"pred": {k: out[k][i] for k in keys}, "target": {k: target[k][i] for k in keys}, "meta": m}
                    for i, m in enumerate(_unbatch(meta, len(inputs)))]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")


@MODELS.register_module()
class TokenizerTask(PoseTask):
    """Pose tokenizer training (PCT: a ``PCTPoseInput`` backbone + ``PCTTokenizerHead``) by posezoo's
    staged schedule, the same :class:`posezoo.models.pct.TokenizerTrainer` as ``train_tokenizer``.

    ``inputs`` (B, J, C) single poses or (B, T, J, C) (T independent poses), C = joint_dim + 1
    (coordinates, visibility); ``target`` (B, [T,] J, joint_dim) the poses in metres and
    ``meta["scale"]`` (metres per input unit), as :class:`posezoo.data.MocapPoseDataset` gives.
    ``mode="loss"``: stage 1 ``loss_joint`` (unquantised autoencoder), stage 2 (or end-to-end)
    ``loss_joint`` + ``loss_e_latent`` (the official smooth-L1 joint loss and VQ commitment).
    ``mode="predict"``: per sample ``tokens`` (ids, [T,] M) for ``CodebookMetric`` and ``pred`` /
    ``target`` in metres for ``PoseErrorMetric``. The stage switch and dead-code restarts happen in
    :class:`posezoo.engine.hooks.TokenizerStageHook`, which every tokenizer recipe must run.

    Args:
        model: the posezoo model (see :func:`build_pose_model`), e.g. ``dict(name="pct-tokenizer-3d")``.
        staged, stage1_iters, dead_code_restart, restart_every, restart_fraction, seed: the
            :class:`~posezoo.models.pct.TokenizerRecipe` fields (iterations of the Runner's loop).
    """

    def __init__(self, model: dict, staged: bool = True, stage1_iters: int = 1000, dead_code_restart: bool = True,
                 restart_every: int = 20, restart_fraction: float = 0.05, seed: int = 0, **kwargs):
        from posezoo.models.pct import PCTTokenizerHead, TokenizerRecipe, TokenizerTrainer

        super().__init__(model, **kwargs)
        if not isinstance(self.model.head, PCTTokenizerHead):
            raise ValueError(f"TokenizerTask trains PCT tokenizers (head PCTTokenizerHead), got head "
                             f"{type(self.model.head).__name__}")
        recipe = TokenizerRecipe(staged=staged, dead_code_restart=dead_code_restart, stage1_steps=stage1_iters,
                                 restart_every=restart_every, restart_fraction=restart_fraction, seed=seed)
        self.trainer = TokenizerTrainer(self.tokenizer, recipe)
        self.model.meta.setdefault("output", {"units": "input", "root_relative": True})

    @property
    def tokenizer(self):
        return self.model.head.tokenizer

    def poses(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Inputs (B, [T,] J, C) -> (poses (N, J, joint_dim + 1) checked by the model, leading shape)."""
        x = self.model_inputs(inputs)
        lead = tuple(x.shape[:-2])
        x = self.model.representation(x if x.ndim >= 4 else x.unsqueeze(1))  # the model's input check
        return x.reshape(-1, *x.shape[-2:]), lead

    def train_step(self, data, optim_wrapper):
        it = MessageHub.get_current_instance().get_info("iter")  # the Runner's, 0-based
        if self.trainer.stage == 1 and it is not None and it >= self.trainer.stage2_step:
            raise RuntimeError(f"iteration {it + 1} is past stage1_iters={self.trainer.stage2_step} but stage 2 has "
                               "not started: add dict(type='TokenizerStageHook') to the config's custom_hooks")
        return super().train_step(data, optim_wrapper)

    def forward(self, inputs: torch.Tensor, target: torch.Tensor | None = None, meta: dict | None = None,
                mode: str = "tensor", **_):
        x, lead = self.poses(inputs)
        if mode == "loss":
            return {"loss_" + k.removesuffix("_loss"): v for k, v in self.trainer.losses(x).items()}
        recovered, ids, _ = self.tokenizer(x)
        recovered = recovered.float().reshape(*lead, *recovered.shape[-2:])
        if mode == "tensor":
            return recovered
        if mode != "predict":
            raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
        ids = ids.reshape(*lead, -1)
        d = self.tokenizer.joint_dim
        if target is None:  # measure in the input's units
            target, scale = x[..., :d].reshape(*lead, -1, d), torch.ones(lead[0], device=x.device)
        else:
            scale = torch.as_tensor((meta or {}).get("scale", 1.0), dtype=torch.float32, device=x.device)
            scale = scale.expand(lead[0]) if scale.ndim == 0 else scale
        scale = scale.reshape(-1, *[1] * (recovered.ndim - 1))
        return [{"tokens": i, "pred": p, "target": t, "meta": m}
                for i, p, t, m in zip(ids, recovered * scale, target.float(), _unbatch(meta, lead[0]))]
