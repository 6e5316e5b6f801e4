"""Evaluation metrics as mmengine ``BaseMetric`` classes (registered in posezoo's ``METRICS``).

Each metric states, for every number it reports, its unit, the protocol it follows and the data it
was measured on (``describe()``); ``tools/test.py`` copies that into the results file. The task
models' ``predict`` outputs one dict per sample: ``{"pred", "target", "meta"}`` for poses,
``{"logits", "label"}`` for classification, ``{"tokens"}`` for tokenizers.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from posezoo.evaluation.functional import POSE_ERRORS, mpjpe
from posezoo.registry import METRICS


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


class DescribedMetric(BaseMetric):
    """A metric that can say what each reported number means (unit, protocol, dataset)."""

    def __init__(self, dataset: str = "", prefix: str | None = None, collect_device: str = "cpu"):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.dataset = dataset

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> dict[str, dict]:
        """``{reported key: {"unit", "protocol", "dataset", ...}}``."""
        raise NotImplementedError


# Protocol ids of the pose errors: what is aligned before measuring.
POSE_PROTOCOLS = {
    "mpjpe": "h36m-p1",      # root-relative, no alignment
    "p_mpjpe": "h36m-p2",    # Procrustes (rotation, scale, translation) per frame
    "n_mpjpe": "n-mpjpe",    # scale-only per frame
    "mpjve": "mpjve",        # first temporal differences
    "accel": "accel-error",  # second temporal differences
}
POSE_UNITS = {"mpjve": "mm/frame", "accel": "mm/frame^2"}
MIN_FRAMES = {"mpjve": 2, "accel": 3}  # errors of frame differences


@METRICS.register_module()
class PoseErrorMetric(DescribedMetric):
    """3D joint errors of lifted clips: MPJPE, P-MPJPE, N-MPJPE, MPJVE, acceleration error.

    Args:
        errors: which errors to report, names of ``POSE_ERRORS``.
        average: ``"frame"`` (mean over every scored frame, key ``<error>``), ``"action"`` (mean per
            action, then over actions, MotionBERT's H36M score, key ``<error>_action_avg``), or both.
        group_key: the ``meta`` field holding the action of a clip (for ``average="action"``).
        scale: multiplies the inputs to get millimetres (1000 for metres).
        root_joint: joint subtracted from pred and target first (root-relative); None keeps them.
        protocols: override the protocol id of an error (defaults in ``POSE_PROTOCOLS``).
    """

    default_prefix = "pose"

    def __init__(self, errors: Sequence[str] = ("mpjpe", "p_mpjpe"), average: str | Sequence[str] = "frame",
                 group_key: str = "action", scale: float = 1000.0, root_joint: int | None = 0,
                 protocols: dict[str, str] | None = None, per_action: bool = False, **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(errors) - set(POSE_ERRORS))
        if unknown:
            raise KeyError(f"unknown pose error(s) {unknown}; known: {', '.join(POSE_ERRORS)}")
        self.errors = tuple(errors)
        self.average = (average,) if isinstance(average, str) else tuple(average)
        if not set(self.average) <= {"frame", "action"}:
            raise ValueError(f"average must be 'frame', 'action' or both, got {average!r}")
        self.group_key, self.scale, self.root_joint = group_key, scale, root_joint
        self.protocols = {**POSE_PROTOCOLS, **(protocols or {})}
        self.per_action = per_action

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred, target = _numpy(sample["pred"]) * self.scale, _numpy(sample["target"]) * self.scale
            if self.root_joint is not None:
                pred = pred - pred[..., self.root_joint:self.root_joint + 1, :]
                target = target - target[..., self.root_joint:self.root_joint + 1, :]
            pred, target = pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *target.shape[-2:])
            short = [e for e in self.errors if len(pred) < MIN_FRAMES.get(e, 1)]
            if short:
                raise ValueError(f"{', '.join(short)} need(s) at least {max(MIN_FRAMES[e] for e in short)} frames "
                                 f"per sample, got {len(pred)} (a centre-frame model or score_frames='centre'): "
                                 f"leave {short} out of the metric's errors")
            group = str((sample.get("meta") or {}).get(self.group_key, "all"))
            self.results.append({"group": group, **{e: POSE_ERRORS[e](pred, target) for e in self.errors}})

    def compute_metrics(self, results: list) -> dict[str, float]:
        out: dict[str, float] = {}
        for error in self.errors:
            if "frame" in self.average:
                out[error] = float(np.concatenate([r[error] for r in results]).mean())
            if "action" in self.average:
                groups: dict[str, list[np.ndarray]] = defaultdict(list)
                for r in results:
                    groups[r["group"]].append(r[error])
                per_group = {g: float(np.concatenate(v).mean()) for g, v in sorted(groups.items())}
                out[f"{error}_action_avg"] = float(np.mean(list(per_group.values())))
                if self.per_action:
                    out.update({f"{error}/{g}": v for g, v in per_group.items()})
        return out

    def describe(self) -> dict[str, dict]:
        out = {}
        for error in self.errors:
            info = {"unit": POSE_UNITS.get(error, "mm"), "protocol": self.protocols[error], "dataset": self.dataset}
            if "frame" in self.average:
                out[self.key(error)] = {**info, "averaging": "frame"}
            if "action" in self.average:
                out[self.key(f"{error}_action_avg")] = {**info, "averaging": "action"}
        return out


@METRICS.register_module()
class AccuracyMetric(DescribedMetric):
    """Top-k classification accuracy in percent, averaged over samples (keys ``top1``, ``top5``)."""

    default_prefix = "action"

    def __init__(self, topk: Sequence[int] = (1, 5), protocol: str = "top-k", **kwargs):
        super().__init__(**kwargs)
        self.topk, self.protocol = tuple(topk), protocol

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            logits = _numpy(sample["logits"])
            rank = int((logits > logits[int(sample["label"])]).sum())  # classes scored strictly higher
            self.results.append(rank)

    def compute_metrics(self, results: list) -> dict[str, float]:
        ranks = np.asarray(results)
        return {f"top{k}": float((ranks < k).mean() * 100) for k in self.topk}

    def describe(self) -> dict[str, dict]:
        return {self.key(f"top{k}"): {"unit": "%", "protocol": f"{self.protocol}{k}" if self.protocol == "top-k"
                                      else self.protocol, "dataset": self.dataset, "averaging": "sample"}
                for k in self.topk}


@METRICS.register_module()
class MeshMetric(DescribedMetric):
    """Mesh recovery errors: MPVE (vertices, after subtracting each mesh's own root joint) and MPJPE of
    the regressed joints (root-relative). ``pred`` and ``target`` are dicts with ``verts`` (T, V, 3)
    and ``kp_3d`` (T, J, 3)."""

    default_prefix = "mesh"

    def __init__(self, scale: float = 1.0, root_joint: int = 0, protocol: str = "mpve", **kwargs):
        super().__init__(**kwargs)
        self.scale, self.root_joint, self.protocol = scale, root_joint, protocol

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        r = self.root_joint
        for sample in data_samples:
            pred, target = sample["pred"], sample["target"]
            verts_p, verts_t = _numpy(pred["verts"]) * self.scale, _numpy(target["verts"]) * self.scale
            kp_p, kp_t = _numpy(pred["kp_3d"]) * self.scale, _numpy(target["kp_3d"]) * self.scale
            root_p, root_t = kp_p[..., r:r + 1, :], kp_t[..., r:r + 1, :]
            self.results.append({"mpve": mpjpe(verts_p - root_p, verts_t - root_t),
                                 "mpjpe": mpjpe(kp_p - root_p, kp_t - root_t)})

    def compute_metrics(self, results: list) -> dict[str, float]:
        return {k: float(np.concatenate([r[k] for r in results]).mean()) for k in ("mpve", "mpjpe")}

    def describe(self) -> dict[str, dict]:
        return {self.key("mpve"): {"unit": "mm", "protocol": self.protocol, "dataset": self.dataset, "averaging": "frame"},
                self.key("mpjpe"): {"unit": "mm", "protocol": "mesh-joints-rootrel", "dataset": self.dataset,
                                    "averaging": "frame"}}


@METRICS.register_module()
class CodebookMetric(DescribedMetric):
    """How a tokenizer uses its codebook: ``perplexity`` = exp(entropy of the code histogram) (1 = one
    code used, ``num_tokens`` = all used equally) and ``usage`` = percent of codes used at least once."""

    default_prefix = "codebook"

    def __init__(self, num_tokens: int, **kwargs):
        super().__init__(**kwargs)
        self.num_tokens = num_tokens

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            tokens = np.asarray(_numpy(sample["tokens"]), dtype=np.int64).ravel()
            self.results.append(np.bincount(tokens, minlength=self.num_tokens))

    def compute_metrics(self, results: list) -> dict[str, float]:
        counts = np.sum(results, axis=0)
        p = counts / counts.sum()
        entropy = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
        return {"perplexity": math.exp(entropy), "usage": float((counts > 0).mean() * 100)}

    def describe(self) -> dict[str, dict]:
        return {self.key("perplexity"): {"unit": "codes", "protocol": "codebook-perplexity", "dataset": self.dataset},
                self.key("usage"): {"unit": "%", "protocol": "codebook-usage", "dataset": self.dataset}}
