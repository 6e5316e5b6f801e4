"""MixSTE, the mixed spatio-temporal encoder for seq2seq 3D lifting (Zhang et al., CVPR 2022).

Official code: github.com/JinluZhang1126/MixSTE at 72a36be, common/model_cross.py ``MixSTE2``.
Each of ``depth`` stages runs a spatial transformer block over the J joints of every frame, then a
temporal block over the F frames of every joint; one ``Spatial_norm`` and one ``Temporal_norm``
are shared by all stages and re-applied after each block. The positional embeddings are added once,
before the first spatial (``Spatial_pos_embed``) and the first temporal block
(``Temporal_pos_embed``). Blocks are timm's pre-norm ViT blocks (LayerNorm eps 1e-6), whose keys
match the official ``Block``.

The backbone ends with the official head's LayerNorm (eps 1e-5, ``head.0``) and returns per-joint
features (N, F, J, C); the ``lift`` head's ``fc`` is the official ``head.1``.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from posezoo.models.poseformer import OTHER_FAMILIES, convert_head_split
from posezoo.registry import BACKBONES, CONVERTERS


@BACKBONES.register_module(name=["MixSTE", "mixste"])
class MixSTE(nn.Module):
    """MixSTE2 with the official hyper-parameter names.

    Args: ``num_frame`` (the clip length F the temporal embedding is trained for), ``num_joints``,
    ``in_chans`` (2: x, y), ``embed_dim_ratio`` (the channel width C), ``depth``, ``num_heads``,
    ``mlp_ratio``, ``qkv_bias``, ``qk_scale`` (None: head_dim ** -0.5), ``drop_rate``,
    ``attn_drop_rate``, ``drop_path_rate`` (linearly increasing over the stages).

    forward: x (N, T, num_joints, in_chans), T <= num_frame -> features (N, T, num_joints, C).
    A clip shorter than ``num_frame`` is edge-padded on the right to ``num_frame`` frames and the
    features cropped back to T, as run.py's ``eval_data_prepare`` does for short sequences.
    """

    feature_layout = "joint"

    def __init__(self, num_frame: int = 243, num_joints: int = 17, in_chans: int = 2,
                 embed_dim_ratio: int = 512, depth: int = 8, num_heads: int = 8, mlp_ratio: float = 2.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1):
        super().__init__()
        if embed_dim_ratio % num_heads:
            raise ValueError(f"embed_dim_ratio {embed_dim_ratio} is not divisible by num_heads {num_heads}")
        self.num_joints, self.dim_in, self.in_channels = num_joints, in_chans, embed_dim_ratio
        self.max_frames = self.num_frames = num_frame
        dim = embed_dim_ratio
        norm_layer = partial(nn.LayerNorm, eps=1e-6)

        self.Spatial_patch_to_embedding = nn.Linear(in_chans, dim)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, num_frame, dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, depth, device="cpu")]

        def blocks() -> nn.ModuleList:
            return nn.ModuleList(
                Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=drop_rate,
                      attn_drop=attn_drop_rate, drop_path=rate, norm_layer=norm_layer) for rate in rates)

        self.STEblocks = blocks()
        self.TTEblocks = blocks()
        if qk_scale is not None:  # timm's fused path always scales by head_dim ** -0.5
            for block in (*self.STEblocks, *self.TTEblocks):
                block.attn.scale, block.attn.fused_attn = qk_scale, False
        self.Spatial_norm = norm_layer(dim)
        self.Temporal_norm = norm_layer(dim)
        self.head_norm = nn.LayerNorm(dim)  # official head.0, eps 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, frames, joints, chans = x.shape
        if frames > self.num_frames or (joints, chans) != (self.num_joints, self.dim_in):
            raise ValueError(f"expected (N, T <= {self.num_frames}, {self.num_joints}, {self.dim_in}), "
                             f"got {tuple(x.shape)}")
        f = self.num_frames
        if frames < f:  # replicate the last frame, (N, T, J*C) as (N, J*C, T) for F.pad
            x = F.pad(x.flatten(2).transpose(1, 2), (0, f - frames), mode="replicate")
            x = x.transpose(1, 2).unflatten(2, (joints, chans))
        x = self.pos_drop(self.Spatial_patch_to_embedding(x) + self.Spatial_pos_embed)  # (N, F, J, C)
        c = x.shape[-1]
        for i, (spatial, temporal) in enumerate(zip(self.STEblocks, self.TTEblocks)):
            x = self.Spatial_norm(spatial(x.reshape(n * f, joints, c)))
            x = x.reshape(n, f, joints, c).transpose(1, 2).reshape(n * joints, f, c)
            if i == 0:
                x = self.pos_drop(x + self.Temporal_pos_embed)
            x = self.Temporal_norm(temporal(x))
            x = x.reshape(n, joints, f, c).transpose(1, 2)
        return self.head_norm(x[:, :frames])


@CONVERTERS.register_module("mixste")
def convert_mixste(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official MixSTE2 ``model_pos`` (``module.`` already stripped) -> posezoo keys.

    ``head.0`` (LayerNorm) -> ``backbone.head_norm``, ``head.1`` (Linear) -> ``head.fc``, the rest
    under ``backbone.`` unchanged.
    """
    return convert_head_split(state_dict, "MixSTE", ("STEblocks.0.norm1.weight", "TTEblocks.0.norm1.weight"),
                              OTHER_FAMILIES)
