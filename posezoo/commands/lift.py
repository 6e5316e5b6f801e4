"""``posezoo lift INPUT``: 2D keypoints from a detector to 3D poses, optionally rendered."""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

NAME = "lift"
HELP = "lift 2D keypoints (detector JSON, .npy/.npz, .csv) or a video to 3D"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="keypoint file, folder of per-frame JSON files, video (.mp4 .avi .mov "
                                      ".webm), folder of images, or webcam index (0)")
    parser.add_argument("--person", type=_person, metavar="ID|largest",
                        help="lift only this track id, or the person largest in the image for longest")
    parser.add_argument("--model", default=None, help="named model with weights, saved folder or hf-hub: id "
                                                      "(default: the embedded model)")
    parser.add_argument("--layout", default="auto",
                        help="input layout: coco-17, halpe-26, openpose-25, h36m-17, mediapipe-33 or auto")
    parser.add_argument("--size", nargs=2, type=int, metavar=("W", "H"), help="image size in pixels")
    parser.add_argument("--fps", type=float, help="frame rate (for the rendering and the output)")
    parser.add_argument("--out", default="poses.npz", help="output .npz or .json (default poses.npz)")
    parser.add_argument("--render", help="also write an animation (.gif, or .mp4 with ffmpeg)")
    parser.add_argument("--flip", action="store_true", help="flip test-time averaging")
    parser.add_argument("--scale", action="store_true", help="metric scale from bone lengths for normalised outputs")
    parser.add_argument("--max-gap", type=int, default=10, help="longest run of missing frames to interpolate")
    parser.add_argument("--smooth", type=int, default=None, metavar="FRAMES",
                        help="smoothing window (odd; default about 0.3 s at the input's fps; 1: off)")
    parser.add_argument("--free-bones", action="store_true",
                        help="keep the model's per-frame bone lengths (default: each bone at its median length)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="auto (default): bfloat16 on a CPU with native bf16 for models whose bf16 accuracy "
                             "is verified (posezoo info), else float32")


@contextlib.contextmanager
def frames_progress(console) -> Iterator[Callable[[str], Callable[[int, int | None], None]]]:
    """Rich progress bars of frames (done / total, frames/s) on a terminal only: yields
    ``bar(description)``, which adds a bar and returns its ``update(done, total)`` (total None:
    unknown), as :func:`posezoo.video.read_video`'s and :func:`posezoo.lift`'s ``progress`` take it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Rate(ProgressColumn):  # frames over the time since the bar's first report (model loaded)
        def render(self, task) -> Text:
            return Text(f"{task.completed / task.elapsed:,.0f} frames/s" if task.completed and task.elapsed else "")

    def add(description: str) -> Callable[[int, int | None], None]:
        task = bars.add_task(description, total=None, start=False)

        def update(done: int, total: int | None) -> None:
            bars.start_task(task)  # a no-op once started
            bars.update(task, completed=done, total=total)

        return update

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), Rate(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bars:  # none in logs
        yield add


def _person(value: str) -> int | str:
    """``--person``: a track id or ``largest``."""
    if value == "largest":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a track id or 'largest', not {value!r}") from None

def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from posezoo._atomic import check_output
    from posezoo.lifting import DEFAULT_MODEL, lift
    from posezoo.render import check_render_args, render
    from posezoo.video import FrameSequence, is_video_source, is_webcam, read_video

    check_output(args.out, (".npz", ".json"), "--out")  # both outputs checked before any work
    if args.render:
        check_render_args(args.render, fps=args.fps or 25.0)
    console = Console(stderr=True)
    layout = None if args.layout == "auto" else args.layout
    video, name = is_video_source(args.input), Path(args.input).name
    with frames_progress(console) as bar:
        keypoints = read_video(args.input, layout, bar(f"detecting people in {name}")) if video else args.input
        result = lift(keypoints, layout=layout, image_size=tuple(args.size) if args.size else None,
                      model=args.model or DEFAULT_MODEL, flip=args.flip, max_gap=args.max_gap,
                      scale=args.scale, device=args.device, fps=args.fps, smooth=args.smooth,
                      rigid_bones=not args.free_bones, person=args.person, progress=bar(f"lifting {name}"),
                      dtype=args.dtype)
    out = result.save(args.out)
    frames = len(result.frames)
    console.print(f"{len(result.poses)} track(s) x {frames} frames -> {out} "
                  f"({result.units}, {result.frame} frame; model {result.model}, {result.meta['dtype']})")
    if args.render:
        first = sorted(result.poses)[0]  # the --person track when given
        start, stop = result.span(first)
        frames = FrameSequence(args.input, result.frames[start:stop]) if video and not is_webcam(args.input) else None
        render(result.poses[first], args.render, result.layout, keypoints_2d=result.inputs_2d[first],
               fps=result.fps or 25.0, title=f"{name}: track {first}", units=result.units, background=frames)
        console.print(f"rendered track {first} -> {args.render}")
    return 0
