"""The ``lift`` head: features -> 3D joints (B, T, J, dim_out)."""
from __future__ import annotations

import torch
from torch import nn

from posezoo.registry import HEADS


@HEADS.register_module(name=["LiftHead", "lift"])
class LiftHead(nn.Module):
    """A linear map to ``dim_out`` channels per joint.

    Per-joint features (``feature_layout='joint'``, (..., T, J, C)) map joint by joint, as
    MotionBERT's head does; per-frame features (``'frame'``, (..., T, C)) map to J * dim_out
    channels, as VideoPose3D's and PoseFormer's heads do. Both give (..., T, J, dim_out).
    """

    def __init__(self, in_channels: int, num_joints: int = 17, dim_out: int = 3,
                 feature_layout: str = "joint"):
        super().__init__()
        if feature_layout not in ("joint", "frame"):
            raise ValueError(f"feature_layout must be 'joint' or 'frame', got {feature_layout!r}")
        self.num_joints, self.dim_out, self.feature_layout = num_joints, dim_out, feature_layout
        width = dim_out if feature_layout == "joint" else num_joints * dim_out
        self.fc = nn.Linear(in_channels, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.fc(features)
        if self.feature_layout == "frame":
            out = out.unflatten(-1, (self.num_joints, self.dim_out))
        return out
