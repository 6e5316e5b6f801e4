"""Drawing lifted poses: an animated 3D skeleton, beside the 2D input when given, as GIF or MP4."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from posezoo._atomic import atomic_path, check_output
from posezoo.errors import InputError


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


def render(poses_3d: np.ndarray, out: str | os.PathLike, layout_name: str = "h36m-17",
           keypoints_2d: np.ndarray | None = None, fps: float = 25.0, step: int = 1,
           title: str = "", size: float = 4.0) -> Path:
    """Write an animation of poses (T, J, 3) (camera frame: x right, y down, z forward) to ``out``.

    ``keypoints_2d`` (T, J, 2|3) pixels adds a 2D panel (joints with confidence 0 are not drawn).
    ``step`` keeps every step-th frame. ``.gif`` uses Pillow; ``.mp4`` needs ffmpeg on PATH.
    The file is written to a temporary name first and renamed, so a failed render leaves nothing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter

    from posezoo.data.layouts import get_layout

    out = check_render_args(out, step, fps)
    poses = np.asarray(poses_3d, dtype=np.float32)[::step]
    if poses.ndim != 3 or poses.shape[-1] != 3 or len(poses) == 0:
        raise InputError(f"expected poses (T, J, 3), got {np.shape(poses_3d)}")
    if not np.isfinite(poses).all():
        frame = int(np.argwhere(~np.isfinite(poses))[0][0]) * step
        raise InputError(f"poses hold NaN/inf (first in frame {frame}); nothing to draw there")
    links = _skeleton_links(get_layout(layout_name))
    panels = 2 if keypoints_2d is not None else 1
    fig = plt.figure(figsize=(size * panels, size))
    ax3 = fig.add_subplot(1, panels, panels, projection="3d")
    # plot with z (depth) as the horizontal-in axis and -y as up, so people stand upright
    view = np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], axis=-1)
    centre = view.reshape(-1, 3).mean(0)
    radius = float(np.abs(view - centre).max()) or 1.0
    for setter, c in zip((ax3.set_xlim, ax3.set_ylim, ax3.set_zlim), centre):
        setter(c - radius, c + radius)
    ax3.set_xlabel("x")
    ax3.set_ylabel("z (depth)")
    ax3.set_zlabel("-y (up)")
    lines3 = [ax3.plot([], [], [], lw=2, color=c)[0] for _, _, c in links]
    lines2 = []
    if keypoints_2d is not None:
        kp = np.asarray(keypoints_2d, dtype=np.float32)[::step]
        ax2 = fig.add_subplot(1, panels, 1)
        ax2.set_xlim(np.nanmin(kp[..., 0]) - 20, np.nanmax(kp[..., 0]) + 20)
        ax2.set_ylim(np.nanmax(kp[..., 1]) + 20, np.nanmin(kp[..., 1]) - 20)  # image y down
        ax2.set_aspect("equal")
        ax2.set_title("2D input")
        lines2 = [ax2.plot([], [], lw=2, color=c)[0] for _, _, c in links]
    fig.suptitle(title)

    def draw(i: int):
        for line, (a, b, _) in zip(lines3, links):
            seg = view[i, [a, b]]
            line.set_data(seg[:, 0], seg[:, 1])
            line.set_3d_properties(seg[:, 2])
        for line, (a, b, _) in zip(lines2, links):
            seg = kp[i, [a, b]]
            visible = kp.shape[-1] < 3 or (seg[:, 2] > 0).all()
            line.set_data(seg[:, 0] if visible else [], seg[:, 1] if visible else [])
        return lines3 + lines2

    animation = FuncAnimation(fig, draw, frames=len(poses), blit=False)
    writer = PillowWriter(fps=fps / step) if out.suffix == ".gif" else FFMpegWriter(fps=fps / step)
    try:
        with atomic_path(out, keep_suffix=True) as tmp:
            animation.save(tmp, writer=writer)  # the writers choose the format by the suffix
    finally:
        plt.close(fig)
    return out
