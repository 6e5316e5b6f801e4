"""``posezoo render poses.npz OUT.gif``: draw poses written by ``posezoo lift``."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "render"
HELP = "render lifted poses (.npz from posezoo lift) as an animated skeleton (.gif/.mp4)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("poses", help=".npz written by posezoo lift")
    parser.add_argument("out", help="output .gif or .mp4")
    parser.add_argument("--track", type=int, help="track id (default: the first)")
    parser.add_argument("--step", type=int, default=1, help="draw every step-th frame")
    parser.add_argument("--fps", type=float, help="frame rate (default: the file's, else 25)")


def _read_lifted(path: str) -> tuple:
    """(poses_3d, keypoints_2d, track ids, meta) of a ``posezoo lift`` .npz, or InputError."""
    import json
    import zipfile

    import numpy as np

    from posezoo.errors import InputError, InputNotFoundError

    if not Path(path).is_file():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"poses_3d", "track_ids", "meta_json", "keypoints_2d"} - set(data.files)
            if missing:
                raise InputError(f"{path} has no {', '.join(sorted(missing))}: not written by posezoo lift")
            if not data["track_ids"].size:
                raise InputError(f"{path} holds no tracks")
            poses = data["poses_3d"]
            if not np.isfinite(poses).all():
                raise InputError(f"{path}: poses hold NaN/inf (first at track, frame "
                                 f"{tuple(int(i) for i in np.argwhere(~np.isfinite(poses))[0][:2])})")
            return poses, data["keypoints_2d"], [int(i) for i in data["track_ids"]], json.loads(str(data["meta_json"]))
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is not a readable .npz of posezoo lift ({exc})") from exc


def run(args: argparse.Namespace) -> int:
    from posezoo.errors import InputError
    from posezoo.render import check_render_args, render

    poses, keypoints, ids, meta = _read_lifted(args.poses)
    fps = args.fps if args.fps is not None else meta.get("fps") or 25.0
    check_render_args(args.out, args.step, fps)
    if args.track is not None and args.track not in ids:
        raise InputError(f"{args.poses} has no track {args.track}; its tracks: {ids}")
    track = ids.index(args.track) if args.track is not None else 0
    render(poses[track], args.out, meta["layout"], keypoints_2d=keypoints[track] if keypoints.size else None,
           fps=fps, step=args.step, title=f"track {ids[track]} ({meta['model']})", units=meta.get("units", "m"))
    print(f"wrote {args.out}")
    return 0
