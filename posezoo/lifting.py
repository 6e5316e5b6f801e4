"""Lifting users' 2D keypoints to 3D: any length, any common layout, one call.

``posezoo.lift(keypoints, layout=..., image_size=..., model=...)`` takes a file path, a
:class:`~posezoo.keypoints.KeypointTracks` or an array (T, J, 2|3) / (P, T, J, 2|3) in pixels, and
returns a :class:`LiftResult`: per track, 3D joints in the model's declared units and frame.

Pipeline, per track: fill short gaps -> convert the layout to the model's -> normalise as the
model was trained -> run the model over windows (one forward when T fits; overlapping windows
cross-faded for sequence-to-sequence models; one window per frame for fixed-window models;
the whole sequence for convolutional models) -> optional flip averaging -> optional metric scale.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posezoo import refine
from posezoo._atomic import atomic_path, check_output
from posezoo.errors import InputError, PosezooWarning
from posezoo.keypoints import KeypointTracks, read_keypoints, select_person, track_span
from posezoo.precision import set_dtype
from posezoo.validate import check_device, check_lift_args, check_lift_model, check_poses, check_track

DEFAULT_MODEL = "tcn-s-81f-lift.mocap"
MAX_GAP = 10  # frames interpolated at most; a longer gap is refused
_TENSOR = "_tensor"  # Lifter._forward's key for a model output that is one tensor


@dataclass
class LiftResult:
    """3D poses of each track over its own frames. ``frames``: (T,) the source frame of each row of
    the timeline; ``spans[id]``: the rows [start, stop) the track covers (absent: all T);
    ``poses[id]``: (stop - start, J, 3) float32; ``confidence[id]``: (stop - start, J) the input
    confidence after layout conversion (0 where a frame was interpolated). The saved layout:
    docs/lift_output.md."""

    poses: dict[int, np.ndarray]
    confidence: dict[int, np.ndarray]
    frames: np.ndarray
    joint_names: tuple[str, ...]
    layout: str
    units: str
    frame: str
    model: str
    fps: float | None = None
    inputs_2d: dict[int, np.ndarray] = field(default_factory=dict)  # (T, J, 3) pixels, model layout
    meta: dict[str, Any] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None  # (width, height) pixels of the 2D input, when known
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    extras: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # mesh models: _mesh_outputs, per track

    def span(self, track_id: int) -> tuple[int, int]:
        """The rows [start, stop) of ``frames`` that track ``track_id`` covers."""
        return self.spans.get(track_id, (0, len(self.frames)))

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` or ``.json`` atomically (a temp file renamed into place); refuses a bad
        path or non-finite poses before writing anything. The ``.npz`` stacks the tracks on the
        timeline, NaN outside each track's span; the ``.json`` keeps each track's own rows."""
        path = Path(path)
        ids = sorted(self.poses)
        spans = {i: self.span(i) for i in ids}
        info = {"track_ids": ids, "joint_names": list(self.joint_names), "layout": self.layout,
                "units": self.units, "frame": self.frame, "model": self.model, "fps": self.fps,
                "image_size": list(self.image_size) if self.image_size else None, **self.meta}
        check_output(path, (".npz", ".json"), "lift output")
        if not ids:
            raise InputError(f"lift output {path}: no tracks to write")
        per_track = {"poses_3d": self.poses, "confidence": self.confidence, "keypoints_2d": self.inputs_2d,
                     **self.extras}
        for key in ("poses_3d", *self.extras):
            for i in ids:
                check_poses(per_track[key][i], f"lift output {path}: track {i}'s {key}")
        with atomic_path(path) as tmp:
            if path.suffix == ".json":
                payload = {**info, "frames": self.frames.tolist(), "track_spans": {str(i): list(spans[i]) for i in ids},
                           **{key: {str(i): arrays[i].round(6).tolist() for i in ids}
                              for key, arrays in per_track.items() if arrays}}
                tmp.write_text(json.dumps(payload, allow_nan=False))
            elif path.suffix == ".npz":
                stacked = {key: _on_timeline(arrays, spans, len(self.frames)) if arrays else np.zeros(0, np.float32)
                           for key, arrays in per_track.items()}
                with open(tmp, "wb") as f:
                    np.savez_compressed(
                        f, **stacked, frames=self.frames, track_ids=np.array(ids),
                        track_spans=np.array([spans[i] for i in ids], np.int64),
                        joint_names=np.array(self.joint_names),
                        image_size=np.array(self.image_size or (), dtype=np.int64),
                        meta_json=np.array(json.dumps(info)))
        return path


def _on_timeline(arrays: dict[int, np.ndarray], spans: dict[int, tuple[int, int]], length: int) -> np.ndarray:
    """Per-track arrays (stop - start, ...) -> one (P, length, ...) float32 array in ``spans``' order,
    NaN outside each track's span."""
    shape = next(iter(arrays.values())).shape[1:]
    out = np.full((len(spans), length, *shape), np.nan, np.float32)
    for row, (track_id, (start, stop)) in enumerate(spans.items()):
        out[row, start:stop] = arrays[track_id]
    return out


def fill_gaps(track: np.ndarray, max_gap: int = MAX_GAP,
              frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate missing frames (NaN rows) of a (T, J, 3) track linearly; edges are held.

    Returns the filled track and a (T,) mask of the frames that were filled. A gap longer than
    ``max_gap`` frames raises :class:`~posezoo.errors.InputError` (a ValueError) naming the gap by
    ``frames`` (T,), the source frame of each row (default: the row numbers).
    """
    missing = np.isnan(track).any(axis=(1, 2))
    if missing.all():
        raise InputError("the track has no detected frame")
    runs = _runs(missing)
    too_long = [(a, b) for a, b in runs if b - a > max_gap]
    if too_long:
        a, b = too_long[0]
        first, last = (a, b - 1) if frames is None else (frames[a], frames[b - 1])
        raise InputError(f"frames {first}..{last} ({b - a} frames) are missing, more than the {max_gap} "
                         "frames posezoo interpolates; cut the input there or raise max_gap")
    if not runs:
        return track, missing
    t = np.arange(len(track))
    valid = ~missing
    filled = track.copy()
    flat = filled.reshape(len(track), -1)
    for column in range(flat.shape[1]):
        flat[missing, column] = np.interp(t[missing], t[valid], flat[valid, column])
    return filled, missing


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of ``window`` frames covering ``length`` frames, consecutive windows
    sharing at least ``overlap`` frames; the last window ends at ``length``."""
    if length <= window:
        return [0]
    stride = window - overlap
    starts = list(range(0, length - window, stride))
    return starts + [length - window]


def _blend_weights(window: int, overlap: int) -> np.ndarray:
    """A ramp 0 -> 1 over ``overlap`` frames at each end, so overlapping windows cross-fade."""
    ramp = np.ones(window, dtype=np.float32)
    if overlap:
        rise = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap] = rise
        ramp[-overlap:] = rise[::-1]
    return ramp


class Lifter:
    """A model with the knowledge of how to run it on sequences of any length."""

    def __init__(self, model: str | torch.nn.Module = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32,
                 overlap: int | None = None, dtype: str | torch.dtype | None = None):
        if isinstance(model, (str, os.PathLike)):
            model = load_trained(str(model))
        self.model = set_dtype(model.to(device).eval(), dtype, device)  # "auto": posezoo.precision.auto_dtype
        self.device, self.batch_size = device, batch_size
        backbone = self.model.backbone
        if getattr(backbone, "mode", None) == "window":  # a TCN trained in its single-frame form:
            backbone.mode = "sequence"  # the same weights run dilated over the whole sequence
        self.fixed = getattr(backbone, "num_frames", None)  # one output frame per window of this size
        self.window = self.model.max_frames
        self.overlap = overlap if overlap is not None else (self.window // 4 if self.window else 0)
        self.layout = self.model.meta.get("layout", "h36m-17")  # of the input; the output's may differ
        self.output_layout = self.model.meta.get("output", {}).get("layout", self.layout)
        self.normalisation = self.model.meta.get("input", {}).get("normalisation")

    def _forward(self, clips: torch.Tensor, progress: Callable[[int], None] | None = None,
                 frames: int = 0) -> dict[str, np.ndarray]:
        """clips (N, F, J, C) -> each model output (N, F, ...) float32 (a tensor output under
        ``_TENSOR``), batch by batch; ``progress(k)`` after each batch, k of ``frames`` done."""
        outs, done = [], 0
        for chunk in clips.split(self.batch_size):
            out = self.model(chunk.to(self.device))
            outs.append({k: v.float().cpu() for k, v in (out.items() if isinstance(out, dict) else [(_TENSOR, out)])})
            done += len(chunk)
            if progress is not None:
                progress(frames * done // len(clips))
        return {k: torch.cat([o[k] for o in outs]).numpy() for k in outs[0]}

    @torch.inference_mode()
    def run(self, x: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """x (T, J, C) normalised -> (T, J, 3), or a dict of (T, ...) arrays for a model that returns a
        dict (a mesh head); ``progress(k)`` after each batch, k of the T frames done."""
        seq = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        T = len(seq)
        if self.fixed:  # centre-frame models: one edge-padded window per output frame
            half = self.fixed // 2
            padded = torch.cat([seq[:1].expand(half, -1, -1), seq, seq[-1:].expand(self.fixed - 1 - half, -1, -1)])
            windows = padded.unfold(0, self.fixed, 1).permute(0, 3, 1, 2)  # (T, F, J, C)
            outs = {k: v[:, 0] for k, v in self._forward(windows, progress, T).items()}
        elif self.window is None or T <= self.window:
            outs = {k: v[0] for k, v in self._forward(seq[None], progress, T).items()}
        else:
            starts = window_starts(T, self.window, self.overlap)
            clips = torch.stack([seq[s:s + self.window] for s in starts])
            outs = {k: self._blend(v, starts, T) for k, v in self._forward(clips, progress, T).items()}
        return outs[_TENSOR] if _TENSOR in outs else outs

    def _blend(self, outs: np.ndarray, starts: list[int], T: int) -> np.ndarray:
        """Window outputs (N, window, ...) starting at ``starts`` cross-faded into one (T, ...)."""
        weights = _blend_weights(self.window, self.overlap)
        total = np.zeros((T, *outs.shape[2:]), np.float32)
        norm = np.zeros(T, np.float32)
        for start, out in zip(starts, outs):
            w = weights.copy()
            if start == 0:
                w[: self.overlap] = 1  # nothing to fade from before the first window
            if start + self.window == T:
                w[self.window - self.overlap:] = 1
            total[start:start + self.window] += out * w.reshape(-1, *[1] * (out.ndim - 1))
            norm[start:start + self.window] += w
        return total / norm.reshape(-1, *[1] * (total.ndim - 1))


def load_trained(name: str) -> torch.nn.Module:
    """A model with trained weights: a saved folder, an hf-hub id, or a named entry's weights
    (the tag's, or the entry's first). A name without weights is refused: random weights lift
    nothing."""
    from posezoo.entries import get_entry
    from posezoo.factory import create

    if Path(name).is_dir() or name.startswith("hf-hub:"):
        return create(name)
    entry, _ = get_entry(name)
    if not entry.weights:
        raise InputError(f"{name} has no published weights; pass a trained model folder, an hf-hub: id "
                         "or a named model with weights (posezoo list --pretrained)")
    return create(name, pretrained=True)


def lift(keypoints: str | os.PathLike | KeypointTracks | np.ndarray, layout: str | None = None,
         image_size: tuple[int, int] | None = None, model: str | torch.nn.Module | Lifter = DEFAULT_MODEL,
         flip: bool = False, max_gap: int = MAX_GAP, scale: bool = False, device: str = "cpu",
         fps: float | None = None, rigid_bones: bool = True, smooth: int | None = None,
         progress: Callable[[int, int], None] | None = None, dtype: str | torch.dtype | None = None,
         person: int | str | None = None) -> LiftResult:
    """Lift 2D keypoints in pixels to 3D with ``model``.

    A mesh model (``dstformer-mesh`` created with ``smpl_model_path=`` and ``j_regressor_path=``)
    lifts to its ``kp_3d`` joints in mm and adds each track's SMPL pose, shape and vertices
    (``LiftResult.extras``).

    Args:
        keypoints: a keypoint file or folder, a video, image folder or webcam index (:mod:`posezoo.video`),
            tracks, or an array (T, J, 2|3) or (P, T, J, 2|3).
        layout: the input's keypoint layout (``coco-17``, ``halpe-26``, ``openpose-25``, ``h36m-17``,
            ``mediapipe-33``); detected from the file or joint count when unambiguous.
        image_size: (width, height) in pixels, for models trained on screen coordinates; without it
            those normalise each track by its own bounding square (MotionBERT's crop_scale over the
            whole sequence) and a :class:`~posezoo.errors.PosezooWarning` says so. ``pose-frame``
            models (the default) need none.
        flip: average with the mirrored input's mirrored output (test-time augmentation).
        scale: rescale outputs given in normalised units to metres from bone lengths.
        rigid_bones: give every bone the track's median length (:func:`posezoo.refine.rigid_bones`).
        smooth: Savitzky-Golay window in frames (:func:`posezoo.refine.smooth`); None: about 0.3 s
            at the input's fps (9 frames when it is unknown); 1 turns smoothing off.
        progress: called as ``progress(frames done, total frames)``, over all tracks, as the lift
            advances (the command line's progress bar); None: quiet.
        dtype: ``"bfloat16"``, ``"float32"`` or ``"auto"`` (bf16 where the CPU has it and the weights
            are verified for it: :func:`posezoo.precision.auto_dtype`); None: the model as it is.
        person: lift only this track id, or ``"largest"`` (the person largest in the image for
            longest); None: every track. Each track is lifted over the frames from its first
            detection to its last (``LiftResult.spans``), its gaps up to ``max_gap`` interpolated.
    """
    from posezoo.data.layouts import convert_keypoints, get_layout

    tracks = _as_tracks(keypoints, layout)
    if person is not None:
        tracks = select_person(tracks, person)
    if layout is not None:
        tracks.layout = layout
    if tracks.layout is None:
        raise InputError(f"cannot tell the keypoint layout of {tracks.num_joints} joints "
                         "(17 could be coco-17 or h36m-17): pass layout=")
    size = check_lift_args(image_size or tracks.image_size, fps, max_gap)
    checked = {i: check_track(t, size, f"{tracks.source or 'input'}: track {i}") for i, t in tracks.tracks.items()}
    spans = {i: track_span(t) for i, t in checked.items()}
    start, stop = min(a for a, _ in spans.values()), max(b for _, b in spans.values())  # the timeline kept
    if not isinstance(model, Lifter):
        check_device(device)
    if isinstance(model, Lifter) and dtype is not None:
        raise InputError("dtype= goes to Lifter(..., dtype=) when model is a Lifter")
    lifter = model if isinstance(model, Lifter) else Lifter(model, device=device, dtype=dtype)
    mesh = check_lift_model(lifter.model)
    if mesh and flip:
        raise InputError("flip averaging of SMPL parameters is posezoo.models.mesh.mesh_flip_test; lift a mesh "
                         "model without flip")
    source, target = get_layout(lifter.layout), get_layout(lifter.output_layout)
    result = LiftResult(poses={}, confidence={}, frames=tracks.frames[start:stop], joint_names=target.joints,
                        layout=target.name,
                        units="mm" if mesh else lifter.model.meta.get("output", {}).get("units", "?"),
                        frame=lifter.model.meta.get("output", {}).get("frame", "camera"),
                        model=lifter.model.meta.get("weights") or lifter.model.meta.get("name") or "model",
                        fps=fps or tracks.fps, image_size=size,
                        meta={"input_layout": tracks.layout, "input_joint_names": list(source.joints),
                              "source": tracks.source,
                              "normalisation": _normalisation_used(lifter, size)},
                        spans={i: (a - start, b - start) for i, (a, b) in spans.items()})
    window = smoothing_window(result.fps) if smooth is None else int(smooth)
    result.meta["refine"] = {"rigid_bones": bool(rigid_bones), "smooth_frames": window}
    result.meta["dtype"] = str(lifter.model.compute_dtype or torch.float32).removeprefix("torch.")
    passes, total, work = 1 + flip, sum(b - a for a, b in spans.values()), 0  # work: frames x passes done

    def advance(k: int) -> None:
        progress((work + k) // passes, total)

    report = advance if progress is not None else None
    if progress is not None:
        progress(0, total)
    for track_id, track in checked.items():  # checked before the model is loaded
        a, b = spans[track_id]
        try:
            filled, was_missing = fill_gaps(track[a:b], max_gap, tracks.frames[a:b])
        except InputError as exc:
            raise InputError(f"track {track_id}: {exc}") from None
        if not np.any(filled[..., 2] > 0):
            raise InputError(f"track {track_id}: every confidence is 0; nothing to lift")
        converted = convert_keypoints(filled, tracks.layout, source.name)
        confidence = converted[..., 2].copy()
        confidence[was_missing] = 0
        x = _normalise(converted, size, lifter.normalisation)
        if x.shape[-1] != lifter.model.backbone.dim_in:
            x = x[..., : lifter.model.backbone.dim_in]
        out = lifter.run(x, report)
        if mesh:
            out, smpl = _mesh_outputs(out)
            for key, value in smpl.items():
                result.extras.setdefault(key, {})[track_id] = value
        work += len(x)
        if flip:
            out = (out + target.flip(lifter.run(source.flip(x), report))) / 2
            work += len(x)
        if scale and result.units == "normalised":
            out = out * metric_scale(out, target)
        if lifter.model.meta.get("output", {}).get("root_relative"):
            out = out - out[:, :1]  # the model's contract: the root exactly at 0
        out = refine.smooth(out, window)
        if rigid_bones and target.parents is not None:
            out = refine.rigid_bones(out, target.parents)
        check_poses(out, f"{tracks.source or 'input'}: track {track_id}")
        result.poses[track_id] = out.astype(np.float32)
        result.confidence[track_id] = confidence.astype(np.float32)
        result.inputs_2d[track_id] = converted.astype(np.float32)
    if scale and result.units == "normalised":
        result.units = "metres (scale from bone lengths)"
    return result


def _mesh_outputs(out: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A mesh head's (T, ...) outputs -> its 3D joints ``kp_3d`` (T, 17, 3) mm, and what is saved
    beside them as the model gives it: ``smpl_pose`` (T, 72) axis-angle radians of the 24 SMPL
    joints, ``smpl_betas`` (T, 10) and ``vertices`` (T, V, 3) mm."""
    theta = out["theta"]
    return out["kp_3d"], {"smpl_pose": theta[:, :72], "smpl_betas": theta[:, 72:], "vertices": out["verts"]}


def smoothing_window(fps: float | None, seconds: float = 0.3) -> int:
    """An odd number of frames covering about ``seconds`` at ``fps`` (9 when fps is unknown)."""
    if not fps or not np.isfinite(fps) or fps <= 0:
        return 9
    return max(1, int(round(seconds * fps)) // 2 * 2 + 1)


def _as_tracks(keypoints, layout: str | None) -> KeypointTracks:
    if isinstance(keypoints, KeypointTracks):
        return keypoints
    if isinstance(keypoints, (str, os.PathLike)):
        return read_keypoints(keypoints, layout)
    from posezoo.keypoints import tracks_from_array

    return tracks_from_array(np.asarray(keypoints), "array", layout)


def _normalisation_used(lifter: Lifter, size: tuple[int, int] | None) -> str:
    """What :func:`_normalise` does for ``lifter`` given ``size``: ``pose-frame``, ``screen`` or
    ``crop-scale``; warns when a model trained on screen coordinates gets no image size."""
    if lifter.normalisation == "pose-frame":
        return "pose-frame"
    if size is not None:
        return "screen"
    name = lifter.model.meta.get("weights") or lifter.model.meta.get("name") or "the model"
    warnings.warn(f"no image size: {name} takes screen coordinates ({lifter.normalisation or 'unknown'}), so each "
                  "track is normalised by its own bounding square instead (crop-scale), which changes the "
                  "result; pass image_size=(W, H) (posezoo lift --size W H)", PosezooWarning, stacklevel=3)
    return "crop-scale"


def _normalise(points: np.ndarray, size: tuple[int, int] | None, method: str | None = None) -> np.ndarray:
    """(T, J, 3) pixels + confidence -> the model's input normalisation: ``pose-frame`` (each frame
    on its own, no image size needed), else screen-normalised x, y (with the image size) or
    MotionBERT's crop_scale of the whole track (without); zero-confidence joints -> 0."""
    from posezoo.data.transforms import crop_scale, normalize_pose_frames, normalize_screen_coordinates

    if method == "pose-frame":
        return normalize_pose_frames(points)
    if size is not None:
        out = normalize_screen_coordinates(points, *size)
    else:
        if np.count_nonzero(points[..., 2] > 0) < 4:
            raise InputError("fewer than 4 visible keypoints in the whole track; cannot normalise")
        out = crop_scale(points, (1, 1))
    out = out.astype(np.float32)
    out[points[..., 2] <= 0] = 0
    return out


# Typical adult bone lengths in metres (close to the Human3.6M subjects' average), per H36M-17 link.
H36M_BONES_M = {
    (0, 1): 0.133, (1, 2): 0.454, (2, 3): 0.450, (0, 4): 0.133, (4, 5): 0.454, (5, 6): 0.450,
    (0, 7): 0.234, (7, 8): 0.254, (8, 9): 0.112, (9, 10): 0.115, (8, 11): 0.151, (11, 12): 0.279,
    (12, 13): 0.249, (8, 14): 0.151, (14, 15): 0.279, (15, 16): 0.249,
}


def metric_scale(poses: np.ndarray, layout) -> float:
    """The factor that makes the median total bone length of ``poses`` (T, J, 3) equal the H36M
    mean skeleton's, in metres."""
    if layout.name != "h36m-17":
        raise InputError(f"metric scale recovery knows the h36m-17 skeleton, not {layout.name}")
    pairs = np.array(list(H36M_BONES_M))
    lengths = np.linalg.norm(poses[:, pairs[:, 0]] - poses[:, pairs[:, 1]], axis=-1).sum(-1)
    reference = sum(H36M_BONES_M.values())
    median = float(np.median(lengths))
    if median <= 0:
        raise InputError("degenerate 3D output: zero bone lengths")
    return reference / median
