"""FLOP counts that mean one thing on every device and torch version.

``torch.utils.flop_counter.FlopCounterMode`` counts an attention only where torch has a formula for
the kernel that runs. Up to torch 2.14 the CPU's fused ``_scaled_dot_product_flash_attention_for_cpu``
had none (it counted zero), while the meta device took the math path, whose two batched matmuls
were counted: one model had two GMAC figures. Here every attention kernel counts its two products,
QK^T and AV, whichever path runs (torch's own formula where it has one; the same formula otherwise).

What is counted: matmuls, linear layers, convolutions and attention products (2 FLOPs per
multiply-accumulate). Not counted: element-wise ops, softmax, normalisation, the optimiser.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry

COUNTED = ("matmul, linear, convolution and attention (QK^T and AV) multiply-accumulates, the same for the "
           "fused and the math attention kernels; element-wise ops, softmax and norms not counted")


def attention_flops(query_shape: torch.Size, key_shape: torch.Size, value_shape: torch.Size,
                    *args: Any, **kwargs: Any) -> int:
    """Forward attention FLOPs for query (B, H, Lq, D), key (B, Hk, Lk, D), value (B, Hk, Lk, Dv):
    QK^T and AV, 2 * B * H * Lq * Lk * (D + Dv)."""
    *batch, lq, d = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * lq * lk * (d + dv)


def attention_backward_flops(grad_shape: torch.Size, query_shape: torch.Size, key_shape: torch.Size,
                             value_shape: torch.Size, *args: Any, **kwargs: Any) -> int:
    """Backward attention FLOPs of a fused kernel: the scores recomputed (QK^T), then the gradients of
    scores, V, Q and K, 2 * B * H * Lq * Lk * (3 D + 2 Dv), as torch counts its GPU kernels."""
    *batch, lq, d = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * lq * lk * (3 * d + 2 * dv)


# Attention kernels that torch's flop counter has no formula for (names looked up: not every torch has each).
_FORWARD = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable")
_BACKWARD = ("_scaled_dot_product_flash_attention_for_cpu_backward",
             "_scaled_dot_product_fused_attention_overrideable_backward")


def _extra_formulas() -> dict[Any, Callable[..., int]]:
    formulas: dict[Any, Callable[..., int]] = {}
    for names, formula in ((_FORWARD, attention_flops), (_BACKWARD, attention_backward_flops)):
        for name in names:
            op = getattr(torch.ops.aten, name, None)
            if op is not None and op not in flop_registry:
                formulas[op] = formula
    return formulas


def flop_counter() -> FlopCounterMode:
    """A ``FlopCounterMode`` (no display) that also counts the attention kernels torch leaves out."""
    return FlopCounterMode(display=False, custom_mapping=_extra_formulas())


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of one call of ``run`` (forward, and backward where it runs one); see the module doc."""
    with flop_counter() as counter:
        run()
    return counter.get_total_flops()
