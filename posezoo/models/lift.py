"""The ``lift`` head: features -> 3D joints (B, T, J, dim_out)."""
from __future__ import annotations

import torch
from torch import nn

from posezoo.registry import HEADS


@HEADS.register_module(name=["LiftHead", "lift"])
class LiftHead(nn.Module):
    """A linear map to ``dim_out`` channels per joint.

    Per-joint features (``feature_layout='joint'``, (..., T, J, C)) map joint by joint, as
    MotionBERT's head does; per-frame features (``'frame'``, (..., T, C)) map to J_out * dim_out
    channels, as VideoPose3D's and PoseFormer's heads do. Both give (..., T, J_out, dim_out):
    J_out is ``num_joints_out`` (a backbone that predicts other joints than it reads, frame
    features only), else the input's ``num_joints``.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, dim_out: int = 3,
                 feature_layout: str = "joint", num_joints_out: int | None = None):
        super().__init__()
        if feature_layout not in ("joint", "frame"):
            raise ValueError(f"feature_layout must be 'joint' or 'frame', got {feature_layout!r}")
        out = num_joints if num_joints_out is None else num_joints_out
        if feature_layout == "joint" and out != num_joints:
            raise ValueError(f"per-joint features map joint by joint: num_joints_out ({out}) must equal "
                             f"num_joints ({num_joints})")
        self.num_joints, self.dim_out, self.feature_layout = out, dim_out, feature_layout
        width = dim_out if feature_layout == "joint" else out * dim_out
        self.fc = nn.Linear(in_channels, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.fc(features)
        if self.feature_layout == "frame":
            out = out.unflatten(-1, (self.num_joints, self.dim_out))
        return out
