"""The render (issue 14): units on the axes, equal aspect, limits from the pose's extent, missing
2D joints not drawn and not stretching the panel, the 2D panel over video frames, a GIF written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posezoo.errors import InputError
from posezoo.render import limits_3d, pose_figure, render

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def walk():
    """A real lift of the example (20 frames): poses (T, 17, 3) metres, 2D input (T, 17, 3) pixels."""
    import posezoo

    result = posezoo.lift(ROOT / "examples" / "treadmill_walk_openpose.npz")
    return result.poses[0][:20], result.inputs_2d[0][:20]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def axes_of(fig):
    ax2 = next(a for a in fig.axes if a.name != "3d")
    ax3 = next(a for a in fig.axes if a.name == "3d")
    return ax2, ax3


def test_3d_axes_in_metres_equal_aspect_and_filled_by_the_pose(walk):
    poses, kp = walk
    fig, draw = pose_figure(poses, keypoints_2d=kp)
    draw(0)
    _, ax3 = axes_of(fig)
    assert [ax3.get_xlabel(), ax3.get_ylabel(), ax3.get_zlabel()] == ["x (m)", "z, depth (m)", "-y, up (m)"]
    view = np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], -1).reshape(-1, 3)
    limits = np.array([ax3.get_xlim(), ax3.get_ylim(), ax3.get_zlim()])
    lo, hi = view.min(0), view.max(0)
    largest = (hi - lo).max()
    assert (limits[:, 0] <= lo).all() and (limits[:, 1] >= hi).all()  # the whole pose in view
    assert (lo - limits[:, 0]).max() <= 0.1 * largest and (limits[:, 1] - hi).max() <= 0.1 * largest
    assert 1.3 < largest < 2.0  # ankles to head in metres: the largest axis spans just that
    ranges = limits[:, 1] - limits[:, 0]
    np.testing.assert_allclose(np.array(ax3.get_box_aspect()) / ranges, ax3.get_box_aspect()[0] / ranges[0],
                               rtol=1e-6)  # one metre as long on every axis
    assert all(len(axis.get_major_locator().tick_values(*lim)) <= 6
               for axis, lim in zip((ax3.xaxis, ax3.yaxis, ax3.zaxis), limits))  # few ticks, none colliding


def test_flat_axis_gets_room():
    flat = np.zeros((5, 17, 3), np.float32)
    flat[..., 1] = np.linspace(-1, 1, 17)  # all in one vertical line
    box = limits_3d(np.stack([flat[..., 0], flat[..., 2], -flat[..., 1]], -1))
    assert (box[:, 1] - box[:, 0] >= 0.1).all()


def test_missing_joints_are_not_drawn_and_do_not_stretch_the_2d_panel(walk):
    poses, kp = walk
    kp = kp.copy()
    kp[:, 3] = [0, 0, 0.9]  # right ankle where OpenPose puts a joint it did not find, confident
    kp[:, 6, 2] = 0  # left ankle: confidence 0
    kp[5, 13] = np.nan
    fig, draw = pose_figure(poses, keypoints_2d=kp)
    draw(5)
    ax2, _ = axes_of(fig)
    x0, x1 = sorted(ax2.get_xlim())
    y0, y1 = sorted(ax2.get_ylim())
    assert x0 > 100 and y0 > 40, "the (0, 0) joint must not stretch the panel"
    assert ax2.get_ylim()[0] > ax2.get_ylim()[1]  # image y points down
    assert ax2.get_xlabel() == "x (px)" and ax2.get_aspect() == 1.0
    drawn = [np.column_stack(line.get_data()) for line in ax2.get_lines() if len(line.get_xdata())]
    points = np.concatenate(drawn)
    assert not np.isnan(points).any() and not np.any((points == 0).all(1))
    for missing in (3, 6, 13):  # no bone drawn to a missing joint
        assert not any(np.isclose(points, kp[5, missing, :2]).all(1))
    assert len(drawn) == 16 - 3  # every bone but the two knee-ankle ones and the left elbow-wrist
    assert [a for a in fig.axes if a.name == "3d"][0].get_lines()[0].get_data_3d()[0].size == 2  # 3D all drawn


def test_2d_panel_over_the_video_frames(walk):
    poses, kp = walk
    frames = np.zeros((len(poses), 720, 720, 3), np.uint8)
    frames[7] = 255
    fig, draw = pose_figure(poses, keypoints_2d=kp, background=frames)
    draw(7)
    ax2, _ = axes_of(fig)
    (image,) = ax2.get_images()
    assert image.get_array().mean() == 255  # frame 7's picture under frame 7's skeleton
    assert sorted(ax2.get_xlim()) == [0, 720] and sorted(ax2.get_ylim()) == [0, 720]
    with pytest.raises(InputError, match="background has 3 frames, poses 20"):
        pose_figure(poses, keypoints_2d=kp, background=frames[:3])


def test_gif_written(tmp_path, walk):
    from PIL import Image

    poses, kp = walk
    out = render(poses, tmp_path / "walk.gif", keypoints_2d=kp, fps=24, step=2, title="walk",
                 background=np.full((len(poses), 90, 160, 3), 128, np.uint8))
    with Image.open(out) as gif:
        assert gif.n_frames == 10 and gif.size == (800, 400)
    assert [p.name for p in tmp_path.iterdir()] == ["walk.gif"]
