"""``posezoo render poses.npz OUT.gif``: draw poses written by ``posezoo lift``."""
from __future__ import annotations

import argparse

NAME = "render"
HELP = "render lifted poses (.npz from posezoo lift) as an animated skeleton (.gif/.mp4)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("poses", help=".npz written by posezoo lift")
    parser.add_argument("out", help="output .gif or .mp4")
    parser.add_argument("--track", type=int, help="track id (default: the first)")
    parser.add_argument("--step", type=int, default=1, help="draw every step-th frame")
    parser.add_argument("--fps", type=float, help="frame rate (default: the file's, else 25)")


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from posezoo.render import render

    with np.load(args.poses, allow_pickle=False) as data:
        if "poses_3d" not in data.files:
            raise ValueError(f"{args.poses} has no poses_3d: not written by posezoo lift")
        meta = json.loads(str(data["meta_json"]))
        ids = list(data["track_ids"])
        track = ids.index(args.track) if args.track is not None else 0
        poses = data["poses_3d"][track]
        keypoints = data["keypoints_2d"][track] if data["keypoints_2d"].size else None
    render(poses, args.out, meta["layout"], keypoints_2d=keypoints, fps=args.fps or meta.get("fps") or 25.0,
           step=args.step, title=f"track {ids[track]} ({meta['model']})")
    print(f"wrote {args.out}")
    return 0
