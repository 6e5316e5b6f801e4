"""Lift throughput of a model on a long real sequence: frames/s of posezoo.lift end to end.

    python tools/lift_throughput.py [--model NAME] [--frames 18000] [--threads 2] [--repeats 3] [--dtype bfloat16]

The input is the example OpenPose track (examples/treadmill_walk_openpose.npz) played back and
forth until it has --frames frames, so the windows see real detector output at every seam.

It also reports the FLOP-limited time: the FLOPs of the whole lift (posezoo.flops over
one run: every window, flip test included) divided by the machine's matmul rate in the lift's dtype
measured in the same run (posezoo.benchmark's 2048^3 matmul, best of 5), and the measured time over it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import posezoo
from posezoo.benchmark import matmul_gflops
from posezoo.flops import count_flops
from posezoo.keypoints import read_keypoints
from posezoo.lifting import DEFAULT_MODEL, Lifter

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "treadmill_walk_openpose.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--frames", type=int, default=18000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "auto"], default="float32",
                        help="posezoo.lift's dtype (posezoo lift's default is auto)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tracks = read_keypoints(EXAMPLE)
    clip = tracks.tracks[0]
    loop = np.concatenate([clip, clip[::-1]])
    long = np.resize(loop, (args.frames, *clip.shape[1:]))
    lifter = Lifter(args.model, dtype=args.dtype)
    dtype = lifter.model.compute_dtype or torch.float32
    posezoo.lift(long[:300], layout=tracks.layout, image_size=tracks.image_size, model=lifter)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = posezoo.lift(long, layout=tracks.layout, image_size=tracks.image_size, model=lifter)
        times.append(time.perf_counter() - start)
    assert result.poses[0].shape[0] == args.frames
    median = statistics.median(times)
    flops = count_flops(lambda: posezoo.lift(long, layout=tracks.layout, image_size=tracks.image_size, model=lifter))
    rate = max(matmul_gflops("cpu", dtype) for _ in range(5)) * 1e9
    bound = flops / rate
    print(f"{args.model} ({str(dtype).removeprefix('torch.')}): {args.frames} frames, {args.threads} threads: median {median:.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}) -> {args.frames / median:,.0f} frames/s")
    print(f"FLOPs {flops / 1e9:.1f} G ({flops / args.frames / 1e6:.2f} MFLOP/frame); {str(dtype)[6:]} matmul rate "
          f"{rate / 1e9:.0f} GFLOP/s -> FLOP-limited time {bound:.2f} s; measured / limit = {median / bound:.1f}x")


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/lift_throughput.py", main))
