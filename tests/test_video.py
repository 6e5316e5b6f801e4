"""posezoo lift VIDEO: frames decoded by OpenCV, the person found by MediaPipe (the video extra).

The clip is made from a real photograph shipped with matplotlib: Grace Hopper's US Navy portrait
(public domain), 512 x 600 pixels, head to chest.
"""
import sys

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from posezoo.cli import main
from posezoo.errors import InputError
from posezoo.keypoints import read_keypoints
from posezoo.video import FrameSequence, open_frames, read_video

PHOTO = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
NOSE, SHOULDERS, HIPS = 0, [11, 12], [23, 24]  # mediapipe-33


def write_clip(path, frames: int = 8, fps: float = 12.0, fourcc: str = "mp4v", blank: bool = False) -> None:
    """The photograph panned 4 px to the right per frame (or black frames), written by OpenCV."""
    image = np.zeros_like(cv2.imread(str(PHOTO))) if blank else cv2.imread(str(PHOTO))
    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    for t in range(frames):
        pan = np.float32([[1, 0, 4 * t], [0, 1, 0]])
        writer.write(cv2.warpAffine(image, pan, (width, height), borderMode=cv2.BORDER_REPLICATE))
    writer.release()


@pytest.fixture
def mediapipe():
    return pytest.importorskip("mediapipe", reason='the detector comes with pip install "posezoo[video]"')


def test_a_person_found_in_every_frame_of_a_video(tmp_path, mediapipe):
    write_clip(clip := tmp_path / "hopper.mp4")
    calls = []
    tracks = read_video(clip, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(t, 8) for t in range(1, 9)]  # each frame detected, of the 8 the file holds
    assert tracks.layout == "mediapipe-33" and tracks.image_size == (512, 600) and tracks.fps == 12.0
    assert list(tracks.tracks) == [0] and list(tracks.frames) == list(range(8))  # MediaPipe follows one person
    track = tracks.tracks[0]
    assert not np.isnan(track).any(), "a person in every frame"
    y = track[..., 1]
    assert (y[:, NOSE] < y[:, SHOULDERS].min(-1)).all() and (y[:, SHOULDERS].max(-1) < y[:, HIPS].min(-1)).all()
    seen = track[..., 2] > 0.5
    assert seen[:, [NOSE, *SHOULDERS]].all()
    inside = (track[..., 0] >= 0) & (track[..., 0] < 512) & (track[..., 1] >= 0) & (track[..., 1] < 600)
    assert inside[seen].all(), "visible joints lie inside the image"
    assert 270 < track[0, NOSE, 0] < 330 and 170 < track[0, NOSE, 1] < 290  # her face, by eye
    assert 20 < track[-1, NOSE, 0] - track[0, NOSE, 0] < 36  # the 28 px pan, followed


def test_lift_a_video_and_a_folder_of_images_from_the_command_line(tmp_path, mediapipe, capsys):
    write_clip(clip := tmp_path / "hopper.avi", frames=6, fps=10.0, fourcc="MJPG")
    assert main(["lift", str(clip), "--out", str(out := tmp_path / "poses.npz"), "--person", "largest"]) == 0
    with np.load(out) as result:
        assert result["poses_3d"].shape == (1, 6, 17, 3) and np.isfinite(result["poses_3d"]).all()
        assert '"fps": 10.0' in str(result["meta_json"])
    (folder := tmp_path / "frames").mkdir()
    frames = open_frames(clip)
    for t, image in enumerate(frames.images):
        cv2.imwrite(str(folder / f"frame_{t:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    tracks = read_keypoints(folder)
    assert tracks.image_size == (512, 600) and tracks.fps is None and not np.isnan(tracks.tracks[0]).any()


def test_lift_a_video_rendered_over_its_frames(tmp_path, mediapipe):
    from PIL import Image

    write_clip(clip := tmp_path / "hopper.mp4", frames=6)
    assert main(["lift", str(clip), "--out", str(tmp_path / "p.npz"), "--render", str(gif := tmp_path / "h.gif")]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 6
        first = np.asarray(image.convert("L"), dtype=np.float32)
    panel = first[40:-40, 60: first.shape[1] // 2 - 20]  # inside the 2D panel's axes
    assert panel.mean() < 150, "the photograph (dark uniform and backdrop) under the skeleton, not white"


def test_frames_read_back_in_any_order(tmp_path):
    write_clip(clip := tmp_path / "hopper.avi", frames=6, fourcc="MJPG")
    decoded = list(open_frames(clip).images)
    frames = FrameSequence(clip, [2, 3, 5])
    assert len(frames) == 3
    for i, t in [(0, 2), (0, 2), (2, 5), (1, 3), (0, 2)]:  # forward, the same again, and back
        np.testing.assert_array_equal(frames[i], decoded[t])
    with pytest.raises(InputError, match="no frame 9; the source ends after 6 frames"):
        FrameSequence(clip, [9])[0]


def test_no_person_found(tmp_path, mediapipe):
    write_clip(clip := tmp_path / "dark.mp4", frames=3, blank=True)
    with pytest.raises(InputError, match="no person found in 3 frame"):
        read_keypoints(clip)


def test_unreadable_videos_and_a_missing_detector_are_named(tmp_path, monkeypatch):
    (broken := tmp_path / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="broken.mp4: cannot read a video frame"):
        read_keypoints(broken)
    with pytest.raises(InputError, match="webcam 99: cannot read a video frame"):
        read_keypoints("99")
    with pytest.raises(FileNotFoundError, match="video input not found"):
        read_keypoints(tmp_path / "missing.mov")
    write_clip(clip := tmp_path / "ok.mp4", frames=2)
    with pytest.raises(InputError, match="gives mediapipe-33 keypoints, not coco-17"):
        read_keypoints(clip, layout="coco-17")
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions.pose", None)  # as without the extra
    with pytest.raises(InputError, match=r'pip install "posezoo\[video\]"'):
        read_keypoints(clip)
