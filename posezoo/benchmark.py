"""Benchmark posezoo models (and, optionally, their official implementations) on one machine:
``posezoo benchmark`` (:mod:`posezoo.commands.benchmark`), also run as ``tools/benchmark.py``.

    posezoo benchmark dstformer-lift --batch 8 --frames 243 --mode infer --repeats 5 \\
        --csv benchmarks/out.csv --official motionbert=/tmp/official/MotionBERT [--dtype bf16]

NAMES are registered entry names or fnmatch patterns (``"dstformer*"``, ``"*"``); tagged names
(``arch.tag``) count as their architecture (weights are random: speed does not depend on them).

What is measured, per model:
- params; GMACs per clip from ``posezoo.flops.count_flops`` (torch's flop counter, attention counted
  on every kernel) over one forward (infer) or forward + backward (train). MACs = FLOPs / 2.
- latency of one step (infer: forward under ``torch.inference_mode``; train: forward, MSE loss,
  backward, AdamW step) as median / min / max over ``--repeats`` runs after ``--warmup`` runs;
  frames/s = B * T / median.
- achieved FLOP/s and its fraction of the machine's matmul rate: a 2048^3 matmul in the variant's
  dtype (fp32; bf16 too with ``--dtype bf16``) is timed in every round next to the models, and each
  round's model FLOP/s is divided by that round's matmul FLOP/s (median over rounds), so that load
  from other processes cancels out.
- ``--dtype bf16``: posezoo's model made with ``posezoo.create(..., dtype="bfloat16")`` for inference
  (:mod:`posezoo.precision`), its training step under the recipes' bf16 autocast with fp32 weights;
  official implementations always run in fp32, so ``speedup_vs_official`` is against official fp32.
- peak memory: CPU: a fresh subprocess per model builds the model and input, reads its resident
  memory (VmRSS), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs one step
  and reads ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the difference is the extra peak
  resident memory of a step (activations, and AdamW state in train mode). CUDA:
  ``torch.cuda.max_memory_allocated`` over one step.

Variants are timed interleaved (one run of each per round, order rotated every round), so ratios
between them (``speedup_vs_official``, median of per-round ratios) are robust to a shared machine.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

import posezoo
from posezoo import precision
from posezoo._runtime import allocator_tuned
from posezoo.entries import get_entry, split_name
from posezoo.errors import InputError
from posezoo.flops import COUNTED, count_flops

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # on the memory probe's PYTHONPATH

MATMUL_N = 2048
CSV_COLUMNS = [
    "name", "impl", "mode", "dtype", "device", "compile", "grad_checkpointing", "batch", "frames",
    "threads", "params", "gmacs", "latency_median_ms", "latency_min_ms", "latency_max_ms",
    "frames_per_s", "gflops_per_s", "matmul_fraction", "peak_mem_mb", "speedup_vs_official",
    "max_abs_diff_vs_official", "create_ms", "repeats", "warmup",
]


# ----------------------------------------------------------------------------- official models
# Each official implementation is built with the posezoo model's hyper-parameters and loaded with its
# weights: ``keys`` maps posezoo's state dict to the official keys (the inverse of posezoo's converter
# for the family; tests/test_benchmark.py checks the round trip), ``load_state_dict(strict=True)``.
def _strip_backbone(state: dict[str, torch.Tensor], renames: dict[str, str]) -> dict[str, torch.Tensor]:
    """posezoo keys -> official keys: the ``renames`` prefixes replaced, ``backbone.`` dropped elsewhere."""
    out = {}
    for key, value in state.items():
        prefix = next((p for p in renames if key.startswith(p)), None)
        out[renames[prefix] + key[len(prefix):] if prefix else key[len("backbone."):]] = value
    return out


def _tcn_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = _strip_backbone(state, {"head.fc.": "shrink."})
    out["shrink.weight"] = out["shrink.weight"][..., None]  # Linear -> Conv1d(kernel_size=1)
    return out


def _motionbert(module: Any, model: nn.Module) -> nn.Module:
    """MotionBERT's DSTformer with its 3D head, built as its ``load_backbone`` does."""
    cfg = model.config["backbone"]
    return module.DSTformer(
        dim_in=cfg["dim_in"], dim_out=model.config["head"]["dim_out"], dim_feat=cfg["dim_feat"],
        dim_rep=cfg["dim_rep"], depth=cfg["depth"], num_heads=cfg["num_heads"],
        mlp_ratio=cfg["mlp_ratio"], num_joints=cfg["num_joints"], maxlen=cfg["maxlen"],
        qkv_bias=cfg["qkv_bias"], qk_scale=cfg["qk_scale"], drop_rate=cfg["drop_rate"],
        attn_drop_rate=cfg["attn_drop_rate"], drop_path_rate=cfg["drop_path_rate"],
        norm_layer=partial(nn.LayerNorm, eps=cfg["norm_eps"]), att_fuse=cfg["att_fuse"])


def _videopose3d(module: Any, model: nn.Module) -> nn.Module:
    """VideoPose3D's class for the posezoo backbone's ``mode``: ``TemporalModelOptimized1f`` for
    'window' (its training form), else ``TemporalModel`` (its evaluation form)."""
    cfg = model.config["backbone"]
    cls = module.TemporalModelOptimized1f if model.backbone.mode == "window" else module.TemporalModel
    extra = {} if model.backbone.mode == "window" else {"dense": cfg["dense"]}
    return cls(cfg["num_joints_in"], cfg["in_features"], cfg["num_joints_out"], list(cfg["filter_widths"]),
               causal=cfg["causal"], dropout=cfg["dropout"], channels=cfg["channels"], **extra)


class EdgePadded(nn.Module):
    """``model`` on the sequence edge-padded by (left, right) frames, as VideoPose3D evaluates whole
    sequences (common/generators.py ``UnchunkedGenerator``: ``np.pad(..., 'edge')``)."""

    def __init__(self, model: nn.Module, left: int, right: int):
        super().__init__()
        self.model, self.left, self.right = model, left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        index = torch.arange(-self.left, frames + self.right, device=x.device).clamp(0, frames - 1)
        return self.model(x[:, index])


def _videopose3d_wrap(official: nn.Module, model: nn.Module) -> nn.Module:
    if model.backbone.mode != "sequence":
        return official
    return EdgePadded(official, *model.backbone.sequence_padding())


def _poseformer_blocks(cfg: dict) -> dict:
    names = ("num_frame", "num_joints", "in_chans", "num_heads", "mlp_ratio", "qkv_bias", "qk_scale",
             "drop_rate", "attn_drop_rate", "drop_path_rate")
    return {k: cfg[k] for k in names}


def _poseformer(module: Any, model: nn.Module) -> nn.Module:
    cfg = model.config["backbone"]
    return module.PoseTransformer(embed_dim_ratio=cfg["embed_dim_ratio"], depth=cfg["depth"], **_poseformer_blocks(cfg))


def _poseformerv2(module: Any, model: nn.Module) -> nn.Module:
    """``PoseTransformerV2`` reads four hyper-parameters from run_poseformer.py's ``args``."""
    cfg = model.config["backbone"]
    args = argparse.Namespace(embed_dim_ratio=cfg["embed_dim_ratio"], depth=cfg["depth"],
                              number_of_kept_frames=cfg["number_of_kept_frames"],
                              number_of_kept_coeffs=cfg["number_of_kept_coeffs"])
    return module.PoseTransformerV2(args=args, **_poseformer_blocks(cfg))


HEAD_SPLIT = {"head.fc.": "head.1.", "backbone.head_norm.": "head.0."}  # PoseFormer-style heads


@dataclass(frozen=True)
class Official:
    """An official implementation: the posezoo family it mirrors, its source file in a checkout,
    ``build(module, posezoo_model)`` -> the official module with the same hyper-parameters,
    ``keys`` posezoo state dict -> official state dict, and ``wrap`` (optional) for the input
    preparation the official code does outside the module."""

    family: str
    file: str
    build: Callable[[Any, nn.Module], nn.Module]
    keys: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    wrap: Callable[[nn.Module, nn.Module], nn.Module] | None = None


# name given to --official -> its implementation
OFFICIAL: dict[str, Official] = {
    "motionbert": Official("dstformer", "lib/model/DSTformer.py", _motionbert,
                           partial(_strip_backbone, renames={"head.fc.": "head."})),
    "videopose3d": Official("tcn", "common/model.py", _videopose3d, _tcn_keys, _videopose3d_wrap),
    "poseformer": Official("poseformer", "common/model_poseformer.py", _poseformer,
                           partial(_strip_backbone, renames=HEAD_SPLIT)),
    "poseformerv2": Official("poseformerv2", "common/model_poseformer.py", _poseformerv2,
                             partial(_strip_backbone, renames=HEAD_SPLIT)),
}


def load_official(name: str, path: str, model: nn.Module) -> nn.Module:
    """The official ``name`` from the checkout at ``path``, holding the posezoo ``model``'s weights.

    The source file is imported by path under its own module name (PoseFormer and PoseFormerV2
    both call theirs ``common.model_poseformer``); the checkout goes on ``sys.path`` for its own
    imports (MotionBERT's ``lib.model.drop``).
    """
    spec = OFFICIAL[name]
    if path not in sys.path:
        sys.path.insert(0, path)
    module_name = f"posezoo_official_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        loader = importlib.util.spec_from_file_location(module_name, Path(path) / spec.file)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        sys.modules[module_name] = module
    official = spec.build(module, model)
    official.load_state_dict(spec.keys(model.state_dict()), strict=True)
    return spec.wrap(official, model) if spec.wrap else official


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def matmul_gflops(device: str, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of one MATMUL_N^3 matmul in ``dtype`` (the physical limit the models are compared with)."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    _sync(device)
    start = time.perf_counter()
    a @ b
    _sync(device)
    return 2 * MATMUL_N ** 3 / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- one variant
@dataclass
class Variant:
    """One model under test and how to run one step of it."""

    name: str
    impl: str  # "posezoo" or "official:<name>"
    model: nn.Module
    dtype: torch.dtype = torch.float32  # what it computes in (its matmul rate's dtype)
    step: Callable[[], Any] = None
    flops: int = 0
    times: list[float] = field(default_factory=list)
    matmul_fractions: list[float] = field(default_factory=list)
    create_ms: float | None = None
    peak_mem_mb: float | None = None
    max_abs_diff: float | None = None


def input_shape(model: nn.Module, batch: int, frames: int) -> tuple[int, int, int, int]:
    """(B, T, J, C) for ``model``: T is ``frames`` unless the backbone needs a fixed ``num_frames``,
    and at most its ``max_frames``."""
    backbone = model.backbone
    fixed = getattr(backbone, "num_frames", None)
    limit = getattr(backbone, "max_frames", None)
    t = fixed or (min(frames, limit) if limit else frames)
    return batch, t, backbone.num_joints, backbone.dim_in


def make_step(model: nn.Module, x: torch.Tensor, mode: str, device: str, fused_adamw: bool = False,
              train_dtype: torch.dtype | None = None) -> Callable[[], Any]:
    """A closure running one inference forward (in the dtype the model was made with) or one
    training step (fwd and MSE under :func:`posezoo.precision.autocast` to ``train_dtype``, as
    BF16OptimWrapper does; bwd, AdamW; ``fused_adamw``: the single-kernel AdamW of posezoo's recipes)."""
    if mode == "infer":
        model.eval()

        def infer():
            with torch.inference_mode():
                return model(x)
        return infer
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused_adamw or None)

    def train():
        with precision.autocast(train_dtype, device):
            loss = model(x).float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    return train


def build_posezoo(name: str, overrides: dict, args: argparse.Namespace) -> nn.Module:
    """posezoo's model; for inference made in ``args.dtype`` (training keeps fp32 weights)."""
    model = posezoo.create(name, dtype=args.dtype if args.mode == "infer" else None, **overrides)
    if args.grad_checkpointing:
        setter = getattr(model.backbone, "set_grad_checkpointing", None)
        if setter is None:
            raise InputError(f"{name}: its backbone has no set_grad_checkpointing()")
        setter(True)
    return model


def make_input(model: nn.Module, args: argparse.Namespace) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(input_shape(model, args.batch, args.frames), generator=generator).mul_(2).sub_(1)


def prepare(variant: Variant, x: torch.Tensor, args: argparse.Namespace) -> None:
    """Count FLOPs on one eager step (the first warm-up run unless compiling) and set ``step``."""
    model = variant.model.to(args.device)
    fused = uses_fused_adamw(variant.impl, args)
    train_dtype = variant.dtype if args.mode == "train" else None
    variant.step = make_step(model, x, args.mode, args.device, fused, train_dtype)
    variant.flops = count_flops(variant.step)
    if args.compile:
        variant.step = make_step(torch.compile(model), x, args.mode, args.device, fused, train_dtype)


def uses_fused_adamw(impl: str, args: argparse.Namespace) -> bool:
    """posezoo's training step uses the fused AdamW of its recipes (``--plain-adamw`` turns it off);
    the official implementations keep their own default, per-parameter AdamW."""
    return impl == "posezoo" and not args.plain_adamw


def measure_create_ms(model: nn.Module, runs: int = 3) -> float:
    """Median time of ``posezoo.create(folder)`` for ``model`` saved with ``posezoo.save``."""
    with tempfile.TemporaryDirectory() as folder:
        posezoo.save(model, folder)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            posezoo.create(folder)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# ----------------------------------------------------------------------------- memory probe
def probe_memory(spec: dict) -> dict[str, float]:
    """Run in a fresh process: extra peak memory (MiB) and time (s) of one step of ``spec``."""
    args = argparse.Namespace(**spec["args"])
    torch.set_num_threads(args.threads)
    model = build_posezoo(spec["name"], spec["overrides"], args)
    x = make_input(model, args).to(args.device)
    if spec["impl"] != "posezoo":
        model = load_official(spec["impl"].split(":", 1)[1], spec["official_path"], model)
    model.to(args.device)
    train_dtype = precision.resolve_dtype(args.dtype) if args.mode == "train" and spec["impl"] == "posezoo" else None
    step = make_step(model, x, args.mode, args.device, uses_fused_adamw(spec["impl"], args), train_dtype)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        return {"peak_mem_mb": (torch.cuda.max_memory_allocated() - base) / 2 ** 20,
                "step_s": time.perf_counter() - start}
    before = _rss_kib()
    _reset_peak_rss()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    return {"peak_mem_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,  # KiB
            "step_s": seconds}


def _rss_kib() -> int:
    """Resident memory now (KiB), or the peak so far where /proc is missing."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> None:
    """Lower the kernel's peak-RSS mark to the current RSS (Linux >= 4.0), so that ru_maxrss after a
    step is that step's peak, not the peak of building the model."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_in_subprocess(variant: Variant, overrides: dict, args: argparse.Namespace,
                         official_paths: dict[str, str]) -> dict[str, float] | None:
    spec = {"name": variant.name, "impl": variant.impl, "overrides": overrides,
            "official_path": official_paths.get(variant.impl.partition(":")[2]),
            "args": {k: getattr(args, k) for k in ("batch", "frames", "mode", "dtype", "device",
                                                    "threads", "grad_checkpointing", "plain_adamw")}}
    proc = subprocess.run([sys.executable, "-m", "posezoo.benchmark", json.dumps(spec)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": _pythonpath()})
    if proc.returncode != 0:
        Console(stderr=True).print(f"[red]memory probe of {variant.impl} {variant.name} failed:[/]\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pythonpath() -> str:
    return os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))


# ----------------------------------------------------------------------------- driver
def resolve_names(patterns: list[str]) -> list[str]:
    """Architectures (``arch``, tags dropped) matching the given names or patterns, in order."""
    names: list[str] = []
    for pattern in patterns:
        found = [split_name(n)[0] for n in posezoo.list_models(pattern)]
        if not found and not any(c in pattern for c in "*?["):
            get_entry(pattern)  # raises a readable error for an unknown name
        if not found:
            raise InputError(f"no registered model matches {pattern!r}; known: {', '.join(posezoo.list_models())}")
        names += found
    return list(dict.fromkeys(names))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["depth=2", "att_fuse=false"]`` -> ``{"depth": 2, "att_fuse": False}`` (values as JSON)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--override takes NAME=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_official(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or key not in OFFICIAL:
            raise InputError(f"--official takes NAME=PATH with NAME one of {sorted(OFFICIAL)}, got {item!r}")
        if not Path(path).is_dir():
            raise InputError(f"--official {key}: {path} is not a folder")
        out[key] = str(Path(path).resolve())
    return out


def run(args: argparse.Namespace) -> list[dict]:
    """Benchmark as ``args`` (:func:`parse_args`) say; print the table, write the CSV, return its rows."""
    check_args(args)
    console = Console(width=None if sys.stdout.isatty() else 200)
    torch.set_num_threads(args.threads)
    dtype = precision.supported_dtype(args.dtype, args.device)  # fp32, with a warning, without bf16
    args.dtype = "bf16" if dtype == torch.bfloat16 else "fp32"
    overrides = parse_overrides(args.override)
    official_paths = parse_official(args.official)
    names = resolve_names(args.names)

    variants: list[Variant] = []
    inputs: dict[str, torch.Tensor] = {}
    for name in names:
        model = build_posezoo(name, overrides, args)
        inputs[name] = make_input(model, args).to(args.device)
        family = model.meta.get("family")
        ours = Variant(name, "posezoo", model, dtype)
        if not args.compile and args.device == "cpu":
            ours.create_ms = measure_create_ms(model)
        variants.append(ours)
        for official, path in official_paths.items():
            if OFFICIAL[official].family == family:
                variants.append(Variant(name, f"official:{official}", load_official(official, path, model)))

    for variant in variants:  # same weights, same input: the implementations must agree
        if variant.impl != "posezoo":
            ours = next(v for v in variants if v.name == variant.name and v.impl == "posezoo")
            with torch.no_grad():
                x = inputs[variant.name]
                variant.max_abs_diff = (ours.model.eval()(x) - variant.model.eval()(x)).abs().max().item()

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("preparing (FLOP count, compile)", total=len(variants) * bool(args.repeats))
        for variant in variants if args.repeats else []:  # --repeats 0: memory probe only
            prepare(variant, inputs[variant.name], args)
            progress.advance(task)
        warmup = args.warmup - (not args.compile)  # counting the FLOPs was a warm-up run
        task = progress.add_task("warm-up", total=max(warmup, 0) * len(variants))
        for _ in range(warmup):
            for variant in variants:
                variant.step()
                _sync(args.device)
                progress.advance(task)
        task = progress.add_task("timing (interleaved rounds)", total=args.repeats * len(variants))
        dtypes = sorted({v.dtype for v in variants}, key=str)
        for r in range(args.repeats):
            # each dtype's matmul rate before and after the round: the round's limit is their mean
            before = {d: matmul_gflops(args.device, d) for d in dtypes}
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for variant in order:
                _sync(args.device)
                start = time.perf_counter()
                variant.step()
                _sync(args.device)
                variant.times.append(time.perf_counter() - start)
                progress.advance(task)
            rates = {d: (before[d] + matmul_gflops(args.device, d)) / 2 for d in dtypes}
            for variant in variants:
                variant.matmul_fractions.append(variant.flops / variant.times[-1] / 1e9 / rates[variant.dtype])
        if args.memory:
            task = progress.add_task("peak memory (fresh process per model)", total=len(variants))
            for variant in variants:
                probe = memory_in_subprocess(variant, overrides, args, official_paths)
                if probe:
                    variant.peak_mem_mb = probe["peak_mem_mb"]
                    if not args.repeats:  # the probe's step is the only timing
                        variant.times.append(probe["step_s"])
                progress.advance(task)

    rows = [to_row(v, variants, inputs, args) for v in variants]
    print_table(console, rows)
    if args.csv:
        write_csv(Path(args.csv), rows, args)
        console.print(f"wrote {args.csv}")
    return rows


def to_row(variant: Variant, variants: list[Variant], inputs: dict, args: argparse.Namespace) -> dict:
    B, T = inputs[variant.name].shape[:2]
    times = variant.times or [float("nan")]  # nan: the memory-only probe failed
    median = statistics.median(times)
    speedup = None
    if variant.impl == "posezoo":
        officials = [v for v in variants if v.name == variant.name and v.impl != "posezoo"]
        if officials and officials[0].times:  # median of per-round ratios: each pair ran back to back
            speedup = statistics.median(o / s for o, s in zip(officials[0].times, times))
    return {
        "name": variant.name, "impl": variant.impl, "mode": args.mode,
        "dtype": "bf16" if variant.dtype == torch.bfloat16 else "fp32",
        "device": args.device, "compile": args.compile, "grad_checkpointing": args.grad_checkpointing,
        "batch": B, "frames": T, "threads": args.threads,
        "params": sum(p.numel() for p in variant.model.parameters()),
        "gmacs": variant.flops / 2 / 1e9 if variant.flops else None,
        "latency_median_ms": median * 1e3, "latency_min_ms": min(times) * 1e3,
        "latency_max_ms": max(times) * 1e3, "frames_per_s": B * T / median,
        "gflops_per_s": variant.flops / median / 1e9 if variant.flops else None,
        "matmul_fraction": statistics.median(variant.matmul_fractions) if variant.matmul_fractions else None,
        "peak_mem_mb": variant.peak_mem_mb, "speedup_vs_official": speedup,
        "max_abs_diff_vs_official": variant.max_abs_diff, "create_ms": variant.create_ms,
        "repeats": args.repeats, "warmup": args.warmup,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


SHOWN = {"name": "name", "impl": "impl", "batch": "B", "frames": "T", "params": "params",
         "gmacs": "GMACs", "latency_median_ms": "median ms", "latency_min_ms": "min ms",
         "latency_max_ms": "max ms", "frames_per_s": "frames/s", "matmul_fraction": "of matmul",
         "peak_mem_mb": "mem MiB", "speedup_vs_official": "x official",
         "max_abs_diff_vs_official": "max |diff|", "create_ms": "create ms"}


def print_table(console: Console, rows: list[dict]) -> None:
    table = Table(title="posezoo benchmark (latency of one step; 'x official': official/posezoo time)")
    for column, header in SHOWN.items():
        table.add_column(header, justify="left" if column in ("name", "impl") else "right")
    for row in rows:
        table.add_row(*(_fmt(row[c]) for c in SHOWN))
    console.print(table)


def machine_header(args: argparse.Namespace) -> list[str]:
    dtypes = [torch.float32] + ([torch.bfloat16] if args.dtype == "bf16" else [])
    rates = {d: sorted(matmul_gflops(args.device, d) for _ in range(5)) for d in dtypes}
    return [
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"command: {args.command}",
        f"cpu: {cpu_model()}; logical cores: {os.cpu_count()}; torch threads: {args.threads}",
        f"torch: {torch.__version__}; python: {platform.python_version()}; device: {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
        "allocator: " + ("posezoo's settings (posezoo/_runtime.py: glibc keeps large freed blocks), "
                         "for every variant of this process" if allocator_tuned() else "glibc defaults"),
        *(f"{str(d).removeprefix('torch.')} matmul {MATMUL_N}^3 at write time: median {statistics.median(r):.1f} "
          f"GFLOP/s, max {r[-1]:.1f} GFLOP/s (matmul_fraction uses the rate of the variant's dtype measured in "
          "each round)" for d, r in rates.items()),
        "dtype: " + ("bf16 for posezoo (inference: posezoo.create(dtype='bfloat16'); training: bf16 autocast, "
                     "fp32 weights), fp32 for official implementations" if args.dtype == "bf16" else "fp32"),
        f"gmacs: FLOPs / 2 per clip (forward; train: forward + backward) of posezoo.flops: {COUNTED}",
        "latency: one step (infer: forward in inference_mode; train: forward + MSE + backward + AdamW, "
        + ("per-parameter AdamW for every variant)" if args.plain_adamw else
           "posezoo with the fused AdamW of its recipes, official code with torch's default AdamW)"),
        "peak_mem_mb: " + ("torch.cuda.max_memory_allocated over one step" if args.device.startswith("cuda")
                           else "ru_maxrss after one step - VmRSS before it, peak mark reset by "
                           "/proc/self/clear_refs, in a fresh process per model (MiB)"),
        "speedup_vs_official: median over rounds of official/posezoo latency (interleaved runs)",
        "create_ms: median time of posezoo.create(folder) for the model saved with posezoo.save",
    ]


def write_csv(path: Path, rows: list[dict], args: argparse.Namespace) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        for line in machine_header(args):
            f.write(f"# {line}\n")
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) if isinstance(v, float) else ("" if v is None else v)
                             for k, v in row.items()})


def check_args(args: argparse.Namespace) -> None:
    """Refuse argument combinations :func:`run` cannot honour."""
    if args.compile and args.warmup < 1:
        raise InputError("--compile needs --warmup >= 1 (the first run compiles)")
    if args.repeats < 0 or (args.repeats == 0 and not args.memory):
        raise InputError("--repeats must be >= 1, or 0 with the memory probe")
    if args.threads is None:
        args.threads = torch.get_num_threads()


def parse_args(argv: list[str], prog: str = "posezoo benchmark") -> argparse.Namespace:
    """The arguments of ``posezoo benchmark`` (:mod:`posezoo.commands.benchmark`); ``args.command``
    is the command line recorded in the CSV, as ``prog`` and ``argv``."""
    from posezoo.commands import benchmark as command

    parser = argparse.ArgumentParser(prog=prog, description=command.HELP)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    args.command = shlex.join([*prog.split(), *argv])
    return args


def main(argv: list[str], prog: str = "posezoo benchmark") -> list[dict]:
    """Parse ``argv`` and :func:`run`."""
    return run(parse_args(argv, prog))


if __name__ == "__main__":  # the fresh process of memory_in_subprocess
    print(json.dumps(probe_memory(json.loads(sys.argv[1]))))
