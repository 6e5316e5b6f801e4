"""Reading users' 2D keypoints: detector outputs to per-person tracks on one frame timeline.

Formats: detector JSON (COCO-style results from MMPose 0.x or YOLO-pose, AlphaPose, MMPose 1.x's
inferencer and demo files, Ultralytics ``to_json()``, OpenPose frames), folders of per-frame JSON
files, numpy ``.npy``/``.npz`` (T, J, 2|3) or (P, T, J, 2|3), CSV (one row per frame, x, y[,
confidence] per joint), and videos, image folders and webcams through :mod:`posezoo.video`.
People without track ids are followed across frames by :mod:`posezoo.tracking`. Every reader
returns :class:`KeypointTracks`.
"""
from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from posezoo.errors import InputError, InputNotFoundError
from posezoo.tracking import prominence, track_people

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


def select_person(tracks: KeypointTracks, person: int | str) -> KeypointTracks:
    """One person's track: id ``person``, or ``"largest"`` for the person largest in the image for
    longest (:func:`posezoo.tracking.prominence`), cut to the frames from its first detection to
    its last (a person who enters late is not padded from the start)."""
    if person == "largest":
        person = max(tracks.tracks, key=lambda i: prominence(tracks.tracks[i]))
    key = None if isinstance(person, bool) else _whole(person)
    if key not in tracks.tracks:
        raise InputError(f"{tracks.source or 'input'}: no person {person!r}; the track ids are "
                         f"{', '.join(map(str, sorted(tracks.tracks)))} (or 'largest')")
    span = slice(*track_span(tracks.tracks[key]))
    return replace(tracks, tracks={key: tracks.tracks[key][span]}, frames=tracks.frames[span])


def track_span(track: np.ndarray) -> tuple[int, int]:
    """Rows [start, stop) of a (T, J, 3) track from its first detected frame to its last (frames
    with any joint not NaN); (0, T) when it has none."""
    seen = np.flatnonzero(~np.isnan(track).all(axis=(1, 2)))
    return (int(seen[0]), int(seen[-1]) + 1) if len(seen) else (0, len(track))


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


def frame_number(image_id) -> int:
    """Frame index from an image id: an int, or the last number in a file name ('000123.jpg')."""
    if _whole(image_id) is not None:
        return _whole(image_id)
    if isinstance(image_id, float):
        raise KeypointFileError(f"image id {image_id!r} is not a frame number")
    numbers = re.findall(r"\d+", str(image_id))
    if not numbers:
        raise KeypointFileError(f"cannot tell the frame number from image id {image_id!r}")
    return int(numbers[-1])


def _guess_layout(count: int, hint: str | None) -> str | None:
    """``hint``, else the layout a detector's JSON of ``count`` joints is in (17: COCO's)."""
    return _layout_from_count(count, hint) or ("coco-17" if count == 17 else None)


def _assemble(detections: list[tuple[int, int, np.ndarray]], source: str, layout: str | None) -> KeypointTracks:
    """(frame, track id, (J, 3)) detections -> tracks on the timeline of all frames seen."""
    frame_ids = sorted({d[0] for d in detections})
    first, last = frame_ids[0], frame_ids[-1]
    count = detections[0][2].shape[0]
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


def tracks_from_detections(frames: dict[int, list[tuple[np.ndarray, int | None]]], source: str,
                           layout: str | None) -> KeypointTracks:
    """``{frame: [((J, 3) points, track id or None), ...]}`` -> tracks: by the ids when every
    detection has one, else followed across frames by :func:`posezoo.tracking.track_people`; the
    layout is ``layout``, else guessed from the joint count (:func:`_guess_layout`)."""
    detections = [(frame, track, points) for frame, found in frames.items() for points, track in found]
    if not detections:
        raise KeypointFileError(f"{source}: no people found")
    joints = {d[2].shape[0] for d in detections}
    if len(joints) != 1:
        raise KeypointFileError(f"{source}: detections have different joint counts {sorted(joints)}")
    if any(track is None for _, track, _ in detections):
        detections = track_people({frame: [points for points, _ in found] for frame, found in frames.items()})
    return _assemble(detections, source, _guess_layout(joints.pop(), layout))


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


def _columns(values: dict, names: tuple[str, ...], source: str, what: str) -> np.ndarray:
    """Equal-length lists of numbers ``values[name]`` stacked as columns (J, len(names))."""
    try:
        table = np.stack([np.asarray(values[name], dtype=np.float32) for name in names], axis=-1)
    except (KeyError, TypeError, ValueError):
        raise KeypointFileError(f"{source}: {what} must hold equal-length lists of numbers "
                                f"{', '.join(names)}") from None
    if table.ndim != 2 or len(table) == 0:
        raise KeypointFileError(f"{source}: {what} must hold equal-length lists of numbers {', '.join(names)}")
    return table


def _ultralytics_points(det: dict, source: str) -> np.ndarray:
    """Ultralytics ``Results.summary()`` / ``to_json()``: ``"keypoints": {"x": [...], "y": [...],
    "visible": [...]}`` in pixels (``visible`` absent: confidence 1)."""
    keypoints = det["keypoints"]
    xy = _columns(keypoints, ("x", "y"), source, "Ultralytics keypoints")
    visible = _columns(keypoints, ("visible",), source, "Ultralytics keypoints") if "visible" in keypoints \
        else np.ones((len(xy), 1), np.float32)
    box = det.get("box")
    if isinstance(box, dict) and all(isinstance(box.get(k), (int, float)) and 0 <= box[k] <= 1 for k in ("x2", "y2")):
        raise KeypointFileError(f"{source}: Ultralytics coordinates normalised to [0, 1]; write them in pixels "
                                "(to_json(normalize=False), the default)")
    if len(visible) != len(xy):
        raise KeypointFileError(f"{source}: Ultralytics keypoints have {len(xy)} x, y but {len(visible)} visible")
    return np.concatenate([xy, visible], axis=-1)


def _mmpose_points(det: dict, source: str) -> np.ndarray:
    """MMPose 1.x: ``"keypoints": [[x, y], ...]`` and ``"keypoint_scores": [...]``; scores are
    clipped to [0, 1] (RTMPose's SimCC scores exceed 1)."""
    try:
        xy = np.asarray(det["keypoints"], dtype=np.float32)
        scores = np.asarray(det["keypoint_scores"], dtype=np.float32)
    except (TypeError, ValueError):
        raise KeypointFileError(f"{source}: MMPose keypoints must be [[x, y], ...] with a list of "
                                "keypoint_scores") from None
    if xy.ndim != 2 or xy.shape[-1] != 2 or len(xy) == 0 or scores.shape != (len(xy),):
        raise KeypointFileError(f"{source}: MMPose keypoints must be [[x, y], ...] (J, 2) with J keypoint_scores, "
                                f"got {xy.shape} and {scores.shape}")
    return np.concatenate([xy, np.clip(scores, 0, 1)[:, None]], axis=-1)


def _instance(det, source: str) -> tuple[np.ndarray, int | None]:
    """One detected person: (J, 3) points and the track id (None when the detector gave none)."""
    if not isinstance(det, dict) or "keypoints" not in det:
        raise KeypointFileError(f"{source}: a detection without 'keypoints' ({type(det).__name__}); "
                                "was the detector a pose model?")
    if isinstance(det["keypoints"], dict):
        points = _ultralytics_points(det, source)
    elif "keypoint_scores" in det:
        points = _mmpose_points(det, source)
    else:
        points = _points(det["keypoints"], source)
    track = det.get("track_id", det.get("idx"))
    if isinstance(track, list):  # AlphaPose may give [id]
        track = track[0] if track else None
    return points, None if track is None else _track_id(track, source)


def _openpose_people(data: dict, source: str) -> list[tuple[np.ndarray, int | None]]:
    """An OpenPose frame ``{"people": [{"person_id", "pose_keypoints_2d": [...]}]}``; its
    person_id is -1 unless OpenPose tracked the people."""
    people = data["people"]
    if not isinstance(people, list):
        raise KeypointFileError(f"{source}: expected an OpenPose frame {{\"people\": [...]}}, "
                                f"got {type(people).__name__}")
    found = []
    for index, person in enumerate(people):
        if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
            raise KeypointFileError(f"{source}: person {index} has no 'pose_keypoints_2d'")
        pid = person.get("person_id", [-1])
        pid = (pid[0] if pid else None) if isinstance(pid, list) else pid
        track = None if pid in (-1, None) else _track_id(pid, source)
        found.append((_points(person["pose_keypoints_2d"], source), track))
    return found


JSON_FORMATS = ("COCO results format [{\"image_id\", \"keypoints\": [x, y, score, ...]}], AlphaPose, "
                "MMPose 1.x ([{\"frame_id\", \"instances\"}], [{\"keypoints\", \"keypoint_scores\"}] or "
                "{\"instance_info\"}), Ultralytics to_json() or an OpenPose frame {\"people\"}")


def _json_frames(data, source: str) -> dict[int, list[tuple[np.ndarray, int | None]]]:
    """The detections of each frame in any supported JSON layout: ``{frame: [(points, id), ...]}``.

    A list of detections is grouped by ``image_id`` (one frame when there is none: MMPose's and
    Ultralytics' per-image files); a list of lists holds one list of detections per frame."""
    if isinstance(data, dict) and "people" in data:
        return {0: _openpose_people(data, source)}
    if isinstance(data, dict):
        data = data.get("instance_info", data.get("annotations", data))  # MMPose's demo; a COCO file
    if not isinstance(data, list):
        raise KeypointFileError(f"{source}: expected {JSON_FORMATS}")
    if not data:
        raise KeypointFileError(f"{source}: no detections (an empty list)")
    if all(isinstance(d, dict) and "instances" in d for d in data):  # MMPose video: per-frame dicts
        return {frame_number(d.get("frame_id", i)): _frame_list(d["instances"], source) for i, d in enumerate(data)}
    if all(isinstance(d, list) for d in data):
        return {frame: _frame_list(found, source) for frame, found in enumerate(data)}
    if not all(isinstance(d, dict) and "keypoints" in d for d in data):
        raise KeypointFileError(f"{source}: expected {JSON_FORMATS}")
    frames: dict[int, list[tuple[np.ndarray, int | None]]] = {}
    for det in data:
        frames.setdefault(frame_number(det.get("image_id", 0)), []).append(_instance(det, source))
    return frames


def _frame_list(found, source: str) -> list[tuple[np.ndarray, int | None]]:
    if not isinstance(found, list):
        raise KeypointFileError(f"{source}: a frame's detections must be a list, got {type(found).__name__}")
    return [_instance(det, source) for det in found]


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = "an empty file" if path.stat().st_size == 0 else str(exc)
        raise KeypointFileError(f"{path} is not a keypoint file of type .json: {reason}") from None


def read_json(path: Path, layout: str | None = None) -> KeypointTracks:
    """Detections in any supported JSON (see :data:`JSON_FORMATS`); people without track ids are
    followed across frames (:mod:`posezoo.tracking`)."""
    frames = _json_frames(_load_json(path), str(path))
    return tracks_from_detections(frames, str(path), layout)


def read_json_folder(folder: Path, layout: str | None = None) -> KeypointTracks:
    """One JSON file per frame (OpenPose ``--write_json``, MMPose's ``pred_out_dir``, Ultralytics
    per image), in the order of the numbers in their names."""
    files = sorted(folder.glob("*.json"), key=lambda p: (frame_number(p.stem), p.name))
    if not files:
        raise KeypointFileError(f"{folder}: no per-frame *.json files and no images")
    frames = {}
    for frame, path in enumerate(files):
        found = _json_frames(_load_json(path), str(path))
        if len(found) != 1:
            raise KeypointFileError(f"{path}: holds {len(found)} frames; a folder holds one JSON file per frame")
        frames[frame] = next(iter(found.values()))
    return tracks_from_detections(frames, str(folder), layout)


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
    row) is skipped. The joint count is ``layout``'s; without one, the column count decides: x, y
    per joint when that gives a known layout's joint count and x, y, confidence does not (66
    columns: 33 joints), else 3 values per joint when they divide it."""
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
    channels = _csv_channels(table.shape[1], layout, path)
    return tracks_from_array(table.reshape(len(table), -1, channels), str(path), layout)


def _csv_channels(width: int, layout: str | None, path: Path) -> int:
    """2 (x, y) or 3 (x, y, confidence) values per joint in a row of ``width`` numbers."""
    if layout is not None:
        from posezoo.data.layouts import get_layout

        try:
            joints = get_layout(layout).num_joints
        except KeyError as exc:
            raise KeypointFileError(f"{path}: {exc.args[0]}") from None
        if width not in (2 * joints, 3 * joints):
            raise KeypointFileError(f"{path}: {width} columns is not x, y or x, y, confidence for the {joints} "
                                    f"joints of {layout} ({2 * joints} or {3 * joints} columns)")
        return width // joints
    known = {17, *LAYOUT_BY_COUNT}
    fits = [c for c in (3, 2) if width % c == 0]
    if not fits:
        raise KeypointFileError(f"{path}: {width} columns is not 2 or 3 values per joint")
    return next((c for c in fits if width // c in known), fits[0])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_keypoints(path: str | Path | int, layout: str | None = None) -> KeypointTracks:
    """Read any supported keypoint file, per-frame JSON folder, video, image folder or webcam
    index (:mod:`posezoo.video`); ``layout`` overrides detection."""
    from posezoo.video import is_video_source, read_video

    if is_video_source(path):
        return read_video(path, layout)
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"keypoint input not found: {path}")
    if path.is_dir():
        return read_json_folder(path, layout)
    suffix = path.suffix.lower()
    readers = {".json": read_json, ".npy": read_numpy, ".npz": read_numpy, ".csv": read_csv}
    if suffix not in readers:
        raise KeypointFileError(f"{path}: unsupported keypoint file type {suffix!r}; use one of {sorted(readers)}, "
                                "a folder of per-frame JSON files, a video or a folder of images")
    try:
        return readers[suffix](path, layout)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, KeypointFileError):
            raise
        reason = "an empty file" if path.stat().st_size == 0 else str(exc)
        raise KeypointFileError(f"{path} is not a keypoint file of type {suffix}: {reason}") from exc
