"""``posezoo benchmark NAMES``: latency, FLOP/s, memory of models, against official code (:mod:`posezoo.benchmark`)."""
from __future__ import annotations

import argparse

NAME = "benchmark"
HELP = "time models (inference or a training step), optionally against their official implementations"
TUNED_ALLOCATOR = True  # posezoo.cli re-executes with posezoo._runtime's allocator settings first
OFFICIAL_NAMES = "motionbert, videopose3d, poseformer, poseformerv2"  # posezoo.benchmark.OFFICIAL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", default=["*"], help="entry names or fnmatch patterns (default: all)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=243, help="T (capped at the model's max_frames)")
    parser.add_argument("--mode", choices=["infer", "train"], default="infer")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: posezoo.create(dtype='bfloat16') for inference, bf16 autocast with fp32 weights "
                             "for training (official code stays fp32); fp32 with a warning on a CPU without bf16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (ours and official)")
    parser.add_argument("--grad-checkpointing", action="store_true",
                        help="activation checkpointing in posezoo backbones (train mode)")
    parser.add_argument("--plain-adamw", action="store_true",
                        help="train mode: posezoo with the per-parameter AdamW too (default: the fused AdamW "
                             "of posezoo's recipes; official implementations always use their default)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each model; 0: only the memory probe (its one step is timed)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs of each model first (the first one counts the FLOPs)")
    parser.add_argument("--csv", help="write the results here")
    parser.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                        help="hyper-parameter override passed to posezoo.create (repeatable)")
    parser.add_argument("--official", action="append", default=[], metavar="NAME=PATH",
                        help=f"also benchmark an official implementation from a checkout; NAME in {OFFICIAL_NAMES}")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory probes")


def run(args: argparse.Namespace) -> int:
    import shlex

    from posezoo.benchmark import run as benchmark

    args.command = shlex.join(["posezoo", *args.argv])
    benchmark(args)
    return 0
