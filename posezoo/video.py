"""2D keypoints from a video file, a folder of images or a webcam.

Frames are decoded with OpenCV (``cv2``, which mmengine already installs); people are found by
MediaPipe's BlazePose, the optional ``video`` extra (``pip install "posezoo[video]"``): its legacy
pose solution (``model_complexity=1``) whose weights ship inside the wheel, so it runs offline. It
follows one person, the most prominent; frames where it finds nobody are left undetected (NaN),
joints it places outside the image get confidence 0, and :mod:`posezoo.tracking` starts a new
track where the person followed changes. The result is a
:class:`~posezoo.keypoints.KeypointTracks` in the ``mediapipe-33`` layout with the source's image
size and frame rate, so no ``--size`` is needed.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posezoo.errors import InputError, InputNotFoundError
from posezoo.keypoints import KeypointTracks, frame_number, tracks_from_detections

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
LAYOUT = "mediapipe-33"
INSTALL_HINT = 'pip install "posezoo[video]" (MediaPipe\'s offline pose model; Python 3.10 to 3.12)'


@dataclass
class Frames:
    """The decoded frames of one source: ``images`` yields (H, W, 3) uint8 RGB arrays."""

    images: Iterator[np.ndarray]
    image_size: tuple[int, int]  # (width, height) in pixels
    fps: float | None
    source: str
    live: bool = False  # a webcam: Ctrl-C ends the recording
    count: int | None = None  # frames, when the source knows (a webcam does not)


def is_webcam(source: str | os.PathLike | int) -> bool:
    """A webcam index: an int, or a string of digits that names no file."""
    return isinstance(source, int) or (str(source).isdigit() and not Path(source).exists())


def is_video_source(source: str | os.PathLike | int) -> bool:
    """A webcam index, a video file (by suffix), or a folder of images without JSON files."""
    if is_webcam(source):
        return True
    path = Path(source)
    if path.is_dir():
        return not any(path.glob("*.json")) and bool(_images(path))
    return path.suffix.lower() in VIDEO_SUFFIXES


def _images(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: (frame_number(p.stem), p.name))


def open_frames(source: str | os.PathLike | int) -> Frames:
    """Open a video file, a folder of images (in the order of the numbers in their names) or a
    webcam index; the first frame is decoded here, so an unreadable source fails at once."""
    import cv2

    if not is_webcam(source) and not Path(source).exists():
        raise InputNotFoundError(f"video input not found: {source}")
    if not is_webcam(source) and Path(source).is_dir():
        return _image_folder(Path(source))
    capture = cv2.VideoCapture(int(source) if is_webcam(source) else str(source))
    name = f"webcam {int(source)}" if is_webcam(source) else str(source)
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise InputError(f"{name}: cannot read a video frame (not a video OpenCV can decode, or no such camera)")
    fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def images() -> Iterator[np.ndarray]:
        try:
            frame = first
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = capture.read()
                frame = frame if ok else None
        finally:
            capture.release()

    return Frames(images(), (first.shape[1], first.shape[0]), float(fps) if fps > 0 else None, name,
                  live=is_webcam(source), count=count if count > 0 and not is_webcam(source) else None)


def _image_folder(folder: Path) -> Frames:
    import cv2

    files = _images(folder)
    if not files:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) and no keypoint JSON files")

    def read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: cannot read the image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    first = read(files[0])
    size = (first.shape[1], first.shape[0])

    def images() -> Iterator[np.ndarray]:
        yield first
        for path in files[1:]:
            image = read(path)
            if (image.shape[1], image.shape[0]) != size:
                raise InputError(f"{path}: {image.shape[1]} x {image.shape[0]} pixels, but the first image "
                                 f"of the folder has {size[0]} x {size[1]}; one folder is one video")
            yield image

    return Frames(images(), size, None, str(folder), count=len(files))


class FrameSequence:
    """Frames ``indices`` (0 = the first) of a video file or image folder as a sequence of (H, W, 3)
    uint8 RGB arrays, decoded on demand: reading on from the last frame asked for (re-opening the
    source to go back), so one frame is held however long the video; for :func:`posezoo.render.render`,
    which asks for them in order."""

    def __init__(self, source: str | os.PathLike, indices: np.ndarray):
        self.source, self.indices = source, np.asarray(indices)
        self._images: Iterator[np.ndarray] | None = None
        self._next = 0  # the index of the frame self._images yields next
        self._last: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> np.ndarray:
        target = int(self.indices[i])
        if self._last is not None and self._last[0] == target:
            return self._last[1]
        if self._images is None or target < self._next:
            self._images, self._next = open_frames(self.source).images, 0
        for image in self._images:
            self._next += 1
            if self._next - 1 == target:
                self._last = (target, image)
                return image
        raise InputError(f"{self.source}: no frame {target}; the source ends after {self._next} frames")


@contextlib.contextmanager
def _native_stderr_hidden() -> Iterator[None]:
    """Hide what C++ code writes to file descriptor 2: MediaPipe's start-up warnings (Python's
    own errors still propagate)."""
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pose_solution():
    """MediaPipe's legacy pose solution in video mode (landmarks tracked from frame to frame)."""
    try:
        from mediapipe.python.solutions.pose import Pose
    except ImportError as exc:
        raise InputError(f"reading a video needs a 2D pose detector: {INSTALL_HINT} ({exc})") from None
    return Pose(static_image_mode=False, model_complexity=1, min_detection_confidence=0.5)


def _landmarks(found, width: int, height: int) -> np.ndarray:
    """MediaPipe's landmarks -> (33, 3) x, y pixels and visibility; the joints it places outside
    the image (the legs of a half-body shot) are guesses: confidence 0."""
    points = np.array([(p.x * width, p.y * height, p.visibility) for p in found.landmark], np.float32)
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    points[:, 2] = np.where(inside, np.clip(points[:, 2], 0, 1), 0)
    return points


def detect_keypoints(frames: Frames, progress: Callable[[int, int | None], None] | None = None) -> KeypointTracks:
    """Find the person in each frame: tracks (T, 33, 3) of x, y pixels and MediaPipe's landmark
    visibility as the confidence, on the timeline of ``frames`` (0 = the first decoded frame);
    ``progress(frames done, frames.count)`` after each frame."""
    width, height = frames.image_size
    detections: dict[int, list[tuple[np.ndarray, None]]] = {}
    count = 0
    with _native_stderr_hidden():
        pose = _pose_solution()
    with pose:
        try:
            for count, image in enumerate(frames.images, start=1):
                with _native_stderr_hidden() if count == 1 else contextlib.nullcontext():  # the graph starts
                    found = pose.process(image).pose_landmarks
                if found is not None:
                    detections[count - 1] = [(_landmarks(found, width, height), None)]  # no id: tracked
                if progress is not None:
                    progress(count, frames.count)
        except KeyboardInterrupt:
            if not frames.live:
                raise
    if not detections:
        raise InputError(f"{frames.source}: no person found in {count} frame(s)")
    tracks = tracks_from_detections(detections, frames.source, LAYOUT)
    tracks.image_size, tracks.fps = frames.image_size, frames.fps
    return tracks


def read_video(source: str | os.PathLike | int, layout: str | None = None,
               progress: Callable[[int, int | None], None] | None = None) -> KeypointTracks:
    """:func:`detect_keypoints` on :func:`open_frames` ``(source)``; ``layout`` may only confirm
    the detector's ``mediapipe-33``."""
    if layout not in (None, LAYOUT):
        raise InputError(f"{source}: the video detector gives {LAYOUT} keypoints, not {layout}; drop --layout")
    return detect_keypoints(open_frames(source), progress)
