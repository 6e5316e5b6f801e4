"""Reading users' 2D keypoints: detector outputs to per-person tracks on one frame timeline.

Formats: COCO-style JSON results (MMPose, YOLO-pose), AlphaPose JSON, OpenPose per-frame JSON
folders, numpy ``.npy``/``.npz`` (T, J, 2|3) or (P, T, J, 2|3), and CSV (one row per frame,
x, y[, confidence] per joint). Every reader returns :class:`KeypointTracks`.
"""
from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posezoo.errors import InputError, InputNotFoundError

# Joint counts that name one layout without doubt; 17 could be COCO or H36M and needs a hint.
LAYOUT_BY_COUNT = {26: "halpe-26", 25: "openpose-25", 33: "mediapipe-33"}
MAX_TIMELINE_BYTES = 4 << 30  # tracks x frames x joints x 3 float32 on one timeline; beyond, ids are not frames


@dataclass
class KeypointTracks:
    """People's 2D keypoints over one timeline.

    ``tracks[id]``: (T, J, 3) float32 pixels x, y and confidence; frames where the person was not
    detected are NaN. ``frames``: (T,) the source frame index of each row.
    """

    tracks: dict[int, np.ndarray]
    frames: np.ndarray
    layout: str | None = None
    image_size: tuple[int, int] | None = None  # (width, height) in pixels
    fps: float | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def num_joints(self) -> int:
        return next(iter(self.tracks.values())).shape[1]


class KeypointFileError(InputError):
    """A file that cannot be read as keypoints; the message says what was expected."""


def _layout_from_count(count: int, hint: str | None) -> str | None:
    return hint if hint is not None else LAYOUT_BY_COUNT.get(count)


def _whole(value) -> int | None:
    """``value`` as an int when it is a whole number (an int, or an integral float), else None."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _frame_key(image_id) -> int:
    """Frame index from an image id: an int, or the last number in a file name ('000123.jpg')."""
    if _whole(image_id) is not None:
        return _whole(image_id)
    if isinstance(image_id, float):
        raise KeypointFileError(f"image id {image_id!r} is not a frame number")
    numbers = re.findall(r"\d+", str(image_id))
    if not numbers:
        raise KeypointFileError(f"cannot tell the frame number from image id {image_id!r}")
    return int(numbers[-1])


def _assemble(detections: list[tuple[int, int, np.ndarray]], source: str, layout: str | None) -> KeypointTracks:
    """(frame, track id, (J, 3)) detections -> tracks on the timeline of all frames seen."""
    if not detections:
        raise KeypointFileError(f"{source}: no people found")
    joints = {d[2].shape[0] for d in detections}
    if len(joints) != 1:
        raise KeypointFileError(f"{source}: detections have different joint counts {sorted(joints)}")
    frame_ids = sorted({d[0] for d in detections})
    first, last = frame_ids[0], frame_ids[-1]
    (count,) = joints
    people = len({d[1] for d in detections})
    if (last - first + 1) * people * count * 12 > MAX_TIMELINE_BYTES:
        raise KeypointFileError(f"{source}: frame numbers run from {first} to {last} for {len(frame_ids)} frames "
                                "seen; image ids must be frame numbers (0, 1, 2, ... or names like 000123.jpg)")
    frames = np.arange(first, last + 1)
    tracks: dict[int, np.ndarray] = {}
    for frame, track, points in detections:
        array = tracks.setdefault(track, np.full((len(frames), count, 3), np.nan, np.float32))
        array[frame - first] = points
    return KeypointTracks(tracks=dict(sorted(tracks.items())), frames=frames, layout=layout, source=source)


def _points(values, source: str) -> np.ndarray:
    try:
        flat = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise KeypointFileError(f"{source}: keypoints must be a flat list of numbers [x, y, score, ...]") from None
    if flat.ndim != 1 or flat.size % 3 or flat.size == 0:
        raise KeypointFileError(f"{source}: keypoints must be a flat [x, y, score, ...] list, got {flat.shape}")
    return flat.reshape(-1, 3)


def _track_id(value, source) -> int:
    if _whole(value) is not None:
        return _whole(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise KeypointFileError(f"{source}: track id {value!r} is not a whole number")


def read_coco_json(path: Path, layout: str | None = None) -> KeypointTracks:
    """COCO-style results (MMPose, YOLO-pose, AlphaPose): a list of
    ``{"image_id", "keypoints": [x, y, s] * J, "score", "track_id" | "idx"}``.

    Without track ids, the detections of each frame are numbered by descending score.
    """
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list) or not all(isinstance(d, dict) and "keypoints" in d for d in data):
        raise KeypointFileError(f"{path}: expected a JSON list of detections with 'keypoints' (COCO results format)")
    if not data:
        raise KeypointFileError(f"{path}: no detections (an empty list)")
    per_frame: dict[int, list[dict]] = {}
    for det in data:
        per_frame.setdefault(_frame_key(det.get("image_id", 0)), []).append(det)
    detections = []
    for frame, dets in per_frame.items():
        ranked = sorted(dets, key=lambda d: -float(d.get("score", 0.0)))
        for rank, det in enumerate(ranked):
            track = det.get("track_id", det.get("idx"))
            if isinstance(track, list) and track:  # AlphaPose may give [id]
                track = track[0]
            detections.append((frame, rank if track is None else _track_id(track, path),
                               _points(det["keypoints"], str(path))))
    count = detections[0][2].shape[0]
    guessed = layout or ("coco-17" if count == 17 else LAYOUT_BY_COUNT.get(count))
    return _assemble(detections, str(path), guessed)


def read_openpose_folder(folder: Path, layout: str | None = None) -> KeypointTracks:
    """An OpenPose ``--write_json`` folder: one ``*_keypoints.json`` per frame, ordered by the
    number in the file name."""
    files = sorted(folder.glob("*.json"), key=lambda p: _frame_key(p.stem))
    if not files:
        raise KeypointFileError(f"{folder}: no OpenPose *.json files")
    return _read_openpose_files(files, str(folder), layout)


def _read_openpose_files(files: list[Path], source: str, layout: str | None) -> KeypointTracks:
    """OpenPose frame files ``{"people": [{"person_id", "pose_keypoints_2d": [...]}]}``, in
    frame order; people without an id are numbered in file order."""
    detections = []
    for frame, path in enumerate(files):
        data = json.loads(path.read_text())
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise KeypointFileError(f"{path}: expected an OpenPose frame {{\"people\": [...]}}, "
                                    f"got {type(people if isinstance(data, dict) else data).__name__}")
        for index, person in enumerate(people):
            if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
                raise KeypointFileError(f"{path}: person {index} has no 'pose_keypoints_2d'")
            pid = person.get("person_id", [-1])
            pid = (pid[0] if pid else None) if isinstance(pid, list) else pid
            track = index if pid in (-1, None) else _track_id(pid, path)
            detections.append((frame, track, _points(person["pose_keypoints_2d"], str(path))))
    count = detections[0][2].shape[0] if detections else 25
    return _assemble(detections, source, _layout_from_count(count, layout) or "openpose-25")


def tracks_from_array(array: np.ndarray, source: str, layout: str | None) -> KeypointTracks:
    """Tracks from keypoints (T, J, 2|3) or (P, T, J, 2|3) in pixels (confidence 1 when absent)."""
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise KeypointFileError(f"{source}: keypoints must be numbers, got an array of {array.dtype}")
    array = array.astype(np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (2, 3):
        raise KeypointFileError(f"{source}: expected keypoints (T, J, 2|3) or (P, T, J, 2|3), got {array.shape}")
    if 0 in array.shape:
        raise KeypointFileError(f"{source}: no keypoints (an empty array of shape {array.shape})")
    if array.shape[-1] == 2:
        array = np.concatenate([array, np.ones_like(array[..., :1])], axis=-1)
    tracks = {i: a for i, a in enumerate(array)}
    return KeypointTracks(tracks=tracks, frames=np.arange(array.shape[1]),
                          layout=_layout_from_count(array.shape[2], layout), source=source)


def read_numpy(path: Path, layout: str | None = None) -> KeypointTracks:
    """``.npy`` array, or ``.npz`` with ``keypoints`` (or ``positions``) and optional
    ``image_size`` (w, h), ``fps``, ``layout``."""
    if path.suffix == ".npy":
        return tracks_from_array(np.load(path, allow_pickle=False), str(path), layout)
    with np.load(path, allow_pickle=False) as data:
        key = next((k for k in ("keypoints", "positions", "poses_2d") if k in data.files), None)
        if key is None:
            raise KeypointFileError(f"{path}: no 'keypoints' array (has {data.files})")
        tracks = tracks_from_array(data[key], str(path), layout or (str(data["layout"]) if "layout" in data.files else None))
        if "image_size" in data.files:
            tracks.image_size = _image_size(data["image_size"], f"{path}: image_size")
        if "fps" in data.files:
            tracks.fps = _fps(data["fps"], f"{path}: fps")
    return tracks


def _image_size(value, what: str) -> tuple[int, int]:
    size = np.ravel(np.asarray(value))
    if size.shape != (2,) or not np.issubdtype(size.dtype, np.number) or not np.all(np.isfinite(size)) \
            or np.any(size < 1) or np.any(size != np.round(size)):
        raise KeypointFileError(f"{what} must be (width, height) in whole pixels >= 1, got {np.asarray(value).tolist()!r}")
    return int(size[0]), int(size[1])


def _fps(value, what: str) -> float:
    fps = np.ravel(np.asarray(value))
    if not np.issubdtype(fps.dtype, np.number) or fps.size == 0 or not np.all(fps == fps[0]) \
            or not np.isfinite(fps[0]) or fps[0] <= 0:
        raise KeypointFileError(f"{what} must be one positive frame rate, got {np.asarray(value).tolist()!r}")
    return float(fps[0])


def read_csv(path: Path, layout: str | None = None) -> KeypointTracks:
    """One row per frame with x, y[, confidence] per joint; a header row (any non-numeric first
    row) is skipped. The joint count comes from the column count: 3 values per joint when the
    count divides by 3 and ``layout`` does not say otherwise."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    try:
        table = np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
    except ValueError as exc:
        raise KeypointFileError(f"{path}: non-numeric value in a CSV of keypoints ({exc})") from exc
    if table.ndim != 2 or table.shape[0] == 0:
        raise KeypointFileError(f"{path}: no rows of keypoints")
    width = table.shape[1]
    channels = 3 if width % 3 == 0 else 2 if width % 2 == 0 else None
    if channels is None:
        raise KeypointFileError(f"{path}: {width} columns is not 2 or 3 values per joint")
    return tracks_from_array(table.reshape(len(table), width // channels, channels), str(path), layout)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_keypoints(path: str | Path, layout: str | None = None) -> KeypointTracks:
    """Read any supported keypoint file or OpenPose folder; ``layout`` overrides detection."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"keypoint input not found: {path}")
    if path.is_dir():
        return read_openpose_folder(path, layout)
    suffix = path.suffix.lower()
    readers = {".json": read_coco_json, ".npy": read_numpy, ".npz": read_numpy, ".csv": read_csv}
    if suffix not in readers:
        raise KeypointFileError(f"{path}: unsupported keypoint file type {suffix!r}; "
                                f"use one of {sorted(readers)} or an OpenPose JSON folder")
    try:
        if suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "people" in data:  # a single OpenPose frame
                return _read_openpose_files([path], str(path), layout)
        return readers[suffix](path, layout)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, KeypointFileError):
            raise
        reason = "an empty file" if path.stat().st_size == 0 else str(exc)
        raise KeypointFileError(f"{path} is not a keypoint file of type {suffix}: {reason}") from exc
