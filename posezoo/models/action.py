"""Action recognition heads of MotionBERT (``lib/model/model_action.py``): classify or embed a clip.

Both heads pool the backbone's features the official way: dropout, mean over frames, flatten the
joints into the channels (J * C), mean over persons M, then

- ``ActionHeadClassification`` (alias ``action``): ``fc1`` -> ``bn`` (BatchNorm1d) -> ReLU -> ``fc2``,
  giving logits (B, num_classes);
- ``ActionHeadEmbed`` (alias ``action-embed``): ``fc1`` -> L2 normalisation, giving unit embeddings
  (B, hidden_dim), as the one-shot NTU-120 setting uses.

Module names match the official ones, so ``ActionNet`` checkpoints load through the ``dstformer``
converter without renaming. The official ``dim_rep`` is ``in_channels`` here, taken from the backbone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posezoo.registry import HEADS

FEATURE_LAYOUTS = ("joint", "frame")


def check_feature_layout(feature_layout: str) -> None:
    if feature_layout not in FEATURE_LAYOUTS:
        raise ValueError(f"feature_layout must be one of {FEATURE_LAYOUTS}, got {feature_layout!r}")


def frame_features(features: torch.Tensor, in_channels: int, num_joints: int, feature_layout: str,
                   lead: str, max_lead: int | None, head: str) -> torch.Tensor:
    """Backbone features as one vector per frame: (..., T, J, C) or (..., T, C) -> (..., T, D).

    D = J * C for per-joint features (``feature_layout='joint'``), C for per-frame features
    (``'frame'``). ``lead`` names the dims before T (for messages), ``max_lead`` is how many there
    may be (None: any number, at least one). A tensor that does not fit raises ``ValueError``
    naming the expected and the actual shape.
    """
    per_frame = (num_joints, in_channels) if feature_layout == "joint" else (in_channels,)
    min_ndim = len(per_frame) + 2
    max_ndim = None if max_lead is None else len(per_frame) + 1 + max_lead
    if not isinstance(features, torch.Tensor):
        raise ValueError(f"{head} expects a torch.Tensor of features, got {type(features).__name__}")
    if (features.ndim < min_ndim or (max_ndim is not None and features.ndim > max_ndim)
            or tuple(features.shape[-len(per_frame):]) != per_frame):
        names = "J, C" if feature_layout == "joint" else "C"
        raise ValueError(f"{head} expects {feature_layout}-layout features ({lead} T, {names}) with "
                         f"({names}) = {per_frame}, got shape {tuple(features.shape)}")
    return features.flatten(-len(per_frame)) if feature_layout == "joint" else features


class _ActionPool(nn.Module):
    """The shared start of both action heads: dropout, mean over T, flatten J * C, mean over M.

    forward: (B, [M,] T, J, C) or, for per-frame features, (B, [M,] T, C) -> (B, D), D = J * C or C.
    """

    def __init__(self, in_channels: int, num_joints: int, dropout_ratio: float, feature_layout: str):
        super().__init__()
        check_feature_layout(feature_layout)
        self.in_channels, self.num_joints, self.feature_layout = in_channels, num_joints, feature_layout
        self.pooled_dim = in_channels * (num_joints if feature_layout == "joint" else 1)
        self.dropout = nn.Dropout(p=dropout_ratio)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        x = frame_features(features, self.in_channels, self.num_joints, self.feature_layout,
                           lead="B, [M,]", max_lead=2, head=type(self).__name__)
        x = self.dropout(x).mean(dim=-2)  # over frames: (B, [M,] D)
        return x.mean(dim=1) if x.ndim == 3 else x  # over persons


@HEADS.register_module(name=["ActionHeadClassification", "action"])
class ActionHeadClassification(_ActionPool):
    """Action logits (B, num_classes) from features (B, [M,] T, J, C) or (B, [M,] T, C).

    Official defaults: the hidden width is 2048 in every official build (``ActionNet`` never passes
    ``hidden_dim`` to this head); NTU-60 has 60 classes; the configs use ``dropout_ratio`` 0.5.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, num_classes: int = 60,
                 dropout_ratio: float = 0.0, hidden_dim: int = 2048, feature_layout: str = "joint"):
        super().__init__(in_channels, num_joints, dropout_ratio, feature_layout)
        self.num_classes = num_classes
        self.bn = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(self.pooled_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, num_classes)

    def pre_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, hidden_dim): the pooled clip features before the last linear layer."""
        return self.relu(self.bn(self.fc1(self.pool(features))))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.pre_logits(features))


@HEADS.register_module(name=["ActionHeadEmbed", "action-embed"])
class ActionHeadEmbed(_ActionPool):
    """L2-normalised clip embeddings (B, hidden_dim) from features (B, [M,] T, J, C) or (B, [M,] T, C).

    The one-shot NTU-120 config uses hidden_dim 2048 and ``dropout_ratio`` 0.1.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, dropout_ratio: float = 0.0,
                 hidden_dim: int = 2048, feature_layout: str = "joint"):
        super().__init__(in_channels, num_joints, dropout_ratio, feature_layout)
        self.fc1 = nn.Linear(self.pooled_dim, hidden_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc1(self.pool(features)), dim=-1)
