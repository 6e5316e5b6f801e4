"""Fast paths against the reference paths they replace (small configs, random weights).

DSTformer:
- fused SDPA kernel vs SDPA's math backend (the materialised-scores reference);
- no layout copies around attention (checked on the dispatched aten ops);
- activation checkpointing vs plain backward (same outputs and gradients, fewer saved bytes);
- torch.compile vs eager.

VideoPose3D TCN: the channels-last GEMM form (BatchNorm folded in eval, cached) vs the Conv1d
reference form, in every mode, eval and train, forward and backward, and after the weights change.

PoseFormer / PoseFormerV2: ``weighted_mean`` as a matmul vs the Conv1d it replaces.
"""
from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import posezoo
from posezoo.models.dstformer import DSTAttention
from posezoo.models.poseformer import weighted_mean

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


# ----------------------------------------------------------------------------- TCN
TCN_SMALL = dict(filter_widths=[3, 3, 3], channels=32)


def _tcn(causal=False, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    model = posezoo.create("tcn-27f-lift", causal=causal, **TCN_SMALL, **kw).to(dtype)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        for bn in (model.backbone.expand_bn, *model.backbone.layers_bn):
            bn.running_mean.normal_(0, 0.2)
            bn.running_var.copy_(torch.randn_like(bn.running_var).mul(0.3).exp())
            bn.weight.copy_(1 + 0.2 * torch.randn_like(bn.weight))
            bn.bias.normal_(0, 0.1)
    return model


def _reference(model, x, grad=False):
    """The same model through the Conv1d reference form."""
    model.backbone.fast_path = False
    try:
        with torch.set_grad_enabled(grad):
            return model(x)
    finally:
        model.backbone.fast_path = True


def _tcn_input(mode, dtype=torch.float32, batch=3):
    frames = {"sequence": 20, "valid": 40, "window": 27}[mode]
    return torch.rand(batch, frames, 17, 2, generator=torch.Generator().manual_seed(2), dtype=dtype) * 2 - 1


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mode", ["sequence", "valid", "window"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
def test_tcn_gemm_eval_equals_conv_reference(mode, causal, dtype, tol):
    """Folded BatchNorm, under inference_mode (fused bias + ReLU, in-place residual, the first
    dilated layers as shifted GEMMs without tap copies), no_grad and with autograd on (folded on
    the fly, taps concatenated)."""
    model = _tcn(causal, dtype, mode=mode).eval()
    x = _tcn_input(mode, dtype)
    reference = _reference(model, x)
    with torch.inference_mode():
        fast = model(x)
    with torch.no_grad():
        cached = model(x)
    live = model(x)
    assert live.requires_grad and fast.shape == reference.shape
    for out in (fast, cached, live):
        assert (out - reference).abs().max().item() <= tol


@pytest.mark.parametrize("mode", ["sequence", "window"])
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
def test_tcn_gemm_train_equals_conv_reference(mode, dtype, tol):
    """Batch-statistics BatchNorm: same outputs, gradients and running statistics. (16 windows: the
    last BatchNorm of the window form normalises one value per window, and with 3 its gradient
    amplifies fp32 rounding to ~3e-5 relative in both forms.)"""
    results = []
    for fast in (True, False):
        model = _tcn(mode=mode, dropout=0.0, dtype=dtype).train()
        model.backbone.fast_path = fast
        out = model(_tcn_input(mode, dtype, batch=16 if mode == "window" else 3))
        out.square().mean().backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        stats = {n: b.clone() for n, b in model.named_buffers()}
        results.append((out.detach(), grads, stats))
    (out_f, grads_f, stats_f), (out_r, grads_r, stats_r) = results
    assert (out_f - out_r).abs().max().item() <= tol
    for name, grad in grads_r.items():
        assert (grads_f[name] - grad).abs().max().item() <= tol * max(1.0, grad.abs().max().item()), name
    for name, stat in stats_r.items():
        assert torch.allclose(stats_f[name], stat, atol=tol / 10, rtol=tol / 10), name


def test_tcn_eval_grads_equal_reference():
    """Eval mode with autograd (e.g. fine-tuning with frozen statistics): the folding is differentiated."""
    x = _tcn_input("sequence")
    grads = []
    for fast in (True, False):
        model = _tcn().eval()
        model.backbone.fast_path = fast
        model(x).square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[1].items():
        assert (grads[0][name] - grad).abs().max().item() <= 1e-5 * max(1.0, grad.abs().max().item()), name


def test_tcn_folded_cache_follows_weight_changes():
    """The cached folded weights are rebuilt after load_state_dict, an optimiser step, new running
    statistics and a dtype change; a fresh model built on meta and loaded with assign also works."""
    model, x = _tcn().eval(), _tcn_input("sequence")

    def check():
        with torch.inference_mode():
            fast = model(x.to(next(model.parameters()).dtype))
        reference = _reference(model, x.to(fast.dtype))
        assert (fast - reference).abs().max().item() <= 1e-5 * max(1.0, reference.abs().max().item())

    check()
    assert model.backbone._folded_cache  # built
    other = _tcn()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1)
    model.load_state_dict(other.state_dict())
    check()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model(x).square().mean().backward()  # also updates the running statistics (train mode)
    optimizer.step()
    model.eval()
    check()
    model.backbone.layers_bn[1].running_var.mul_(4)
    check()
    model.double()
    check()
    with torch.device("meta"):
        meta = posezoo.create("tcn-27f-lift", **TCN_SMALL)
    meta.load_state_dict(other.state_dict(), assign=True)
    meta.eval()
    reference = _reference(meta, x)
    with torch.inference_mode():
        assert (meta(x) - reference).abs().max().item() <= 1e-5 * reference.abs().max().item()


def test_tcn_shifted_gemm_is_used_and_exact():
    """The shifted-rows GEMM (taps of all sequences laid end to end) against the concatenated taps,
    on a dilation where it applies, in float64."""
    from posezoo.models.tcn import SHIFTED_MAX_WASTE, _shifted_gemm

    torch.manual_seed(0)
    x, weight, k, dilation = torch.randn(3, 50, 8, dtype=torch.float64), torch.randn(6, 3 * 8, dtype=torch.float64), 3, 4
    length = 50 - (k - 1) * dilation
    assert (k - 1) * dilation <= SHIFTED_MAX_WASTE * length
    taps = torch.cat([x[:, j * dilation: j * dilation + length] for j in range(k)], dim=-1)
    counter = FlopCounterMode(display=False)
    with counter:  # the benchmark's FLOP count sees every tap's GEMM (dropped rows included)
        out = _shifted_gemm(x, weight, k, dilation)
    assert counter.get_total_flops() == 2 * (3 * 50 - (k - 1) * dilation) * 8 * 6 * k
    assert (out - taps @ weight.T).abs().max().item() <= 1e-12


def test_tcn_dense_keeps_conv_form():
    """dense=True (undilated wide kernels) always runs the Conv1d form: fast_path changes nothing."""
    model, x = _tcn(dense=True).eval(), _tcn_input("sequence")
    with torch.no_grad():
        assert torch.equal(model(x), _reference(model, x))


# ----------------------------------------------------------------------------- PoseFormer(V2)
@pytest.mark.parametrize("frames", [9, 27])
def test_weighted_mean_matmul_equals_conv(frames):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(frames, 1, kernel_size=1).double()
    tokens = torch.randn(3, 2 * frames, 40, dtype=torch.float64)[:, frames:]  # a slice, as PoseFormerV2's
    assert (weighted_mean(conv, tokens) - conv(tokens)).abs().max().item() <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torch-export", "onnx"])
def test_tcn_exports_under_no_grad(tmp_path, fmt):
    """The fused eager-only ops (aten._add_relu_ has no ONNX conversion, out= GEMMs) stay out of
    torch.export / ONNX traces, also when exporting under no_grad."""
    from posezoo.export import export_model

    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    model, x = _tcn().eval(), _tcn_input("sequence")
    with torch.no_grad():
        path = export_model(model, tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt2"), fmt)
        reference = _reference(model, x)
        if fmt == "onnx":
            session = ort.InferenceSession(str(path))
            out = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        else:
            out = torch.export.load(str(path)).module()(x)
    assert (out - reference).abs().max().item() <= 1e-5
