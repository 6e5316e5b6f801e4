"""DSTformer's fast paths against the reference paths they replace (small configs, random weights).

- fused SDPA kernel vs SDPA's math backend (the materialised-scores reference);
- no layout copies around attention (checked on the dispatched aten ops);
- activation checkpointing vs plain backward (same outputs and gradients, fewer saved bytes);
- torch.compile vs eager.
"""
from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

import posezoo
from posezoo.models.dstformer import DSTAttention

SMALL = dict(depth=2, dim_feat=32, dim_rep=32, num_heads=4, mlp_ratio=2, maxlen=27)
COPIES = {"aten.clone.default", "aten.copy_.default", "aten._to_copy.default", "aten.contiguous.default"}


class OpLog(TorchDispatchMode):
    """Records the aten ops dispatched inside the block (not those a kernel calls internally)."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _model(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    return posezoo.create("dstformer-lift", **SMALL, **kw).to(dtype)


def _input(dtype=torch.float32, batch=2, frames=27):
    return torch.rand(batch, frames, 17, 3, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
def test_fused_attention_equals_math_reference(dtype, tol):
    model, x = _model(dtype), _input(dtype)
    with torch.no_grad():
        fast = model(x)
        with sdpa_kernel(SDPBackend.MATH):
            reference = model(x)
    assert (fast - reference).abs().max().item() <= tol


@pytest.mark.parametrize("mode", ["spatial", "temporal"])
def test_attention_takes_fused_kernel_without_layout_copies(mode):
    attn = DSTAttention(32, 4, mode).eval()
    x = torch.randn(2, 9, 17, 32)
    with torch.no_grad(), OpLog() as log:
        attn(x)
    assert "aten._scaled_dot_product_flash_attention_for_cpu.default" in log.ops, log.ops
    assert not any("attention_math" in op for op in log.ops)
    copies = [op for op in log.ops if op in COPIES]
    # spatial: none; temporal: the one pack of the transposed input for the qkv GEMM
    assert len(copies) == (0 if mode == "spatial" else 1), log.ops


def test_attention_modes_match_explicit_formula():
    """Both modes against softmax(q k^T * scale) v written out on the official token layout."""
    torch.manual_seed(0)
    B, T, J, C, H = 2, 5, 4, 16, 2
    x = torch.randn(B, T, J, C, dtype=torch.float64)
    for mode in ("spatial", "temporal"):
        attn = DSTAttention(C, H, mode).double()
        seq = x if mode == "spatial" else x.transpose(1, 2)  # attended axis second to last
        qkv = attn.qkv(seq).unflatten(-1, (3, H, C // H))  # (B, S, L, 3, H, d)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # (B, S, H, L, d)
        out = (q @ k.transpose(-1, -2) * attn.scale).softmax(-1) @ v
        out = attn.proj(out.transpose(-3, -2).flatten(-2))  # (B, S, L, C)
        expected = out if mode == "spatial" else out.transpose(1, 2)
        assert (attn(x) - expected).abs().max().item() <= 1e-12, mode


def _saved_bytes(fn):
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


def test_grad_checkpointing_same_outputs_and_grads_less_memory():
    x = _input()
    plain, ckpt = _model(), _model(grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    assert ckpt.backbone.grad_checkpointing and not plain.backbone.grad_checkpointing
    results = []
    for model in (plain, ckpt):
        model.train()
        out, saved = _saved_bytes(lambda m=model: m(x))
        out.square().mean().backward()
        results.append((out.detach(), saved, {n: p.grad for n, p in model.named_parameters()}))
    (out_p, saved_p, grads_p), (out_c, saved_c, grads_c) = results
    assert torch.equal(out_p, out_c)
    assert saved_c < saved_p / 3, (saved_c, saved_p)
    for name, grad in grads_p.items():
        assert (grad - grads_c[name]).abs().max().item() <= 1e-6, name


def test_set_grad_checkpointing_toggles_and_is_off_under_no_grad():
    model = _model()
    model.backbone.set_grad_checkpointing()
    assert model.backbone.grad_checkpointing
    with torch.no_grad():
        _, saved = _saved_bytes(lambda: model(_input()))
    assert saved == 0
    model.backbone.set_grad_checkpointing(False)
    assert not model.backbone.grad_checkpointing


@pytest.mark.slow
def test_compile_matches_eager():
    model, x = _model().eval(), _input()
    compiled = torch.compile(model)
    with torch.no_grad():
        eager = model(x)
        assert (compiled(x) - eager).abs().max().item() <= 1e-5
        # another T recompiles or reuses a dynamic graph, still right
        short = _input(frames=9)
        assert (compiled(short) - model(short)).abs().max().item() <= 1e-5
