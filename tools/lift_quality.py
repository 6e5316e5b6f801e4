#!/usr/bin/env python
"""Plausibility of lifted 3D on real detector output without 3D ground truth: bone-length
consistency and jitter on the real OpenPose tracks of shared/data/treadmill_openpose.npz.

    python tools/lift_quality.py [MODEL ...] [--data treadmill_openpose.npz] [--plot bones.png]

MODEL is an entry name or a posezoo.save folder (e.g. ``work_dirs/x/best``); default: posezoo's
default lifting model. Per model, over every clip of the file (720x720 px, 23.98 fps):

- bone-length coefficient of variation (std / mean over frames, %) of each of the 16 H36M limbs;
  a real person's bones do not change length, so 0% is the ideal. Reported: median over limbs, and
  the median of the leg and of the arm limbs.
- both for the model's own output and after posezoo.lift's refinement (smoothing, rigid bones:
  posezoo/refine.py), which makes the CV 0 by construction;
- jitter: mean acceleration ``|x[t+1] - 2 x[t] + x[t-1]|`` of the root-relative joints, mm/frame^2,
  next to the same statistic of ``--reference`` mocap walking clips resampled to the tracks' frame
  rate (real motion's own acceleration: what a smooth, correct output would show).

Outputs are metres for models trained on metric data; models with normalised output are scaled to
metres from their bone lengths (``posezoo.lift(scale=True)``), which does not change the CV.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import posezoo
from posezoo.data.layouts import convert_keypoints, get_layout
from posezoo.data.readers import read_motion_npz
from posezoo.lifting import DEFAULT_MODEL, Lifter
from posezoo.losses import H36M_LIMBS

DATA = Path(os.environ.get("POSEZOO_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
LEGS = ("hip", "knee", "ankle")
ARMS = ("shoulder", "elbow", "wrist")


def limb_names() -> list[str]:
    joints = get_layout("h36m-17").joints
    return [f"{joints[a]}-{joints[b]}" for a, b in H36M_LIMBS]


def bone_cv(poses: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> coefficient of variation of each H36M limb's length over frames, % (16,)."""
    lengths = torch.linalg.vector_norm(torch.from_numpy(poses[:, [a for a, _ in H36M_LIMBS]]
                                                        - poses[:, [b for _, b in H36M_LIMBS]]), dim=-1).numpy()
    return 100 * lengths.std(0) / lengths.mean(0)


def acceleration_mm(poses: np.ndarray) -> float:
    """Mean joint acceleration of root-relative poses (T, J, 3) in metres -> mm/frame^2."""
    rel = poses - poses[:, :1]
    return float(1000 * np.linalg.norm(np.diff(rel, n=2, axis=0), axis=-1).mean())


def reference_acceleration(path: Path, fps: float, match: str = "walk") -> float:
    """Acceleration (mm/frame^2) of real mocap clips whose name contains ``match``, resampled to ``fps``."""
    motion = read_motion_npz(path)
    values = []
    for i, name in enumerate(motion.clip_names):
        if match in name.lower():
            h36m = convert_keypoints(motion.clip(i).astype(np.float32), motion.layout, "h36m-17")
            t = np.arange(0, len(h36m) - 1, float(motion.fps[i]) / fps)
            j = t.astype(int)
            w = (t - j)[:, None, None]
            values.append(acceleration_mm((1 - w) * h36m[j] + w * h36m[j + 1]))
    if not values:
        raise ValueError(f"no clip of {path} has {match!r} in its name")
    return float(np.mean(values))


def evaluate(model: str, tracks: list[np.ndarray], layout: str, size: tuple[int, int], fps: float,
             refined: bool) -> dict:
    """Lift every track with ``model``: the model's own output (``refined=False``: no smoothing, free
    bone lengths) or posezoo.lift's defaults (smoothing over ~0.3 s, bones at their median length)."""
    lifter = Lifter(model)
    options = {} if refined else {"rigid_bones": False, "smooth": 1}
    lifted = [posezoo.lift(points, layout=layout, image_size=size, model=lifter, scale=True, fps=fps,
                           **options).poses[0] for points in tracks]
    cv = np.stack([bone_cv(p) for p in lifted]).mean(0)
    return {"model": f"{model} ({'posezoo.lift defaults' if refined else 'model only'})", "cv": cv,
            "accel": float(np.mean([acceleration_mm(p) for p in lifted])), "poses": lifted}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL])
    parser.add_argument("--data", type=Path, default=DATA / "treadmill_openpose.npz")
    parser.add_argument("--size", type=int, nargs=2, default=(720, 720), metavar=("W", "H"))
    parser.add_argument("--reference", type=Path, default=DATA / "bandai2.npz",
                        help="mocap file for the reference acceleration (walking clips)")
    parser.add_argument("--plot", type=Path, help="PNG of limb lengths over time, one panel per model")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"no such file: {args.data} (set POSEZOO_DATA or pass --data)")
    motion = read_motion_npz(args.data)
    tracks, fps = [motion.clip(i) for i in range(motion.num_clips)], float(motion.fps[0])
    results = [evaluate(m, tracks, motion.layout.name, tuple(args.size), fps, refined)
               for m in args.models for refined in (False, True)]
    names = limb_names()
    legs = [i for i, n in enumerate(names) if any(k in n for k in LEGS)]
    arms = [i for i, n in enumerate(names) if any(k in n for k in ARMS)]
    ref = reference_acceleration(args.reference, fps) if args.reference.is_file() else None

    table = Table(title=f"{args.data.name}: {len(tracks)} clips, {sum(len(t) for t in tracks)} frames")
    for col in ("model", "bone CV median %", "legs %", "arms %", "accel mm/frame^2"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        cv = r["cv"]
        table.add_row(r["model"], f"{np.median(cv):.1f}", f"{np.median(cv[legs]):.1f}", f"{np.median(cv[arms]):.1f}",
                      f"{r['accel']:.1f}")
    if ref is not None:
        table.add_row(f"mocap walking ({args.reference.name}, at {fps:.2f} fps)", "0", "0", "0", f"{ref:.1f}")
    Console(width=max(120, Console().width)).print(table)
    if args.plot:
        plot(results, names, args.plot)
    return results


def plot(results: list[dict], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
    for ax, r in zip(axes[0], results):
        poses = np.concatenate(r["poses"])
        lengths = np.linalg.norm(poses[:, [a for a, _ in H36M_LIMBS]] - poses[:, [b for _, b in H36M_LIMBS]], axis=-1)
        for i in range(lengths.shape[1]):
            ax.plot(100 * lengths[:, i], lw=0.8, label=names[i])
        ax.set_title(r["model"], fontsize=8)
        ax.set_xlabel("frame (3 clips)")
    axes[0][0].set_ylabel("limb length (cm)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/lift_quality.py", main))
