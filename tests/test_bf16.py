"""bf16 inference (posezoo.precision): names, weights cast once, fp32 where it matters, fp32 in and out,
the lift API and command line, the fallback on CPUs without bf16, and bf16 training's fp32 loss.

bf16 is forced on (``bf16`` fixture) so that every test runs the bf16 path on any CPU: oneDNN emulates
bf16 where the hardware lacks it (slower, numerically the same). No timing here: speed claims come
from posezoo benchmark and tools/lift_throughput.py (benchmarks/README.md).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import posezoo
from posezoo import precision
from posezoo.errors import InputError, PosezooWarning
from posezoo.lifting import DEFAULT_MODEL, Lifter

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "treadmill_walk_openpose.npz"
SMALL = {
    "dstformer-lift": dict(depth=2, dim_feat=32, dim_rep=32, num_heads=4, maxlen=27),
    "tcn-27f-lift": dict(channels=64),
    "poseformer-9f-lift": dict(depth=2, embed_dim_ratio=16, num_heads=4),
    "poseformerv2-27f-k3c3-lift": dict(depth=2, embed_dim_ratio=16, num_heads=4),
}


@pytest.fixture
def bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)


def _pair(name: str, **overrides) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same weights in fp32 and made with dtype='bfloat16'."""
    torch.manual_seed(0)
    fp32 = posezoo.create(name, **overrides)
    bf16 = posezoo.create(name, dtype="bfloat16", **overrides)
    bf16.load_state_dict(fp32.state_dict())
    return fp32, bf16


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / a.norm()).item()


@pytest.mark.parametrize("dtype, expected", [("bfloat16", torch.bfloat16), ("bf16", torch.bfloat16),
                                             (torch.bfloat16, torch.bfloat16), ("float32", torch.float32),
                                             ("torch.float32", torch.float32), (None, None), ("auto", "auto")])
def test_dtype_names(dtype, expected):
    assert precision.resolve_dtype(dtype) == expected


@pytest.mark.parametrize("bad", ["float8", "float16", torch.float16, 16])
def test_bad_dtype_is_refused_before_building(bad):
    with pytest.raises(InputError, match="dtype .* is not supported"):
        posezoo.create("dstformer-lift", dtype=bad)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bf16_close_to_fp32_with_fp32_output(bf16, name):
    """Within bf16's rounding (8-bit mantissa: ~0.4 % per op, a few ops deep), fp32 out; one order of
    magnitude below what a broken path gives (wrong weights, bf16 accumulation over long sums)."""
    fp32, half = _pair(name, **SMALL[name])
    x = fp32.example_input(4, 27 if fp32.max_frames is None or fp32.max_frames >= 27 else None)
    with torch.inference_mode():
        ref, out = fp32(x), half(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert 1e-4 < _relative_error(ref, out) < 2e-2  # above 1e-4: bf16 really ran


def test_weights_cast_once_norms_and_embeddings_fp32(bf16):
    _, model = _pair("dstformer-lift", **SMALL["dstformer-lift"])
    assert model.compute_dtype == torch.bfloat16
    for module in model.modules():
        for param in module.parameters(recurse=False):
            expected = torch.bfloat16 if isinstance(module, precision.MATMUL_LAYERS) else torch.float32
            assert param.dtype == expected, (type(module).__name__, param.dtype)
    assert model.backbone.pos_embed.dtype == torch.float32 and model.backbone.norm.weight.dtype == torch.float32


def _weight_casts(model: torch.nn.Module, x: torch.Tensor) -> int:
    """dtype conversions of a tensor shaped like one of the model's matrices during a forward."""
    shapes = {tuple(p.shape) for p in model.parameters() if p.ndim >= 2}
    with torch.inference_mode(), torch.profiler.profile(record_shapes=True) as prof:
        model(x)
    return sum(e.name == "aten::_to_copy" and bool(e.input_shapes) and tuple(e.input_shapes[0]) in shapes
               for e in prof.events())


@pytest.mark.parametrize("name", ["dstformer-lift", "tcn-27f-lift"])
def test_no_weight_cast_per_call(bf16, name):
    fp32, half = _pair(name, **SMALL[name])
    x = fp32.example_input(3, 27)
    with torch.inference_mode():
        half(x)  # the TCN folds its BatchNorms into bf16 GEMM weights once, on the first call
    assert _weight_casts(half, x) == 0

    class PlainAutocast(torch.nn.Module):  # what the test guards against: fp32 weights cast every call
        def __init__(self):
            super().__init__()
            self.model = fp32

        def forward(self, x):
            with torch.autocast("cpu", torch.bfloat16):
                return self.model(x)

    assert _weight_casts(PlainAutocast(), x) > 0


def test_residual_stream_and_layernorm_stay_fp32(bf16):
    """Features riding on a large offset: LayerNorm removes it in fp32; a bf16 residual stream or
    LayerNorm input (8 bits: steps of 0.25 at 64) would round the features away."""
    fp32, half = _pair("dstformer-lift", **SMALL["dstformer-lift"])
    with torch.no_grad():
        for model in (fp32, half):
            model.backbone.pos_embed.add_(64.0)
    x = fp32.example_input(2, 27)
    with torch.inference_mode():
        assert _relative_error(fp32(x), half(x)) < 2e-2


def test_timm_surface_and_dict_outputs_fp32(bf16):
    fp32, half = _pair("dstformer-lift", **SMALL["dstformer-lift"])
    x = fp32.example_input(2, 9)
    with torch.inference_mode():
        features = half.forward_features(x)
        assert features.dtype == torch.float32 and half.forward_head(features).dtype == torch.float32
        assert _relative_error(fp32.forward_features(x), features) < 2e-2
    assert precision.to_float32({"a": torch.ones(1, dtype=torch.bfloat16), "b": [torch.ones(1, dtype=torch.int64)]}) \
        == {"a": torch.ones(1), "b": [torch.ones(1, dtype=torch.int64)]}


def test_float32_back_and_none_unchanged(bf16):
    _, model = _pair("dstformer-lift", **SMALL["dstformer-lift"])
    precision.set_dtype(model, None)
    assert model.compute_dtype == torch.bfloat16
    precision.set_dtype(model, "float32")
    assert model.compute_dtype is None and {p.dtype for p in model.parameters()} == {torch.float32}


def test_fallback_without_bf16_warns_once_and_runs_fp32(no_bf16):
    with pytest.warns(PosezooWarning, match="no native bfloat16") as caught:
        model = posezoo.create("dstformer-lift", dtype="bfloat16", **SMALL["dstformer-lift"])
    assert len(caught) == 1
    assert model.compute_dtype is None and {p.dtype for p in model.parameters()} == {torch.float32}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto picks fp32 silently
        assert precision.auto_dtype(DEFAULT_MODEL) == torch.float32


def test_cpu_detection_on_older_torch(monkeypatch):
    """torch < 2.12 has no torch.cpu.get_capabilities, but _is_avx512_bf16_supported / _is_amx_tile_supported."""
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.cpu_has_bf16() is True
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert precision.cpu_has_bf16() is False


def test_auto_only_for_verified_weights(bf16):
    assert precision.auto_dtype(DEFAULT_MODEL) == torch.bfloat16
    assert precision.auto_dtype("dstformer-xs-lift.mocap") == torch.float32
    assert precision.auto_dtype(DEFAULT_MODEL, "cuda") == torch.float32  # measured on CPU only
    assert "bfloat16" in precision.lift_dtype_note([DEFAULT_MODEL])
    assert precision.lift_dtype_note(["dstformer-xs-lift.mocap"]).startswith("float32")


def test_lift_api_and_lifter(bf16):
    keypoints = np.load(EXAMPLE)
    tracks = posezoo.keypoints.read_keypoints(EXAMPLE)
    clip = tracks.tracks[0]
    ref = posezoo.lift(clip, layout=tracks.layout, dtype="float32")
    out = posezoo.lift(clip, layout=tracks.layout, dtype="bfloat16")
    assert ref.meta["dtype"] == "float32" and out.meta["dtype"] == "bfloat16"
    assert out.poses[0].dtype == np.float32
    error = np.linalg.norm(out.poses[0] - ref.poses[0], axis=-1).mean()
    assert 1e-5 < error < 3e-3  # metres: bf16 ran, and moved joints by under 3 mm on average
    lifter = Lifter(DEFAULT_MODEL, dtype="auto")
    assert lifter.model.compute_dtype == torch.bfloat16
    with pytest.raises(InputError, match="dtype= goes to Lifter"):
        posezoo.lift(clip, layout=tracks.layout, model=lifter, dtype="bfloat16")
    del keypoints


def test_cli_dtype_flag_and_fallback_line(tmp_path, capsys, monkeypatch):
    from posezoo.cli import main

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert main(["lift", str(EXAMPLE), "--out", str(tmp_path / "a.npz"), "--dtype", "bfloat16"]) == 0
    assert "bfloat16" in capsys.readouterr().err
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert main(["lift", str(EXAMPLE), "--out", str(tmp_path / "b.npz")]) == 0  # auto: fp32, no warning
    err = capsys.readouterr().err
    assert "float32" in err and "warning" not in err
    assert main(["lift", str(EXAMPLE), "--out", str(tmp_path / "c.npz"), "--dtype", "bfloat16"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "no native bfloat16" in warned[0]
    with pytest.raises(SystemExit):
        main(["lift", str(EXAMPLE), "--dtype", "float8"])


def test_info_says_the_lift_dtype(capsys):
    from posezoo.cli import main

    assert main(["info", DEFAULT_MODEL, "--json"]) == 0
    assert "lift_dtype" in capsys.readouterr().out


def test_bf16_training_loss_in_fp32(bf16):
    """BF16OptimWrapper: bf16 matmuls in forward, the loss taken on fp32 predictions, fp32 weights."""
    from mmengine.optim import build_optim_wrapper

    from posezoo.engine.tasks import LiftTask

    task = LiftTask(dict(name="dstformer-lift", **SMALL["dstformer-lift"]))
    wrapper = build_optim_wrapper(task, dict(type="posezoo.BF16OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3)))
    seen = []
    task.model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = task.model.example_input(2, 9)
    with wrapper.optim_context(task):
        losses = task(x, torch.zeros(2, 9, 17, 3), mode="loss")
    assert seen == [torch.bfloat16]
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert {p.dtype for p in task.parameters()} == {torch.float32}


@pytest.mark.parametrize("tokens, head", [(17, 64), (81, 68), (17, 4), (243, 64)])
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("chunked", [False, True])
def test_attention_paths_close_to_fp32(monkeypatch, tokens, head, grad, chunked):
    """Every branch of precision.attention (written out in one chunk or several, fp32 SDPA for narrow
    heads or long training sequences) within bf16 rounding of fp32 attention (measured <= 0.5%),
    output in bf16, gradients too; logits scaled 5% off give 4-7% and fail it."""
    if chunked:  # one batch element per chunk
        monkeypatch.setattr(precision, "SCORES_PER_CHUNK", 1)
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, tokens, head) for _ in range(3))
    scale = head ** -0.5
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale)
    leaves = [t.bfloat16().requires_grad_(grad) for t in (q, k, v)]
    with torch.set_grad_enabled(grad):
        out = precision.attention(*leaves, scale)
    assert out.dtype == torch.bfloat16
    assert _relative_error(ref, out.float()) < 1.5e-2
    if grad:
        out.float().square().sum().backward()
        refs = [t.clone().requires_grad_() for t in (q, k, v)]
        torch.nn.functional.scaled_dot_product_attention(*refs, scale=scale).square().sum().backward()
        for mine, theirs in zip(leaves, refs):
            assert _relative_error(theirs.grad, mine.grad.float()) < 3e-2
