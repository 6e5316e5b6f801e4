"""Drawing lifted poses: an animated 3D skeleton in its units (metres), beside the 2D input when
given (over the video's frames when they are given), as GIF or MP4.

:func:`pose_figure` builds the figure once and returns it with ``draw(i)``, which shows frame i;
:func:`render` animates it. The 3D axes span the poses' extent over the whole clip with a small
margin, one unit as long on every axis; the 2D panel spans the visible joints (or the whole image
under a video frame). Missing 2D joints (confidence 0, NaN, or OpenPose's (0, 0)) are not drawn.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posezoo._atomic import atomic_path, check_output
from posezoo.errors import InputError

MARGIN = 0.08  # of the largest extent, added on each side of the 3D limits
TICKS = 4  # at most, per axis: labels that never collide at the default size


def _skeleton_links(layout) -> list[tuple[int, int, str]]:
    """(child, parent, colour) per bone: blue for the person's left side, red for the right."""
    colour = {"left": "tab:blue", "right": "tab:red"}
    return [(child, parent, colour.get(layout.joints[child].split("_")[0], "tab:gray"))
            for child, parent in enumerate(layout.parents or ()) if parent >= 0]


def check_render_args(out: str | os.PathLike, step: int = 1, fps: float = 25.0) -> Path:
    """Refuse, before drawing anything, an output :func:`render` cannot write (suffix, folder,
    ffmpeg for .mp4), a ``step`` below 1 or an ``fps`` that is not a positive number."""
    out = check_output(out, (".gif", ".mp4"), "render output")
    if out.suffix.lower() == ".mp4" and shutil.which("ffmpeg") is None:
        raise InputError(f"render output {out}: writing .mp4 needs ffmpeg on PATH; write a .gif instead")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise InputError(f"render step must be a whole number >= 1 (every step-th frame), got {step!r}")
    if not (isinstance(fps, (int, float, np.number)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"render fps must be a positive number, got {fps!r}")
    return out


def visible_2d(keypoints_2d: np.ndarray) -> np.ndarray:
    """(T, J) True where a 2D joint (T, J, 2|3) was detected: finite, confidence > 0 when given, and
    not at (0, 0), where OpenPose puts the joints it did not find."""
    kp = np.asarray(keypoints_2d, dtype=np.float32)
    seen = np.isfinite(kp).all(-1) & ~((kp[..., 0] == 0) & (kp[..., 1] == 0))
    return seen & (kp[..., 2] > 0) if kp.shape[-1] > 2 else seen


def limits_3d(points: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """(3, 2) low/high per axis of points (..., 3): their extent plus ``margin`` of the largest
    extent on each side; an axis with (almost) no extent gets a tenth of the largest."""
    flat = points.reshape(-1, 3)
    lo, hi = flat.min(0), flat.max(0)
    largest = float((hi - lo).max()) or 1.0
    half = np.maximum((hi - lo) / 2, largest / 20) + margin * largest
    centre = (lo + hi) / 2
    return np.stack([centre - half, centre + half], axis=1)


def _check_inputs(poses: np.ndarray, keypoints_2d, background) -> None:
    if poses.ndim != 3 or poses.shape[-1] != 3 or len(poses) == 0:
        raise InputError(f"expected poses (T, J, 3), got {poses.shape}")
    if not np.isfinite(poses).all():
        raise InputError(f"poses hold NaN/inf (first in frame {int(np.argwhere(~np.isfinite(poses))[0][0])}); "
                         "nothing to draw there")
    if keypoints_2d is not None and np.shape(keypoints_2d)[:1] != poses.shape[:1]:
        raise InputError(f"keypoints_2d {np.shape(keypoints_2d)} and poses {poses.shape} differ in frames")
    if background is not None:
        if keypoints_2d is None:
            raise InputError("a background (video frames) needs keypoints_2d to draw over it")
        if len(background) != len(poses):
            raise InputError(f"background has {len(background)} frames, poses {len(poses)}")


def pose_figure(poses_3d: np.ndarray, layout_name: str = "h36m-17", keypoints_2d: np.ndarray | None = None,
                background: Sequence[np.ndarray] | None = None, title: str = "", size: float = 4.0,
                units: str = "m"):
    """The figure of poses (T, J, 3) (camera frame: x right, y down, z forward, in ``units``) and
    ``draw(i) -> artists`` that shows frame i.

    ``keypoints_2d`` (T, J, 2|3) pixels adds a 2D panel; ``background``: the T video frames
    (H, W, 3) uint8 under it (any sequence: a list, an array (T, H, W, 3), a lazy reader).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from posezoo.data.layouts import get_layout

    poses = np.asarray(poses_3d, dtype=np.float32)
    _check_inputs(poses, keypoints_2d, background)
    links = _skeleton_links(get_layout(layout_name))
    panels = 2 if keypoints_2d is not None else 1
    fig = plt.figure(figsize=(size * panels, size))
    fig.suptitle(title)
    ax3 = fig.add_subplot(1, panels, panels, projection="3d")
    view = np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], axis=-1)  # depth in, up = -y: upright
    box = limits_3d(view)
    for setter, (lo, hi) in zip((ax3.set_xlim, ax3.set_ylim, ax3.set_zlim), box):
        setter(lo, hi)
    ax3.set_box_aspect(tuple(box[:, 1] - box[:, 0]))  # one unit as long on every axis
    for axis, label in zip((ax3.xaxis, ax3.yaxis, ax3.zaxis), ("x", "z, depth", "-y, up")):
        axis.set_major_locator(MaxNLocator(TICKS))
        axis.set_label_text(f"{label} ({units})", fontsize=8)
    ax3.tick_params(labelsize=7, pad=0)
    lines3 = [ax3.plot([], [], [], lw=2, color=c)[0] for _, _, c in links]
    lines2, image = [], None
    if keypoints_2d is not None:
        kp = np.asarray(keypoints_2d, dtype=np.float32)
        seen = visible_2d(kp)
        ax2 = fig.add_subplot(1, panels, 1)
        if background is not None:
            height, width = np.shape(background[0])[:2]
            image = ax2.imshow(background[0], extent=(0, width, height, 0))
            ax2.set_xlim(0, width)
            ax2.set_ylim(height, 0)
        else:
            points = kp[..., :2][seen] if seen.any() else np.zeros((1, 2))
            (x0, y0), (x1, y1) = points.min(0), points.max(0)
            pad = 0.05 * max(x1 - x0, y1 - y0, 1.0)
            ax2.set_xlim(x0 - pad, x1 + pad)
            ax2.set_ylim(y1 + pad, y0 - pad)  # image y down
        ax2.set_aspect("equal")
        ax2.set_title("2D input", fontsize=9)
        ax2.set_xlabel("x (px)", fontsize=8)
        ax2.set_ylabel("y (px)", fontsize=8)
        ax2.xaxis.set_major_locator(MaxNLocator(TICKS))
        ax2.yaxis.set_major_locator(MaxNLocator(TICKS))
        ax2.tick_params(labelsize=7)
        lines2 = [ax2.plot([], [], lw=2, color=c)[0] for _, _, c in links]
    fig.tight_layout()

    def draw(i: int) -> list:
        for line, (a, b, _) in zip(lines3, links):
            seg = view[i, [a, b]]
            line.set_data(seg[:, 0], seg[:, 1])
            line.set_3d_properties(seg[:, 2])
        for line, (a, b, _) in zip(lines2, links):
            shown = seen[i, a] and seen[i, b]
            line.set_data(kp[i, [a, b], 0] if shown else [], kp[i, [a, b], 1] if shown else [])
        if image is not None:
            image.set_data(background[i])
        return lines3 + lines2 + ([image] if image is not None else [])

    return fig, draw


def render(poses_3d: np.ndarray, out: str | os.PathLike, layout_name: str = "h36m-17",
           keypoints_2d: np.ndarray | None = None, fps: float = 25.0, step: int = 1,
           title: str = "", size: float = 4.0, background: Sequence[np.ndarray] | None = None,
           units: str = "m") -> Path:
    """Write an animation of poses (T, J, 3) to ``out`` (see :func:`pose_figure`).

    ``step`` keeps every step-th frame (of the poses, the keypoints and the background alike).
    ``.gif`` uses Pillow; ``.mp4`` needs ffmpeg on PATH. The file is written to a temporary name
    first and renamed, so a failed render leaves nothing.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

    out = check_render_args(out, step, fps)
    frames = range(0, len(poses_3d), step)
    fig, draw = pose_figure(poses_3d, layout_name, keypoints_2d, background, title, size, units)
    animation = FuncAnimation(fig, draw, frames=frames, blit=False)
    writer = PillowWriter(fps=fps / step) if out.suffix == ".gif" else FFMpegWriter(fps=fps / step)
    try:
        with atomic_path(out, keep_suffix=True) as tmp:
            animation.save(tmp, writer=writer)  # the writers choose the format by the suffix
    finally:
        plt.close(fig)
    return out
