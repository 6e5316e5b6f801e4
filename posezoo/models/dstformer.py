"""DSTformer, the dual-stream spatio-temporal transformer of MotionBERT (Zhu et al., ICCV 2023).

The backbone maps a 2D pose clip (B, T, J, 3: x, y, confidence) to MotionBERT's motion
representation (B, T, J, dim_rep): per-joint embedding + spatial and temporal embeddings, ``depth``
stages of two parallel streams (spatial-then-temporal and temporal-then-spatial blocks) fused by a
learned per-token softmax, LayerNorm, and the ``pre_logits`` Linear+Tanh. The 3D head (``lift``)
and the action and mesh heads are separate parts.

Tokens stay in (B, T, J, C) layout throughout: spatial attention runs over J for each frame and
temporal attention over T for each joint, both with ``F.scaled_dot_product_attention`` (in bf16 on
the CPU, :func:`posezoo.precision.attention` picks the fastest accurate form).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from posezoo.precision import attention
from posezoo.registry import BACKBONES, CONVERTERS


class DSTAttention(nn.Module):
    """Multi-head self-attention over joints (``mode='spatial'``) or frames (``'temporal'``).

    x (B, T, J, C) -> (B, T, J, C). Keys ``qkv`` and ``proj`` match the official module.
    """

    def __init__(self, dim: int, num_heads: int, mode: str, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if mode not in ("spatial", "temporal"):
            raise ValueError(f"mode must be 'spatial' or 'temporal', got {mode!r}")
        if dim % num_heads:
            raise ValueError(f"dim_feat {dim} is not divisible by num_heads {num_heads}")
        self.mode = mode
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "temporal":  # attend over T: (B, J, T, C), a view
            x = x.transpose(1, 2)
        B, S, L, C = x.shape  # S sequences of L tokens per clip
        # One GEMM for q, k, v (it packs a transposed input once). Every reshape below is a view:
        # SDPA gets 4-D (B*S, H, L, d) inputs with unit last stride, which selects the fused CPU
        # kernel (the math fallback, taken for 5-D inputs, is ~2x slower and materialises the
        # L x L scores), and that kernel returns (B*S, L, H, d) memory, so no permute copies.
        qkv = self.qkv(x).view(B * S, L, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.transpose(1, 3).unbind(2)  # (B*S, H, L, d) each
        out = attention(q, k, v, self.scale, self.attn_drop if self.training else 0.0)
        out = self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, S, L, C)))
        return out.transpose(1, 2) if self.mode == "temporal" else out


class DSTBlock(nn.Module):
    """One stream of a DSTformer stage: spatial then temporal (``order='st'``) or the reverse.

    Each half is a pre-norm attention + MLP residual pair with its own norms (``_s`` spatial,
    ``_t`` temporal), as in the official ``Block``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, order: str, qkv_bias: bool,
                 qk_scale: float | None, drop: float, attn_drop: float, drop_path: float, norm_eps: float):
        super().__init__()
        self.order = order
        hidden = int(dim * mlp_ratio)
        self.norm1_s = nn.LayerNorm(dim, eps=norm_eps)
        self.norm1_t = nn.LayerNorm(dim, eps=norm_eps)
        self.attn_s = DSTAttention(dim, num_heads, "spatial", qkv_bias, qk_scale, attn_drop, drop)
        self.attn_t = DSTAttention(dim, num_heads, "temporal", qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2_s = nn.LayerNorm(dim, eps=norm_eps)
        self.norm2_t = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp_s = Mlp(dim, hidden, act_layer=nn.GELU, drop=drop)
        self.mlp_t = Mlp(dim, hidden, act_layer=nn.GELU, drop=drop)

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn_s(self.norm1_s(x)))
        return x + self.drop_path(self.mlp_s(self.norm2_s(x)))

    def _temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn_t(self.norm1_t(x)))
        return x + self.drop_path(self.mlp_t(self.norm2_t(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "st":
            return self._temporal(self._spatial(x))
        return self._spatial(self._temporal(x))


@BACKBONES.register_module(name=["DSTformer", "dstformer"])
class DSTformer(nn.Module):
    """MotionBERT's DSTformer backbone: (B, T, J, dim_in) -> representation (B, T, J, dim_rep).

    Hyper-parameters keep the official names. ``norm_eps`` defaults to 1e-6, what the official
    ``load_backbone`` passes (the class default 1e-5 does not match the published checkpoints).
    T may be anything up to ``maxlen``; the temporal embedding is sliced to T.

    ``grad_checkpointing=True`` (or :meth:`set_grad_checkpointing`) recomputes each stage in the
    backward pass instead of keeping its activations: training memory drops from ~20 GB to a few
    GB for the full model at B=8, T=243, for one extra forward per step. Outputs are unchanged.
    """

    feature_layout = "joint"

    def __init__(self, dim_in: int = 3, dim_feat: int = 512, dim_rep: int = 512, depth: int = 5,
                 num_heads: int = 8, mlp_ratio: float = 2, num_joints: int = 17, maxlen: int = 243,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, att_fuse: bool = True,
                 norm_eps: float = 1e-6, grad_checkpointing: bool = False):
        super().__init__()
        self.grad_checkpointing = grad_checkpointing
        self.dim_in, self.num_joints, self.max_frames = dim_in, num_joints, maxlen
        self.in_channels = dim_rep or dim_feat  # what the head receives
        self.att_fuse = att_fuse
        self.joints_embed = nn.Linear(dim_in, dim_feat)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim_feat))  # per joint (spatial)
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))  # per frame (temporal)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth ramp
        block = dict(dim=dim_feat, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                     qk_scale=qk_scale, drop=drop_rate, attn_drop=attn_drop_rate, norm_eps=norm_eps)
        self.blocks_st = nn.ModuleList(DSTBlock(order="st", drop_path=r, **block) for r in rates)
        self.blocks_ts = nn.ModuleList(DSTBlock(order="ts", drop_path=r, **block) for r in rates)
        self.norm = nn.LayerNorm(dim_feat, eps=norm_eps)
        if dim_rep:
            self.pre_logits = nn.Sequential(OrderedDict(fc=nn.Linear(dim_feat, dim_rep), act=nn.Tanh()))
        else:
            self.pre_logits = nn.Identity()
        if att_fuse:
            self.ts_attn = nn.ModuleList(nn.Linear(dim_feat * 2, 2) for _ in range(depth))
        self._init_weights()

    def _init_weights(self) -> None:
        if self.pos_embed.is_meta:  # built for loading (create/load_dir): nothing to fill, and
            return  # timm's trunc_normal_ on meta tensors costs ~0.3 s for the full model
        trunc_normal_(self.temp_embed, std=0.02)
        trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.att_fuse:  # start with an even mix of the two streams
            for fuse in self.ts_attn:
                nn.init.zeros_(fuse.weight)
                nn.init.constant_(fuse.bias, 0.5)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in backward (timm's method name)."""
        self.grad_checkpointing = enable

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Stage i: both streams on x (B, T, J, C), fused."""
        x_st, x_ts = self.blocks_st[i](x), self.blocks_ts[i](x)
        if not self.att_fuse:
            return (x_st + x_ts) * 0.5
        alpha = self.ts_attn[i](torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
        return x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, J, dim_in) -> (B, T, J, dim_rep)."""
        T = x.shape[1]
        x = self.joints_embed(x) + self.pos_embed
        x = self.pos_drop(x + self.temp_embed[:, :T])
        recompute = self.grad_checkpointing and torch.is_grad_enabled()
        for i in range(len(self.blocks_st)):
            x = checkpoint(self._stage, i, x, use_reentrant=False) if recompute else self._stage(i, x)
        return self.pre_logits(self.norm(x))


@CONVERTERS.register_module("dstformer")
def convert_dstformer(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official MotionBERT state dict (``module.`` already stripped) -> posezoo keys.

    - ``DSTformer`` (lifting / pretraining): ``head.*`` -> ``head.fc.*``, the rest -> ``backbone.*``.
    - ``ActionNet`` / ``MeshRegressor``: ``backbone.*`` kept, the unused 3D head ``backbone.head.*``
      and the licensed SMPL arrays ``head.smpl.*`` dropped, the task head's keys kept.
    """
    if "joints_embed.weight" in state_dict:
        return {(f"head.fc.{k[5:]}" if k.startswith("head.") else f"backbone.{k}"): v
                for k, v in state_dict.items()}
    if "backbone.joints_embed.weight" in state_dict:
        return {k: v for k, v in state_dict.items()
                if not k.startswith(("backbone.head.", "head.smpl."))}
    sample = ", ".join(sorted(state_dict)[:5])
    raise ValueError(f"not a MotionBERT/DSTformer checkpoint: no 'joints_embed.weight' key (keys: {sample}, ...)")
