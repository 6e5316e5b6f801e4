"""posezoo benchmark (posezoo/benchmark.py, tools/benchmark.py) on tiny models: a well-formed CSV (no
timing assertions), bf16, and the official implementations' key mappings (without the official code;
with it where a checkout is found)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import posezoo
from posezoo import precision

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--override", "depth=1", "--override", "dim_feat=16", "--override", "dim_rep=16",
        "--override", "num_heads=2", "--override", "maxlen=9"]
OFFICIAL = Path(os.environ.get("POSEZOO_MOTIONBERT", "/tmp/official/MotionBERT"))
# --official name -> (a tiny posezoo model of its family, checkout folder)
TINY_OFFICIAL = {
    "motionbert": (dict(name="dstformer-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9), OFFICIAL),
    "videopose3d": (dict(name="tcn-27f-lift", channels=16), "VideoPose3D"),
    "poseformer": (dict(name="poseformer-9f-lift", depth=1, embed_dim_ratio=8, num_heads=2), "PoseFormer"),
    "poseformerv2": (dict(name="poseformerv2-27f-k3c3-lift", depth=1, embed_dim_ratio=8, num_heads=2), "PoseFormerV2"),
}
OFFICIAL_ROOT = Path(os.environ.get("POSEZOO_OFFICIAL", "/tmp/official"))


@pytest.fixture(scope="module")
def bench():
    import posezoo.benchmark

    return posezoo.benchmark


def _read(path: Path) -> tuple[list[str], list[dict]]:
    lines = path.read_text().splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    return header, rows


def test_writes_well_formed_csv(bench, tmp_path):
    out = tmp_path / "bench.csv"
    bench.main(["dstformer-lift.h36m-ft", "dstformer-lift", *TINY, "--batch", "2", "--frames", "12",
                "--repeats", "2", "--warmup", "1", "--threads", "1", "--no-memory", "--csv", str(out)])
    header, rows = _read(out)
    text = "\n".join(header)
    assert "cpu: " in text and "torch: " + torch.__version__ in text and "torch threads: 1" in text
    assert "GFLOP/s" in text and "FLOPs / 2" in text and "command: posezoo benchmark dstformer-lift.h36m-ft" in text
    assert len(rows) == 1  # the tag names the same architecture
    row = rows[0]
    assert list(row) == bench.CSV_COLUMNS
    model = posezoo.create("dstformer-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)
    assert row["name"] == "dstformer-lift" and row["impl"] == "posezoo" and row["mode"] == "infer"
    assert int(row["params"]) == sum(p.numel() for p in model.parameters())
    assert (int(row["batch"]), int(row["frames"])) == (2, 9)  # T capped at max_frames
    lo, med, hi = (float(row[k]) for k in ("latency_min_ms", "latency_median_ms", "latency_max_ms"))
    assert 0 < lo <= med <= hi
    assert float(row["frames_per_s"]) == pytest.approx(2 * 9 / (med / 1e3), rel=1e-3)
    # 2 MACs per token per weight of every Linear at least (attention adds more)
    assert float(row["gmacs"]) * 1e9 >= 2 * 9 * 17 * sum(
        m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) / 2
    assert float(row["gflops_per_s"]) == pytest.approx(2 * float(row["gmacs"]) / (med / 1e3), rel=1e-3)
    assert float(row["matmul_fraction"]) > 0
    assert float(row["create_ms"]) > 0
    assert row["peak_mem_mb"] == "" and row["speedup_vs_official"] == ""


@pytest.mark.slow
def test_train_mode_and_checkpointing(bench, tmp_path):
    out = tmp_path / "train.csv"
    bench.main(["dstformer-lift", *TINY, "--batch", "2", "--frames", "9", "--mode", "train",
                "--grad-checkpointing", "--repeats", "1", "--warmup", "0", "--no-memory", "--csv", str(out)])
    _, rows = _read(out)
    assert rows[0]["mode"] == "train" and rows[0]["grad_checkpointing"] == "True"
    model = posezoo.create("dstformer-lift", depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)
    infer_flops = bench.count_flops(bench.make_step(model, torch.zeros(2, 9, 17, 3), "infer", "cpu"))
    assert float(rows[0]["gmacs"]) * 2e9 > 2.5 * infer_flops  # backward ~2x forward


def test_names_and_patterns(bench):
    assert bench.resolve_names(["dstformer-lift*"]) == ["dstformer-lift"]
    assert set(bench.resolve_names(["dstformer*"])) >= {"dstformer-lift", "dstformer-lite-lift"}
    with pytest.raises((SystemExit, KeyError, ValueError)):
        bench.resolve_names(["no-such-model"])
    assert bench.parse_overrides(["depth=2", "att_fuse=false", "qk_scale=null"]) == {
        "depth": 2, "att_fuse": False, "qk_scale": None}


@pytest.mark.slow
def test_memory_probe_in_fresh_process(bench, tmp_path):
    args = bench.parse_args(["dstformer-lift", *TINY, "--batch", "64", "--frames", "9", "--threads", "1"])
    variant = bench.Variant("dstformer-lift", "posezoo", None)
    probe = bench.memory_in_subprocess(variant, bench.parse_overrides(args.override), args, {})
    # a step holds a few (64, 9, 17, 48)-float tensors at once: well above 1 MiB
    assert probe is not None and probe["peak_mem_mb"] > 1 and probe["step_s"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not (OFFICIAL / "lib" / "model" / "DSTformer.py").is_file(),
                    reason="official MotionBERT checkout not found (set POSEZOO_MOTIONBERT)")
def test_official_runs_on_same_weights(bench, tmp_path):
    out = tmp_path / "official.csv"
    bench.main(["dstformer-lift", *TINY, "--batch", "1", "--frames", "9", "--repeats", "2", "--no-memory",
                "--official", f"motionbert={OFFICIAL}", "--csv", str(out)])
    _, rows = _read(out)
    ours, official = rows
    assert official["impl"] == "official:motionbert" and official["params"] == ours["params"]
    assert float(official["max_abs_diff_vs_official"]) <= 1e-5
    assert float(ours["speedup_vs_official"]) > 0


def _tiny(name, **overrides):
    torch.manual_seed(0)
    return posezoo.create(name, **overrides)


@pytest.mark.parametrize("official", sorted(TINY_OFFICIAL))
def test_official_key_mapping_inverts_posezoo_converter(bench, official):
    """posezoo -> official keys, then posezoo's own converter back: the same state dict."""
    assert set(TINY_OFFICIAL) == set(bench.OFFICIAL)
    spec = bench.OFFICIAL[official]
    model = _tiny(**TINY_OFFICIAL[official][0])
    assert model.meta["family"] == spec.family
    state = model.state_dict()
    mapped = spec.keys(state)
    assert not any(k.startswith("backbone.") for k in mapped)
    back = posezoo.registry.CONVERTERS.get(spec.family)(mapped)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], v) for k, v in state.items())


def test_edge_padding_wrapper_matches_sequence_mode(bench):
    """EdgePadded(valid form) is VideoPose3D's evaluation of a whole sequence: equal to posezoo's
    'sequence' mode (here both posezoo, so the test needs no official code)."""
    for causal in (False, True):
        model = _tiny("tcn-27f-lift", channels=16, causal=causal).eval()
        x = torch.rand(2, 11, 17, 2)
        with torch.no_grad():
            sequence = model(x)
            model.backbone.mode = "valid"
            padded = bench.EdgePadded(model, *model.backbone.sequence_padding())(x)
        assert padded.shape == sequence.shape and (padded - sequence).abs().max().item() <= 1e-6


OFFICIAL_NEEDS = {"poseformer": ("einops",), "poseformerv2": ("einops", "torch_dct")}


@pytest.mark.slow
@pytest.mark.parametrize("official, mode", [("videopose3d", "sequence"), ("videopose3d", "window"),
                                            ("poseformer", None), ("poseformerv2", None)])
def test_other_officials_run_on_same_weights(bench, tmp_path, official, mode):
    overrides, folder = TINY_OFFICIAL[official]
    path = OFFICIAL_ROOT / folder
    if not (path / bench.OFFICIAL[official].file).is_file():
        pytest.skip(f"official checkout {path} not found (set POSEZOO_OFFICIAL)")
    for module in OFFICIAL_NEEDS.get(official, ()):  # imported by the official file, not by posezoo
        pytest.importorskip(module, reason=f"the official {official} code imports {module} (benchmarks/README.md)")
    overrides = dict(overrides)
    argv = [overrides.pop("name"), *(a for k, v in overrides.items() for a in ("--override", f"{k}={v}"))]
    if mode:
        argv += ["--override", f"mode={mode}", "--frames", "27" if mode == "window" else "30"]
    out = tmp_path / "official.csv"
    bench.main([*argv, "--batch", "2", "--repeats", "1", "--warmup", "0", "--threads", "1", "--no-memory",
                "--official", f"{official}={path}", "--csv", str(out)])
    _, (ours, theirs) = _read(out)
    assert theirs["impl"] == f"official:{official}" and theirs["params"] == ours["params"]
    assert float(theirs["max_abs_diff_vs_official"]) <= 1e-5


@pytest.mark.skipif(not precision.cpu_has_bf16(), reason="this CPU has no native bf16 (the fallback: test_bf16.py)")
@pytest.mark.parametrize("mode", ["infer", "train"])
def test_bf16_rows_and_matmul_rates(bench, tmp_path, mode):
    """--dtype bf16: posezoo's row in bf16 with its fraction of the bf16 matmul rate, both rates in the header."""
    out = tmp_path / "bf16.csv"
    bench.main(["dstformer-lift", *TINY, "--batch", "2", "--frames", "9", "--mode", mode, "--dtype", "bf16",
                "--repeats", "1", "--warmup", "0", "--threads", "1", "--no-memory", "--csv", str(out)])
    header, (row,) = _read(out)
    assert row["dtype"] == "bf16" and float(row["matmul_fraction"]) > 0
    assert any(line.startswith("bfloat16 matmul 2048^3") for line in header)
    assert any(line.startswith("float32 matmul 2048^3") for line in header)


def test_bf16_step_uses_the_precision_module(bench):
    """Inference runs the model made with dtype (bf16 weights, no autocast around it); training keeps
    fp32 weights and runs forward and loss under posezoo.precision.autocast."""
    args = bench.parse_args(["dstformer-lift", *TINY, "--dtype", "bf16", "--threads", "1"])
    model = bench.build_posezoo("dstformer-lift", bench.parse_overrides(args.override), args)
    assert model.compute_dtype == (torch.bfloat16 if precision.cpu_has_bf16() else None)
    args.mode = "train"
    trained = bench.build_posezoo("dstformer-lift", bench.parse_overrides(args.override), args)
    assert trained.compute_dtype is None and {p.dtype for p in trained.parameters()} == {torch.float32}
    seen = []
    trained.head.register_forward_hook(lambda m, i, o: seen.append((o.dtype, torch.is_autocast_enabled("cpu"))))
    step = bench.make_step(trained, trained.example_input(2), "train", "cpu", train_dtype=torch.bfloat16)
    loss = step()
    assert seen == [(torch.bfloat16, True)] and loss.dtype == torch.float32  # the loss in fp32


def test_installed_command_and_script(tmp_path):
    """posezoo benchmark is a command of the CLI; tools/benchmark.py is a wrapper recording its own name."""
    from posezoo.cli import main

    argv = ["dstformer-lift", *TINY, "--batch", "1", "--frames", "9", "--repeats", "1", "--warmup", "0",
            "--threads", "1", "--no-memory"]
    assert main(["benchmark", *argv, "--csv", str(tmp_path / "a.csv")]) == 0
    script = [sys.executable, str(ROOT / "tools" / "benchmark.py"), *argv, "--csv", str(tmp_path / "b.csv")]
    proc = subprocess.run(script, capture_output=True, text=True, env={**os.environ, "POSEZOO_DEFAULT_ALLOCATOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "# command: tools/benchmark.py dstformer-lift" in (tmp_path / "b.csv").read_text()
    assert main(["benchmark", "dstformer-lift", "--override", "depth"]) == 2  # a bad argument: one line, exit 2
