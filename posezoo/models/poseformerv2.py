"""PoseFormerV2, PoseFormer with a frequency-domain branch (Zhao et al., CVPR 2023).

Official code: github.com/QitaoZhao/PoseFormerV2 at 008036a, common/model_poseformer.py
``PoseTransformerV2``. A window of F 2D poses (N, F, J, 2) is lifted to its centre frame's 3D pose
from two kinds of tokens of width J * C:

- time tokens: the ``number_of_kept_frames`` centre frames, each through PoseFormer's spatial
  transformer (``Joint_embedding``, ``Spatial_blocks``, ``Spatial_norm``) + ``Temporal_pos_embed``;
- frequency tokens: the first ``number_of_kept_coeffs`` DCT-II coefficients of every joint
  coordinate over the F frames, ``Freq_embedding`` Linear(2J, J * C) + ``Temporal_pos_embed_``.

The tokens, frequency first, go through ``depth`` mixed blocks: attention over all tokens, then the
first f // 2 tokens (f = coeffs + kept) through an MLP (``norm2``, ``mlp1``) and the rest through a
frequency MLP (``norm3``, ``mlp2``: DCT over the token axis, MLP, inverse DCT). The split at f // 2,
not at the number of frequency tokens, is what the published weights were trained with: for the
1-frame/3-coefficient models the tokens [freq0, freq1] take ``mlp1`` and [freq2, time0] ``mlp2``. After ``Temporal_norm``, ``weighted_mean`` pools the frequency tokens and
``weighted_mean_`` the time tokens; their concatenation (2 * J * C) goes through the official head
LayerNorm (eps 1e-5, ``head.0``), kept in the backbone as ``head_norm``; the ``lift`` head's ``fc``
is the official ``head.1``. All other LayerNorms use eps 1e-6.

The DCT (torch_dct's ``dct``/``idct`` with norm=None) is a matrix product here; the matrices are
derived in forward and cached per (size, dtype, device), not stored as buffers.
"""
from __future__ import annotations

import functools
import math

import torch
from timm.layers import Mlp
from torch import nn

from posezoo.checkpoint import numpy_random_state_globals
from posezoo.models.poseformer import (
    HEAD_NORM_EPS,
    OTHER_FAMILIES,
    AttentionBlock,
    Block,
    check_window,
    convert_head_split,
    drop_path_rates,
    norm_layer,
    spatial_transformer,
    weighted_mean,
)
from posezoo.registry import BACKBONES, CONVERTERS


def dct_matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The DCT-II of length n as torch_dct computes it (norm=None) and its inverse, as matrices.

    ``D[k, m] = 2 cos(pi k (2m + 1) / 2n)``: ``D @ x`` transforms x (..., n, C) along dim -2, and
    ``D_inv @ X`` undoes it (torch_dct's ``idct``). Both (n, n), built in float64 and cast; cached per
    (n, dtype, device), except while torch.compile / torch.export trace (their tensors are symbolic).
    """
    if torch.compiler.is_compiling():
        return _dct_matrices(n, dtype, device)
    return _cached_dct_matrices(n, dtype, device)


def _dct_matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.arange(n, dtype=torch.float64, device="cpu")  # built on the CPU whatever the default device
    basis = torch.cos(math.pi * k[:, None] * (2 * k[None, :] + 1) / (2 * n))  # (k, m)
    weight = torch.full((n,), 1.0 / n, dtype=torch.float64, device="cpu")
    weight[0] = 0.5 / n
    return (2 * basis).to(device, dtype), (basis.T * weight).to(device, dtype)


@functools.lru_cache(maxsize=64)
def _cached_dct_matrices(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode(False), torch.no_grad():  # cached: must not be an inference tensor
        return _dct_matrices(n, dtype, device)


class FreqMlp(Mlp):
    """An MLP applied in the DCT domain of the token axis: x (B, N, dim) -> (B, N, dim).
    Keys ``fc1``, ``fc2`` as the official ``FreqMlp``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dct, idct = dct_matrices(x.shape[1], x.dtype, x.device)
        return idct @ super().forward(dct @ x)


class MixedBlock(AttentionBlock):
    """Attention over all tokens, then ``mlp1`` on the first f // 2 tokens and ``mlp2`` (FreqMlp)
    on the rest: x (B, f, dim) -> (B, f, dim). Keys norm1, attn, norm2, mlp1, norm3, mlp2."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path)
        self.mlp1 = Mlp(dim, self.hidden, act_layer=nn.GELU, drop=drop)
        self.norm3 = norm_layer(dim)
        self.mlp2 = FreqMlp(dim, self.hidden, act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attend(x)
        split = x.shape[1] // 2  # the official split, whatever the number of frequency tokens
        first, rest = x[:, :split], x[:, split:]
        first = first + self.drop_path(self.mlp1(self.norm2(first)))
        rest = rest + self.drop_path(self.mlp2(self.norm3(rest)))
        return torch.cat((first, rest), dim=1)


@BACKBONES.register_module(name=["PoseFormerV2", "poseformerv2"])
class PoseFormerV2(nn.Module):
    """PoseFormerV2's ``PoseTransformerV2`` with the official hyper-parameter names, flattened from
    its ``args`` namespace (``embed_dim_ratio``, ``depth``, ``number_of_kept_frames``,
    ``number_of_kept_coeffs``: None means as many as kept frames).

    ``num_frame`` is the window F the model was trained on (the official module does not use it, but
    the DCT coefficients scale with F, so other lengths are refused). ``number_of_kept_frames`` must be
    odd and both counts at most F.

    forward: x (N, num_frame, J, in_chans) -> features (N, 1, 2 * J * C) of the centre frame, after the
    official head's LayerNorm.
    """

    feature_layout = "frame"

    def __init__(self, num_frame: int = 243, num_joints: int = 17, in_chans: int = 2, embed_dim_ratio: int = 32,
                 depth: int = 4, num_heads: int = 8, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                 qk_scale: float | None = None, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, number_of_kept_frames: int = 27,
                 number_of_kept_coeffs: int | None = None):
        super().__init__()
        kept = number_of_kept_frames
        coeffs = number_of_kept_coeffs or kept
        if kept < 1 or kept % 2 == 0:
            raise ValueError(f"number_of_kept_frames must be odd (centre frame +- k), got {kept}")
        if max(kept, coeffs) > num_frame or coeffs < 1:
            raise ValueError(f"number_of_kept_frames ({kept}) and number_of_kept_coeffs ({coeffs}) must be "
                             f"between 1 and num_frame ({num_frame})")
        embed_dim = embed_dim_ratio * num_joints
        self.num_joints, self.dim_in, self.in_channels = num_joints, in_chans, 2 * embed_dim
        self.max_frames = self.num_frames = self.receptive_field = num_frame
        self.num_frame_kept, self.num_coeff_kept = kept, coeffs
        block = dict(num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                     drop=drop_rate, attn_drop=attn_drop_rate)
        rates = drop_path_rates(drop_path_rate, depth)

        self.Joint_embedding = nn.Linear(in_chans, embed_dim_ratio)
        self.Freq_embedding = nn.Linear(in_chans * num_joints, embed_dim)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, embed_dim_ratio))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, kept, embed_dim))
        self.Temporal_pos_embed_ = nn.Parameter(torch.zeros(1, coeffs, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.Spatial_blocks = nn.ModuleList(Block(embed_dim_ratio, drop_path=r, **block) for r in rates)
        self.blocks = nn.ModuleList(MixedBlock(embed_dim, drop_path=r, **block) for r in rates)
        self.Spatial_norm = norm_layer(embed_dim_ratio)
        self.Temporal_norm = norm_layer(embed_dim)
        self.weighted_mean = nn.Conv1d(coeffs, 1, kernel_size=1)
        self.weighted_mean_ = nn.Conv1d(kept, 1, kernel_size=1)
        self.head_norm = nn.LayerNorm(2 * embed_dim, eps=HEAD_NORM_EPS)  # official head.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, F, J, in_chans) -> (N, 1, 2 * J * C)."""
        check_window(x, "PoseFormerV2", self.num_frames, self.num_joints, self.dim_in)
        n, f, j, c = x.shape
        kept, coeffs = self.num_frame_kept, self.num_coeff_kept
        start = (f - 1) // 2 - kept // 2
        time = spatial_transformer(x[:, start:start + kept].reshape(n * kept, j, c), self.Joint_embedding,
                                   self.Spatial_pos_embed, self.pos_drop, self.Spatial_blocks, self.Spatial_norm)
        time = time.reshape(n, kept, -1) + self.Temporal_pos_embed
        dct, _ = dct_matrices(f, x.dtype, x.device)
        freq = self.Freq_embedding(dct[:coeffs] @ x.flatten(2)) + self.Temporal_pos_embed_  # (N, coeffs, J*C)
        x = torch.cat((freq, time), dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.Temporal_norm(x)
        x = torch.cat((weighted_mean(self.weighted_mean, x[:, :coeffs]),
                       weighted_mean(self.weighted_mean_, x[:, coeffs:])), dim=-1)
        return self.head_norm(x)


@CONVERTERS.register_module("poseformerv2")
def convert_poseformerv2(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official PoseFormerV2 ``model_pos`` (``module.`` already stripped) -> posezoo keys."""
    return convert_head_split(state_dict, "PoseFormerV2", ("Freq_embedding.weight", "blocks.0.mlp2.fc1.weight"),
                              OTHER_FAMILIES)


convert_poseformerv2.safe_globals = numpy_random_state_globals()
