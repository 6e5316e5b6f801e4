"""PoseFormer, spatial and temporal transformers for 2D->3D lifting (Zheng et al., ICCV 2021).

Official code: github.com/zczcwh/PoseFormer at a908b29, common/model_poseformer.py ``PoseTransformer``.
A window of exactly ``num_frame`` 2D poses (N, F, J, 2) is lifted to the 3D pose of its centre frame:

1. spatial transformer, per frame over the J joints: ``Spatial_patch_to_embedding`` Linear(2, C) +
   ``Spatial_pos_embed``, ``depth`` pre-norm blocks of width C, ``Spatial_norm``;
2. temporal transformer over the F frames, each a token of the J joints' features concatenated
   joint-major (width J * C): + ``Temporal_pos_embed``, ``depth`` blocks, ``Temporal_norm``;
3. ``weighted_mean``, a Conv1d(F, 1, 1) over the frame axis -> one (J * C) token;
4. the official ``head`` = Sequential(LayerNorm, Linear(J * C, J * 3)).

The head's LayerNorm (``head.0``) is part of the backbone here (``head_norm``) so that the generic
``lift`` head holds exactly the final Linear (``head.1``); the backbone returns (N, 1, J * C).

LayerNorm eps: 1e-6 in the blocks, ``Spatial_norm`` and ``Temporal_norm`` (the official
``partial(nn.LayerNorm, eps=1e-6)``), but 1e-5 in ``head_norm`` (a plain ``nn.LayerNorm`` there).
The blocks here are shared with :mod:`posezoo.models.poseformerv2`.
"""
from __future__ import annotations

from functools import partial

import torch
from timm.layers import DropPath, Mlp
from torch import nn

from posezoo.checkpoint import numpy_random_state_globals
from posezoo.precision import attention
from posezoo.registry import BACKBONES, CONVERTERS

NORM_EPS = 1e-6  # blocks, Spatial_norm, Temporal_norm
HEAD_NORM_EPS = 1e-5  # the official head's nn.LayerNorm keeps torch's default
norm_layer = partial(nn.LayerNorm, eps=NORM_EPS)


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of x (B, N, dim) -> (B, N, dim).

    Keys ``qkv`` and ``proj`` as in the official module; ``qk_scale`` None means head_dim ** -0.5.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_scale: float | None = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = attention(q, k, v, self.scale, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))


class AttentionBlock(nn.Module):
    """The attention half of a pre-norm transformer block (``norm1``, ``attn``) plus ``norm2``;
    subclasses add their MLP(s) after ``norm2`` so the keys keep the official order."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.hidden = int(dim * mlp_ratio)
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.attn(self.norm1(x)))


class Block(AttentionBlock):
    """timm-ViT-style block: x (B, N, dim) -> (B, N, dim); keys norm1, attn, norm2, mlp.{fc1, fc2}."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path)
        self.mlp = Mlp(dim, self.hidden, act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attend(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


def drop_path_rates(drop_path_rate: float, depth: int) -> list[float]:
    """The official stochastic-depth ramp, linspace(0, rate, depth)."""
    return [r.item() for r in torch.linspace(0, drop_path_rate, depth, device="cpu")]


def spatial_transformer(x: torch.Tensor, embedding: nn.Linear, pos_embed: torch.Tensor, pos_drop: nn.Module,
                        blocks: nn.ModuleList, norm: nn.Module) -> torch.Tensor:
    """Per-frame joint tokens x (M, J, in_chans) -> features (M, J * C), joint-major."""
    x = pos_drop(embedding(x) + pos_embed)
    for block in blocks:
        x = block(x)
    return norm(x).flatten(1)


def weighted_mean(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """The official ``weighted_mean`` Conv1d(F, 1, kernel_size=1) on tokens x (N, F, C) -> (N, 1, C),
    as the matrix product it is: oneDNN's convolution is slow for this shape (~5x on CPU)."""
    return torch.matmul(conv.weight[:, :, 0], x) + conv.bias[:, None]


def check_window(x: torch.Tensor, model: str, num_frame: int, num_joints: int, in_chans: int) -> None:
    """Raise ``ValueError`` unless x is (N, num_frame, num_joints, in_chans)."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (num_frame, num_joints, in_chans):
        got = f"T={x.shape[1]} frames, shape {tuple(x.shape)}" if x.ndim == 4 else f"shape {tuple(x.shape)}"
        raise ValueError(
            f"{model} takes windows of exactly its receptive field of {num_frame} frames, "
            f"(N, {num_frame}, {num_joints}, {in_chans}), and lifts the centre frame; got {got}. "
            "Slide a window over the (edge-padded) sequence (posezoo's lift does this).")


@BACKBONES.register_module(name=["PoseFormer", "poseformer"])
class PoseFormer(nn.Module):
    """PoseFormer's ``PoseTransformer`` with the official hyper-parameter names.

    Args: ``num_frame`` (the window F, also the receptive field), ``num_joints``, ``in_chans`` (2: x, y),
    ``embed_dim_ratio`` (spatial width C; the temporal width is J * C), ``depth``, ``num_heads``,
    ``mlp_ratio``, ``qkv_bias``, ``qk_scale`` (None: head_dim ** -0.5), ``drop_rate``, ``attn_drop_rate``,
    ``drop_path_rate`` (ramped over the blocks; run_poseformer.py trains with 0.1).

    forward: x (N, num_frame, J, in_chans) -> features (N, 1, J * C) of the centre frame, after the
    official head's LayerNorm.
    """

    feature_layout = "frame"

    def __init__(self, num_frame: int = 81, num_joints: int = 17, in_chans: int = 2, embed_dim_ratio: int = 32,
                 depth: int = 4, num_heads: int = 8, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1):
        super().__init__()
        embed_dim = embed_dim_ratio * num_joints
        self.num_joints, self.dim_in, self.in_channels = num_joints, in_chans, embed_dim
        self.max_frames = self.num_frames = self.receptive_field = num_frame
        block = dict(num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                     drop=drop_rate, attn_drop=attn_drop_rate)
        rates = drop_path_rates(drop_path_rate, depth)

        self.Spatial_patch_to_embedding = nn.Linear(in_chans, embed_dim_ratio)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, embed_dim_ratio))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, num_frame, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.Spatial_blocks = nn.ModuleList(Block(embed_dim_ratio, drop_path=r, **block) for r in rates)
        self.blocks = nn.ModuleList(Block(embed_dim, drop_path=r, **block) for r in rates)
        self.Spatial_norm = norm_layer(embed_dim_ratio)
        self.Temporal_norm = norm_layer(embed_dim)
        self.weighted_mean = nn.Conv1d(num_frame, 1, kernel_size=1)
        self.head_norm = nn.LayerNorm(embed_dim, eps=HEAD_NORM_EPS)  # official head.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, F, J, in_chans) -> (N, 1, J * C)."""
        check_window(x, "PoseFormer", self.num_frames, self.num_joints, self.dim_in)
        n, f, j, c = x.shape
        x = spatial_transformer(x.reshape(n * f, j, c), self.Spatial_patch_to_embedding, self.Spatial_pos_embed,
                                self.pos_drop, self.Spatial_blocks, self.Spatial_norm)
        x = self.pos_drop(x.reshape(n, f, -1) + self.Temporal_pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.head_norm(weighted_mean(self.weighted_mean, self.Temporal_norm(x)))


def convert_head_split(state_dict: dict[str, torch.Tensor], family: str, markers: tuple[str, ...],
                       other: dict[str, str]) -> dict[str, torch.Tensor]:
    """Official PoseFormer-style ``model_pos`` -> posezoo keys: ``head.0`` (LayerNorm) ->
    ``backbone.head_norm``, ``head.1`` (Linear) -> ``head.fc``, the rest under ``backbone.``.

    ``markers`` are keys that together only ``family`` has; ``other`` maps a key of each related
    family to its name, for a message that says which family a wrong checkpoint belongs to.
    """
    missing = [key for key in markers if key not in state_dict]
    if missing:
        known = next((name for key, name in other.items() if key in state_dict), None)
        what = f"it looks like a {known} checkpoint" if known else "keys: " + ", ".join(sorted(state_dict)[:5]) + ", ..."
        raise ValueError(f"not a {family} checkpoint: no {missing[0]!r} key ({what})")
    renames = {"head.0.": "backbone.head_norm.", "head.1.": "head.fc."}
    out = {}
    for key, value in state_dict.items():
        prefix = next((p for p in renames if key.startswith(p)), None)
        out[renames[prefix] + key[len(prefix):] if prefix else f"backbone.{key}"] = value
    return out


# A key of each related family whose checkpoints look alike (for the converters' error messages).
OTHER_FAMILIES = {"Freq_embedding.weight": "PoseFormerV2", "STEblocks.0.norm1.weight": "MixSTE",
                  "Spatial_patch_to_embedding.weight": "PoseFormer"}


@CONVERTERS.register_module("poseformer")
def convert_poseformer(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official PoseFormer ``model_pos`` (``module.`` already stripped) -> posezoo keys."""
    return convert_head_split(state_dict, "PoseFormer", ("Spatial_patch_to_embedding.weight", "blocks.0.norm1.weight"),
                              OTHER_FAMILIES)


convert_poseformer.safe_globals = numpy_random_state_globals()
