"""Martinez et al.'s single-frame MLP lifter (ICCV 2017, "A simple yet effective baseline for 3d human
pose estimation"; github.com/una-dinosauria/3d-pose-baseline): each frame's 2D joints, flattened,
through a linear layer and residual blocks of (linear, BatchNorm, ReLU, dropout) x 2. It sees no
time, so it is the floor that temporal lifters trained under the same recipe must beat, and a fast
lifter in its own right. The official code is TensorFlow 1 and has no released PyTorch weights, so
there is no converter.

The ``lift`` head (``feature_layout='frame'``) is the official last linear layer: features ->
J x 3 per frame.
"""
from __future__ import annotations

import torch
from torch import nn

from posezoo.registry import BACKBONES


class _Block(nn.Module):
    """Two (linear, BatchNorm, ReLU, dropout) stages with a residual connection: (N, C) -> (N, C)."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(*(m for _ in range(2) for m in (
            nn.Linear(channels, channels), nn.BatchNorm1d(channels), nn.ReLU(inplace=True), nn.Dropout(dropout))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


@BACKBONES.register_module(name=["FrameMLP", "mlp"])
class FrameMLP(nn.Module):
    """Per-frame MLP: x (..., T, J, in_features) -> features (..., T, channels); frames independent.

    Args: ``num_joints``, ``in_features`` (2: x, y; 3: with confidence), ``channels`` (1024 in the
    paper), ``num_blocks`` (2), ``dropout`` (0.5).
    """

    feature_layout = "frame"
    max_frames = None

    def __init__(self, num_joints: int = 17, in_features: int = 3, channels: int = 1024, num_blocks: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        if min(num_joints, in_features, channels) < 1 or num_blocks < 0:
            raise ValueError(f"FrameMLP needs positive sizes, got num_joints={num_joints}, "
                             f"in_features={in_features}, channels={channels}, num_blocks={num_blocks}")
        self.num_joints, self.dim_in, self.in_channels = num_joints, in_features, channels
        self.inp = nn.Sequential(nn.Linear(num_joints * in_features, channels), nn.BatchNorm1d(channels),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*(_Block(channels, dropout) for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        features = self.blocks(self.inp(x.reshape(-1, self.num_joints * self.dim_in)))
        return features.reshape(*lead, -1)
