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


def _read_lifted(path: str, track: int | None) -> tuple:
    """(poses_3d (T', J, 3), keypoints_2d (T', J2, 3) or None, track id, meta) of track ``track``
    (None: the first) of a ``posezoo lift`` .npz over its span, or InputError."""
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
            ids = [int(i) for i in data["track_ids"]]
            if track is not None and track not in ids:
                raise InputError(f"{path} has no track {track}; its tracks: {ids}")
            row = ids.index(track) if track is not None else 0
            # files written before track_spans: every track covers the whole timeline
            start, stop = data["track_spans"][row] if "track_spans" in data.files else (0, data["poses_3d"].shape[1])
            poses = data["poses_3d"][row, start:stop]
            if not np.isfinite(poses).all():
                raise InputError(f"{path}: track {ids[row]}'s poses hold NaN/inf inside its span (first at row "
                                 f"{int(np.argwhere(~np.isfinite(poses))[0][0]) + start})")
            keypoints = data["keypoints_2d"][row, start:stop] if data["keypoints_2d"].size else None
            return poses, keypoints, ids[row], json.loads(str(data["meta_json"]))
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is not a readable .npz of posezoo lift ({exc})") from exc


def run(args: argparse.Namespace) -> int:
    from posezoo.render import check_render_args, render

    poses, keypoints, track, meta = _read_lifted(args.poses, args.track)
    fps = args.fps if args.fps is not None else meta.get("fps") or 25.0
    check_render_args(args.out, args.step, fps)
    render(poses, args.out, meta["layout"], keypoints_2d=keypoints, fps=fps, step=args.step,
           title=f"track {track} ({meta['model']})", units=meta.get("units", "m"))
    print(f"wrote {args.out}")
    return 0
