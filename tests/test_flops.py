"""FLOP counts (posezoo.flops): attention counted the same on every kernel, the meta-device count of
model cards equal to a real CPU forward, and the exact formula on blocks whose FLOPs are known."""
from __future__ import annotations

import pytest
import torch

import posezoo
from posezoo.cards import model_stats
from posezoo.flops import COUNTED, attention_flops, count_flops
from posezoo.models.dstformer import DSTAttention


def _linear_flops(tokens: int, dim_in: int, dim_out: int) -> int:
    return 2 * tokens * dim_in * dim_out


@pytest.mark.parametrize("mode", ["spatial", "temporal"])
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_block_counts_its_products(mode, heads):
    """One DSTAttention on the CPU: the qkv and output projections plus QK^T and AV of every head,
    exactly. Before posezoo.flops the fused CPU kernel counted nothing."""
    B, T, J, C = 2, 11, 17, 16
    block = DSTAttention(C, heads, mode).eval()
    with torch.no_grad():
        counted = count_flops(lambda: block(torch.randn(B, T, J, C)))
    sequences, length = (B * T, J) if mode == "spatial" else (B * J, T)
    tokens = B * T * J
    attention = 2 * sequences * heads * length * length * (2 * (C // heads))
    assert counted == _linear_flops(tokens, C, 3 * C) + _linear_flops(tokens, C, C) + attention


@pytest.mark.parametrize("path", ["fused", "math"])
def test_attention_counts_the_same_on_each_kernel(path):
    """F.scaled_dot_product_attention counted through the fused CPU kernel and through the math
    path (two batched matmuls) gives one number, which is the formula's (query and key lengths differ)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(3, 4, 10, 8), torch.randn(3, 4, 7, 8), torch.randn(3, 4, 7, 8)
    backend = SDPBackend.FLASH_ATTENTION if path == "fused" else SDPBackend.MATH
    with torch.no_grad(), sdpa_kernel(backend):
        counted = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert counted == attention_flops(q.shape, k.shape, v.shape) == 2 * 3 * 4 * 10 * 7 * (8 + 8)


def test_training_step_counts_attention_backward():
    """Forward + backward of one attention block: each projection three times (forward, grad input,
    grad weight) and the attention's forward and backward products, whichever CPU kernel runs."""
    B, T, J, C, heads = 1, 5, 17, 8, 2
    block = DSTAttention(C, heads, "spatial").train()
    x = torch.randn(B, T, J, C, requires_grad=True)
    counted = count_flops(lambda: block(x).sum().backward())
    tokens, d, n = B * T * J, C // heads, B * T * heads * J * J
    linears = 3 * (_linear_flops(tokens, C, 3 * C) + _linear_flops(tokens, C, C))
    forward = 2 * n * 2 * d
    fused_backward, math_backward = 2 * n * 5 * d, 2 * forward  # fused kernels recompute QK^T
    assert counted - linears - forward in (fused_backward, math_backward)


MODELS = {
    "dstformer-2heads-T9": ("dstformer-lift", dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)),
    "dstformer-4heads-T27": ("dstformer-lift", dict(depth=2, dim_feat=32, dim_rep=16, num_heads=4, maxlen=27)),
    "dstformer-1head-T5": ("dstformer-lift", dict(depth=1, dim_feat=8, dim_rep=8, num_heads=1, maxlen=5)),
    "poseformer-9f": ("poseformer-9f-lift", dict(embed_dim_ratio=8, depth=1, num_heads=2)),
    "poseformerv2-27f": ("poseformerv2-27f-k3c3-lift", dict(embed_dim_ratio=8, depth=1, num_heads=2)),
}


@pytest.mark.parametrize("case", MODELS)
def test_card_gmacs_on_meta_equal_a_real_forward(case):
    """model_stats counts on a meta-device twin; a real CPU forward (fused attention) counts the same
    FLOPs, and attention is in them (the count exceeds the linear layers' alone)."""
    from posezoo.factory import build
    from posezoo.flops import flop_counter

    name, overrides = MODELS[case]
    torch.manual_seed(0)
    model = posezoo.create(name, **overrides).eval()
    stats = model_stats(model)
    with torch.no_grad(), flop_counter() as counter:
        model(torch.zeros(stats["input_shape"]))
    real = counter.get_total_flops()
    with torch.no_grad():
        twin = build(model.config, meta=model.meta, device="meta").eval()
        meta = count_flops(lambda: twin.head(twin.backbone(torch.zeros(stats["input_shape"], device="meta"))))
    assert meta == real
    assert stats["gmacs"] == float(f"{real / 2e9:.4g}") > 0
    assert COUNTED in stats["gmacs_note"]
    by_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert any(n > 0 and ("attention" in op or "bmm" in op) for op, n in by_op.items()), by_op
