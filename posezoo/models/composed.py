"""The one generic model class: any registered backbone composed with any registered head."""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from posezoo.precision import runs_in_compute_dtype
from posezoo.registry import BACKBONES, HEADS, MODELS

MAX_INPUT = 1e6  # |value| of a usable pose input (normalised coordinates are about 1, metres a few)
# What a backbone tells its head; a head takes those of these its constructor names.
DERIVED_HEAD_ARGS = ("in_channels", "num_joints", "num_joints_out", "feature_layout", "num_frames")


def resolve_args(cls: type, cfg: dict, owner: str) -> dict[str, Any]:
    """``cfg`` completed with ``cls``'s defaults; unknown names raise listing the valid ones."""
    params = {
        name: p for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = sorted(set(cfg) - set(params))
    if unknown:
        raise TypeError(f"{owner} {cls.__name__} has no argument(s) {unknown}; valid: {sorted(params)}")
    resolved = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    resolved.update(cfg)
    missing = sorted(set(params) - set(resolved))
    if missing:
        raise TypeError(f"{owner} {cls.__name__} needs argument(s) {missing}")
    return resolved


def _is_traced() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def check_pose_input(x: Any, num_joints: int, channels: int, max_frames: int | None,
                     layout: str | None = None) -> None:
    """Raise ``ValueError`` naming expected and actual when ``x`` is not a usable (..., T, J, C) pose."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of shape (B, T, J, C), got {type(x).__name__}")
    if x.ndim < 4:
        raise ValueError(f"expected at least 4 dimensions (B, T, J, C), got shape {tuple(x.shape)}")
    *lead, frames, joints, chans = x.shape
    if joints != num_joints:
        where = f" ({layout} layout)" if layout else ""
        raise ValueError(f"expected {num_joints} joints{where} on dim -2, got {joints} "
                         f"(shape {tuple(x.shape)}); convert the keypoints to the model's layout first")
    if chans != channels:
        raise ValueError(f"expected {channels} channels on dim -1, got {chans} (shape {tuple(x.shape)})")
    if frames == 0 or 0 in lead:
        raise ValueError(f"empty input: shape {tuple(x.shape)}")
    if max_frames is not None and frames > max_frames:
        raise ValueError(f"input has T={frames} frames but the model takes at most {max_frames}; "
                         "cut the sequence into windows (posezoo's lift does this)")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating point tensor, got {x.dtype}")
    finite = x.abs() <= MAX_INPUT  # False for NaN and inf too
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        raise ValueError(f"input has {len(bad)} NaN/inf values, first at index {tuple(bad[0].tolist())} (values "
                         f"beyond ±{MAX_INPUT:.0e} count too); fill or drop missing joints (confidence 0, x = y = 0) "
                         "and normalise the coordinates before the model")


@MODELS.register_module()
class PoseModel(nn.Module):
    """A backbone and a head.

    ``forward(x)``: x (B, [M,] T, J, C_in) -> the head's output. Leading dims before (T, J, C) are
    folded into the batch for the backbone and restored for the head.
    ``representation(x)``: the backbone's features, e.g. MotionBERT's (B, T, J, dim_rep).

    ``meta`` holds the contract of the named entry (layout, input normalisation, output units, ...).
    ``compute_dtype``: None (fp32) or ``torch.bfloat16``, set by :func:`posezoo.precision.set_dtype`;
    inputs and outputs are fp32 either way.
    """

    compute_dtype: torch.dtype | None = None

    def __init__(self, backbone: dict, head: dict, meta: dict | None = None):
        super().__init__()
        backbone_cls = BACKBONES.get(backbone["type"])
        if backbone_cls is None:
            raise KeyError(f"no backbone named {backbone['type']!r}; registered: {BACKBONES.names()}")
        if HEADS.get(head["type"]) is None:  # before building the backbone
            raise KeyError(f"no head named {head['type']!r}; registered: {HEADS.names()}")
        backbone_args = resolve_args(backbone_cls, {k: v for k, v in backbone.items() if k != "type"}, "backbone")
        self.backbone = backbone_cls(**backbone_args)
        self.config = {"backbone": {"type": backbone["type"], **backbone_args}}
        self._set_head(head)
        self.meta = dict(meta or {})

    def _set_head(self, head: dict) -> None:
        """Build ``head`` (a config with ``type``) on this backbone, taking what the backbone tells a
        head (:data:`DERIVED_HEAD_ARGS`), and record its config."""
        head_cls = HEADS.get(head["type"])
        head_params = inspect.signature(head_cls.__init__).parameters
        derived = {k: getattr(self.backbone, k) for k in DERIVED_HEAD_ARGS
                   if k in head_params and hasattr(self.backbone, k)}
        head_cfg = {k: v for k, v in head.items() if k != "type" and k not in derived}
        head_args = resolve_args(head_cls, {**head_cfg, **derived}, "head")
        self.head = head_cls(**head_args)
        self.config["head"] = {"type": head["type"], **{k: v for k, v in head_args.items() if k not in derived}}

    @property
    def max_frames(self) -> int | None:
        return getattr(self.backbone, "max_frames", None)

    def check_input(self, x: torch.Tensor) -> None:
        custom = getattr(self.backbone, "check_input", None)  # backbones whose input is not a pose clip
        if custom is not None:
            custom(x)
            return
        check_pose_input(x, self.backbone.num_joints, self.backbone.dim_in, self.max_frames,
                         self.meta.get("layout"))

    def example_input(self, batch: int = 2, frames: int | None = None, seed: int = 0) -> torch.Tensor:
        """A plausible input (B, T, J, dim_in): x, y in [-1, 1], confidence in [0, 1]. T defaults to
        the backbone's fixed window (``num_frames``) or min(9, max_frames). A backbone whose input
        is not a pose clip provides its own ``example_input(batch, generator)``."""
        g = torch.Generator().manual_seed(seed)
        if hasattr(self.backbone, "example_input"):
            return self.backbone.example_input(batch, g)
        backbone = self.backbone
        frames = frames or getattr(backbone, "num_frames", None) or min(9, self.max_frames or 9)
        x = torch.rand(batch, frames, backbone.num_joints, backbone.dim_in, generator=g) * 2 - 1
        if backbone.dim_in >= 3:
            x[..., 2] = x[..., 2].abs()
        return x

    @runs_in_compute_dtype
    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of x (..., T, J, C_in), leading dims kept; a floating x of another
        dtype than the weights (fp32 for a model with a ``compute_dtype``) is cast to theirs."""
        if not _is_traced():
            self.check_input(x)
            weight = next(self.parameters(), None)
            dtype = torch.float32 if self.compute_dtype else getattr(weight, "dtype", None)
            if dtype is not None and dtype.is_floating_point and x.dtype != dtype:
                x = x.to(dtype)  # e.g. float64 or float16 input to a float32 model
        lead = x.shape[:-3]
        features = self.backbone(x.reshape(-1, *x.shape[-3:]))
        return features.reshape(*lead, *features.shape[1:])

    @runs_in_compute_dtype
    def forward(self, x: torch.Tensor) -> Any:
        return self.head(self.representation(x))

    # timm's surface, for fine-tuning code written against timm models.
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's features (as :meth:`representation`)."""
        return self.representation(x)

    @runs_in_compute_dtype
    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> Any:
        """The head on backbone features; ``pre_logits``: a classifier's pooled features before its
        last layer (the features themselves for heads without one)."""
        if pre_logits:
            pool = getattr(self.head, "pre_logits", None)
            return pool(features) if pool is not None else features
        return self.head(features)

    @property
    def num_classes(self) -> int:
        """Classes of a classification head; 0 for other heads (lift, mesh), as timm says for none."""
        return int(getattr(self.head, "num_classes", 0))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classification head by a new, randomly initialised one with ``num_classes``
        outputs (same head config otherwise), on the old head's device and dtype; the backbone is kept.
        Heads without classes refuse: swap them with ``posezoo.create(name, head="action", num_classes=N)``."""
        if "num_classes" not in inspect.signature(type(self.head).__init__).parameters:
            raise TypeError(f"the {self.config['head']['type']} head has no classes to reset; build a classifier "
                            f"with posezoo.create(..., head='action', num_classes={num_classes})")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        weight = next(self.head.parameters())
        self._set_head({**self.config["head"], "num_classes": int(num_classes)})
        self.head.to(device=weight.device, dtype=weight.dtype)
