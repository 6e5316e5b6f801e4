"""Reduced-precision inference and training: the one place that decides how a model runs in bf16.

``posezoo.create(..., dtype="bfloat16")``, :class:`posezoo.lifting.Lifter`, ``posezoo benchmark``
and the training recipes' :class:`~posezoo.engine.optim.BF16OptimWrapper` all go through here.

Inference (:func:`set_dtype`): the weights of the matmul layers (``Linear``, ``Conv*``) are cast to
bf16 once, and :class:`~posezoo.models.composed.PoseModel` runs its forward under
``torch.autocast(bf16)``: matmuls and attention in bf16 with fp32 accumulation (attention in the
form :func:`attention` picks; its softmax in fp32), while what autocast leaves alone stays fp32 (the
residual stream, LayerNorm/BatchNorm and their parameters, embeddings). Inputs and outputs are fp32. Training keeps fp32 master weights and
runs only forward and loss under the same autocast (:func:`autocast`); the loss is taken in fp32.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from posezoo.errors import InputError, PosezooWarning

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
AUTO = "auto"
# bf16 weights + autocast over plain autocast (casts fp32 weights every call) and an all-bf16 model
# (bf16 residual stream): 2.39x vs 2.21x / 2.37x fp32 for dstformer-lift B=1 T=243, error as autocast's.
MATMUL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Weights whose bf16 lift is measured as accurate as fp32 (held-out MPJPE within 0.5 mm;
# benchmarks/README.md, "bf16"): dtype="auto" runs them in bf16 on a CPU with native bf16.
BF16_VERIFIED = {"tcn-s-81f-lift.mocap": "held-out mocap MPJPE 41.94 mm in bf16 vs 41.92 in fp32 (clean 2D), "
                                         "43.64 vs 43.63 (detector-like)"}


def lift_dtype_note(weights: list[str]) -> str:
    """What ``posezoo lift`` (``--dtype auto``) runs a model with these published ``weights`` in, and why."""
    verified = [w for w in weights if w in BF16_VERIFIED]
    if not verified:
        return "float32 (bfloat16 accuracy not verified for these weights; --dtype bfloat16 to choose it)"
    here = "this CPU has it" if cpu_has_bf16() else "this CPU has not: float32 here"
    return f"bfloat16 on CPUs with native bf16 ({here}) for {', '.join(verified)}: {BF16_VERIFIED[verified[0]]}"


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str | None:
    """``"bfloat16"``/``"bf16"``/``torch.bfloat16`` or ``"float32"``/``"fp32"``/``torch.float32`` as a
    torch dtype; None and ``"auto"`` (:func:`auto_dtype`) as they are. Anything else raises
    :class:`~posezoo.errors.InputError`."""
    if dtype is None or dtype == AUTO or dtype in (torch.float32, torch.bfloat16):
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.lower().removeprefix("torch.")]
    raise InputError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}, {AUTO} (or torch.bfloat16)")


def auto_dtype(weights: str | None, device: str | torch.device = "cpu") -> torch.dtype:
    """bf16 for weights in :data:`BF16_VERIFIED` on a CPU with native bf16, else fp32 (silently)."""
    verified = weights in BF16_VERIFIED and torch.device(device).type == "cpu" and cpu_has_bf16()
    return torch.bfloat16 if verified else torch.float32


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX512-BF16 or AMX, Arm BF16); elsewhere oneDNN
    emulates bf16, slower than fp32. torch >= 2.12 reads ``torch.cpu.get_capabilities()``; older
    torch has ``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported``."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return any(found.get(k, False) for k in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def supported_dtype(dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype | None:
    """:func:`resolve_dtype`, with bf16 on a CPU without native bf16 replaced by fp32 and a
    :class:`~posezoo.errors.PosezooWarning` saying so (``"auto"`` is left to :func:`set_dtype`)."""
    dtype = resolve_dtype(dtype)
    if dtype == torch.bfloat16 and torch.device(device).type == "cpu" and not cpu_has_bf16():
        warnings.warn("this CPU has no native bfloat16 (AVX512-BF16, AMX or Arm BF16): running in float32",
                      PosezooWarning, stacklevel=3)
        return torch.float32
    return dtype


def set_dtype(model: nn.Module, dtype: str | torch.dtype | None, device: str | torch.device = "cpu") -> nn.Module:
    """Make ``model`` (a :class:`~posezoo.models.composed.PoseModel`) compute in ``dtype`` on ``device``.

    bf16: the weights of its matmul layers are cast to bf16 once, here, and its forward runs under
    autocast (see the module docstring). float32: those weights back in fp32 (bf16-rounded values
    stay rounded). ``"auto"``: :func:`auto_dtype` of ``model.meta["weights"]``. None: unchanged.
    Inputs and outputs stay fp32 either way. Returns ``model``.
    """
    if dtype == AUTO:
        dtype = auto_dtype(getattr(model, "meta", {}).get("weights"), device)
    dtype = supported_dtype(dtype, device)
    if dtype is None:
        return model
    for module in model.modules():
        if isinstance(module, MATMUL_LAYERS):
            module.to(dtype)
    model.compute_dtype = None if dtype == torch.float32 else dtype
    return model


def autocast(dtype: torch.dtype | None, device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op for None and float32."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def runs_in_compute_dtype(method: Callable) -> Callable:
    """Decorate a model method taking ``x`` first: under autocast to ``self.compute_dtype`` (when
    set), outputs cast back to fp32; nested calls run inside the outer autocast without casting."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        dtype = getattr(self, "compute_dtype", None)
        if dtype is None or torch.is_autocast_enabled(x.device.type):
            return method(self, x, *args, **kwargs)
        with autocast(dtype, x.device):
            out = method(self, x, *args, **kwargs)
        return to_float32(out)

    return wrapper


# bf16 attention on the CPU (see :func:`attention`): fp32 SDPA below this head width (memory-bound
# products: fp32's fused kernel is faster), and while training on more tokens than SHORT_ATTENTION
NARROW_HEAD = 16
SHORT_ATTENTION = 128
# fp32 attention scores per chunk of the written-out form (4 MB: they stay in cache)
SCORES_PER_CHUNK = 1 << 20


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """softmax(q k^T * scale) v for q, k, v (N, ..., L, d) -> (N, ..., L, d): ``F.scaled_dot_product_attention``,
    except in bf16 on the CPU, where its flash kernel is slow (measured on the DSTformer/PoseFormer(V2)
    shapes, 1 and 2 threads):

    - d < :data:`NARROW_HEAD` (PoseFormer's 4-wide spatial heads), or L > :data:`SHORT_ATTENTION`
      with autograd recording (bf16 SDPA's backward is ~10x slower): SDPA in fp32;
    - otherwise written out: both products in bf16 (fp32 accumulation), the softmax in fp32, over
      chunks of N of at most :data:`SCORES_PER_CHUNK` scores: 1.5-2.5x faster than SDPA in bf16 or
      fp32 on 17-81 tokens, 1.7-1.9x on the DSTformer's 243 frames.
    """
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)
    tokens = q.shape[-2]
    if q.shape[-1] < NARROW_HEAD or (tokens > SHORT_ATTENTION and torch.is_grad_enabled()):
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), dropout_p=dropout_p, scale=scale)
        return out.to(v.dtype)
    chunk = max(1, SCORES_PER_CHUNK * q.shape[0] // (q[..., 0].numel() * tokens))
    outs = [F.dropout((qc * scale @ kc.transpose(-2, -1)).float().softmax(-1), dropout_p).to(v.dtype) @ vc
            for qc, kc, vc in zip(q.split(chunk), k.split(chunk), v.split(chunk))]
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def to_float32(out: Any) -> Any:
    """Floating tensors in ``out`` (a tensor, or a dict/list/tuple of them) as fp32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, dict):
        return {k: to_float32(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(to_float32(v) for v in out)
    return out
