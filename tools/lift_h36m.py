#!/usr/bin/env python
"""Score ``posezoo.lift`` end to end on Human3.6M-format files: the protocol of the issues' real
benchmark (test subjects S9 and S11, all four cameras, every frame, 17 joints, root-relative
MPJPE / P-MPJPE in mm), through exactly what a user calls.

    python tools/lift_h36m.py H36M_FOLDER [--2d gt] [--model NAME ...] [--flip] [--out results.json]
    python tools/lift_h36m.py PROXY_FOLDER --make-proxy [--data ../shared/data]

H36M_FOLDER holds VideoPose3D's ``data_3d_h36m.npz`` and ``data_2d_h36m_<2d>.npz``, and mmpose's
``cameras.pkl`` if you have it (without: Human3.6M's published calibration; docs/training.md,
"Human3.6M as users hold it"). ``--make-proxy`` first writes
such files from the shared mocap clips that the default lifter's recipe holds out (``auto`` split),
their joints on Human3.6M's definitions, at 50 fps, seen by four Human3.6M-like cameras: ground-truth
2D (``--2d gt``), Stacked-Hourglass-like 2D (``--2d sh_like``: detector errors, 16 joints, no
neck/nose) and ground truth with the thorax, spine and head where COCO-like layouts put them
(``--2d gt_face``: mid-shoulders, mid-eyes). They are a stand-in, not Human3.6M: other people,
other motions.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from posezoo.data import h36m_files  # noqa: E402
from posezoo.evaluation.lift_eval import h36m_videos, score_lift  # noqa: E402
from posezoo.lifting import DEFAULT_MODEL  # noqa: E402

DATA = Path(os.environ.get("POSEZOO_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
MOCAP = ("bandai1.npz", "bandai2.npz", "cmu.npz", "deepmimic.npz")


def make_proxy(folder: Path, data: Path, max_frames: int) -> None:
    subjects = h36m_files.mocap_subjects([data / f for f in MOCAP], max_frames=max_frames, split_rule="auto",
                                         retarget=True)
    cameras = h36m_files.h36m_cameras(subjects)
    h36m_files.write_videopose3d_files(folder, subjects, cameras)
    h36m_files.write_detected_2d(folder, subjects, cameras)
    h36m_files.write_face_points_2d(folder, subjects, cameras)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder with data_3d_h36m.npz, data_2d_h36m_<2d>.npz "
                        "[, cameras.pkl; else Human3.6M's published calibration]")
    parser.add_argument("--2d", dest="source", default="gt", help="which data_2d_h36m_<2d>.npz (default gt)")
    parser.add_argument("--model", nargs="+", default=[DEFAULT_MODEL], help="entry names or saved folders")
    parser.add_argument("--flip", action="store_true", help="posezoo.lift(flip=True)")
    parser.add_argument("--dtype", default=None, help="posezoo.lift(dtype=...): auto, float32, bfloat16")
    parser.add_argument("--raw", action="store_true", help="no smoothing, free bones: the model's own output")
    parser.add_argument("--fps", type=float, default=50.0, help="frame rate of the files (Human3.6M: 50)")
    parser.add_argument("--subjects", nargs="+", default=None, help="default: S9 S11")
    parser.add_argument("--make-proxy", action="store_true", help="write the mocap stand-in into FOLDER first")
    parser.add_argument("--data", type=Path, default=DATA, help="shared mocap folder (for --make-proxy)")
    parser.add_argument("--max-frames", type=int, default=1500, help="per proxy clip (for --make-proxy)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)

    console = Console()
    if args.make_proxy:
        make_proxy(args.folder, args.data, args.max_frames)
        console.print(f"wrote the mocap stand-in to {args.folder}")
    videos, missing = h36m_videos(args.folder / "data_3d_h36m.npz", args.folder / f"data_2d_h36m_{args.source}.npz",
                                  subjects=args.subjects)
    if missing:
        console.print(f"[yellow]no 2D for {len(missing)} views, skipped: {', '.join(missing[:6])}"
                      f"{' ...' if len(missing) > 6 else ''}")
    refine = dict(smooth=1, rigid_bones=False) if args.raw else {}
    results = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        for model in args.model:
            task = bar.add_task(f"lifting with {model}", total=sum(len(v.keypoints) for v in videos))
            results[model] = score_lift(videos, model, fps=args.fps, flip=args.flip, dtype=args.dtype,
                                        progress=lambda done, _total, t=task: bar.update(t, completed=done), **refine)
    table = Table(title=f"posezoo.lift on {args.folder.name} ({args.source} 2D, "
                        f"{len(videos)} videos, {results[args.model[0]]['frames']} frames)")
    for column in ("model", "MPJPE (mm)", "P-MPJPE (mm)", "MPJPE action avg", "P-MPJPE action avg"):
        table.add_column(column)
    for model, r in results.items():
        table.add_row(model, f"{r['mpjpe']:.1f}", f"{r['p_mpjpe']:.1f}", f"{r['action_avg']['mpjpe']:.1f}",
                      f"{r['action_avg']['p_mpjpe']:.1f}")
    console.print(table)
    if args.out:
        settings = dict(source=args.source, flip=args.flip, dtype=args.dtype, raw=args.raw, fps=args.fps,
                        missing_views=missing, command="python tools/lift_h36m.py " + " ".join(sys.argv[1:]))
        args.out.write_text(json.dumps(dict(settings, results=results), indent=1))
    return 0


if __name__ == "__main__":
    from posezoo.cli import run_script

    sys.exit(run_script("tools/lift_h36m.py", main))
