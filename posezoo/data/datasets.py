"""Map-style datasets for lifting and action recognition, registered in ``DATASETS``.

Every item is a dict that mmengine's Runner batches with ``default_collate``:

* lifting (:class:`MocapLiftDataset`, :class:`MotionBERTH36MDataset`, :class:`VideoPose3DH36MDataset`):
  ``inputs`` float32 (T, J, 3) = x, y in MotionBERT's normalised screen coordinates
  (``pixels / w * 2 - [1, h / w]``) and a confidence (missing joints are (0, 0, 0));
  ``target`` float32 (T, J, 3) = 3D joints in the camera frame (x right, y down, z forward),
  root-relative (joint 0), metres; ``meta`` = dict of plain values (names, frame numbers, camera).
* action (:class:`ActionClipDataset`, :class:`NTUActionDataset`): ``inputs`` float32 (M, T, J, 3),
  ``label`` int, ``meta``.

Randomness: test items are a pure function of (seed, index). Training items draw from a generator
seeded with (seed, index, a number from numpy's global generator), so mmengine's ``randomness``
seed (which seeds numpy in every worker) makes runs repeatable while epochs differ.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from posezoo.data import transforms as T
from posezoo.data.cameras import Camera, sample_camera
from posezoo.data.layouts import convert_keypoints, get_conversion, get_layout
from posezoo.data.readers import (H36M_32_TO_17, H36M_CAMERAS, H36M_RESOLUTION, DataFormatError,
                                  read_h36m_cameras, read_motion_npz, read_motionbert_h36m,
                                  read_pyskl, read_videopose3d_2d, read_videopose3d_3d)
from posezoo.registry import DATASETS

SPLITS = ("train", "test")


# --- splits -----------------------------------------------------------------------------------------

def _split_prefix(name: str) -> str | None:
    return next((s for s in SPLITS if name.startswith(f"{s}_")), None)


def _split_number(name: str, test_every: int) -> str | None:
    m = re.search(r"(\d+)$", name)
    return None if m is None else ("test" if int(m.group(1)) % test_every == 0 else "train")


def _split_hash(name: str, test_every: int) -> str:
    return "test" if zlib.crc32(name.encode()) % test_every == 0 else "train"


def clip_split(names, rule: str = "auto", test_every: int = 5) -> list[str]:
    """'train' / 'test' for each clip name, by clip (never by frame).

    Rules: ``prefix`` (names start with ``train_`` / ``test_``, as in cmu.npz), ``number`` (the
    trailing clip number; number % test_every == 0 is test: Bandai's ``..._001``), ``hash``
    (crc32 of the name % test_every == 0: stable, about 1 / test_every of the clips), ``auto``
    (prefix if every name has one, else hash). Bandai-1 numbers most clips ``_001``, so ``number``
    suits Bandai-2 only.
    """
    names = [str(n) for n in names]
    if rule == "auto":
        if all(_split_prefix(n) for n in names):
            rule = "prefix"
        else:
            rule = "hash"
    if rule == "prefix":
        out = [_split_prefix(n) for n in names]
    elif rule == "number":
        out = [_split_number(n, test_every) for n in names]
    elif rule == "hash":
        out = [_split_hash(n, test_every) for n in names]
    else:
        raise ValueError(f"split_rule must be 'auto', 'prefix', 'number' or 'hash', got {rule!r}")
    bad = [n for n, s in zip(names, out) if s is None]
    if bad:
        raise ValueError(f"split_rule {rule!r} does not apply to clips {bad[:5]}")
    return out


def _item_rng(seed: int, index: int, train: bool) -> np.random.Generator:
    if train:
        return np.random.default_rng([seed, index, int(np.random.randint(2 ** 31))])
    return np.random.default_rng([seed, index])


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# --- projection of mocap -------------------------------------------------------------------------------

def project_clip(world: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Project a Y-up world clip (T, J, 3) metres with ``camera``.

    Returns ``inputs`` (T, J, 3) float32 = normalised screen x, y and confidence 1 for joints in
    front of the camera and inside the image (others (0, 0, 0)), and the camera-frame points
    (T, J, 3) float64 metres.
    """
    points = camera.world_to_camera(world.astype(np.float64))
    pixels = camera.project(points)
    visible = (points[..., 2] > 1e-3) & np.all((pixels >= 0) & (pixels <= [camera.w, camera.h]), axis=-1)
    inputs = np.concatenate([T.normalize_screen_coordinates(pixels, camera.w, camera.h),
                             np.ones(pixels.shape[:-1] + (1,))], axis=-1)
    return (inputs * visible[..., None]).astype(np.float32), points


class _MocapClips:
    """Clips of shared mocap npz files in one output layout, split by clip, optionally resampled
    to ``fps``; converted clips are cached (float32, (frames, J, 3), metres, Y up)."""

    def _load_clips(self, files, layout_out: str, split: str, split_rule: str, test_every: int,
                    fps: float | None) -> None:
        _check_split(split)
        if isinstance(files, (str, Path)):
            files = [files]
        if not files:
            raise ValueError("no mocap files given")
        self.layout = get_layout(layout_out)
        self.fps = fps
        self.files = [read_motion_npz(f) for f in files]
        for f in self.files:
            if f.is_2d:
                raise DataFormatError(f"{f.path} holds 2D detections; mocap datasets need 3D positions")
            get_conversion(f.layout.name, layout_out)  # fail now if there is no conversion
        self.clips = []  # (file index, clip index)
        for fi, f in enumerate(self.files):
            for ci, s in enumerate(clip_split(f.clip_names, split_rule, test_every)):
                if s == split:
                    self.clips.append((fi, ci))
        if not self.clips:
            raise ValueError(f"split {split!r} of {[str(f.path) for f in self.files]} is empty")
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def clip_length(self, fi: int, ci: int) -> int:
        f = self.files[fi]
        n = f.clip_length(ci)
        return n if self.fps is None else len(T.resample_fps(n, float(f.fps[ci]), self.fps))

    def clip_array(self, fi: int, ci: int) -> np.ndarray:
        """Clip ``ci`` of file ``fi`` in the output layout: (frames, J, 3) float32 metres, Y up."""
        key = (fi, ci)
        if key not in self._cache:
            f = self.files[fi]
            clip = convert_keypoints(f.clip(ci).astype(np.float32), f.layout.name, self.layout.name)
            if self.fps is not None:
                clip = T.interpolate_frames(clip, T.resample_fps(len(clip), float(f.fps[ci]), self.fps))
            self._cache[key] = np.ascontiguousarray(clip, dtype=np.float32)
        return self._cache[key]

    def clip_meta(self, fi: int, ci: int) -> dict:
        f = self.files[fi]
        return dict(clip=f.clip_names[ci], source=f.path.name,
                    fps=float(self.fps if self.fps is not None else f.fps[ci]))


def _centre(world: np.ndarray) -> tuple[np.ndarray, float]:
    """Move the clip's mean root (joint 0) to x = z = 0 (height kept); return it and the largest
    horizontal root distance from there (metres)."""
    root = world[:, 0]
    offset = np.array([root[:, 0].mean(), 0.0, root[:, 2].mean()], dtype=world.dtype)
    world = world - offset
    return world, float(np.linalg.norm(world[:, 0, [0, 2]], axis=-1).max())


@DATASETS.register_module()
class MocapLiftDataset(_MocapClips):
    """2D -> 3D lifting samples from the shared mocap npz files, projected by virtual cameras.

    Each item covers ``clip_len`` frames of one clip: windows every ``stride`` frames (default 81
    for train, ``clip_len`` for test); a clip shorter than ``clip_len`` gives one item resampled to
    ``clip_len`` frames (MotionBERT's resample: random for train, even for test). Per item the
    window is centred horizontally, a camera is drawn (:func:`posezoo.data.cameras.sample_camera`
    with ``cameras`` overrides; the distance grows with the subject's travel), and the joints are
    projected.

    Item: ``inputs`` float32 (T, J, 3) normalised screen x, y + confidence (1 if in the image);
    ``target`` float32 (T, J, 3) camera frame, root-relative, metres; ``meta`` dict: clip, source,
    start (-1 for a resampled clip), frames, fps, flipped, and the camera (fx, fy, cx, cy, width,
    height, k1-k3, p1, p2, yaw, elevation, distance).

    Args:
        files: shared mocap npz paths (bandai1/2, cmu, deepmimic).
        layout_out: output layout (each file's layout must convert to it).
        split, split_rule, test_every: see :func:`clip_split` (split by clip, never by frame).
        cameras: camera ranges, see :data:`posezoo.data.cameras.DEFAULT_CAMERAS`.
        seed: test items are fixed per (seed, index).
        flip: random left/right flip (p = 0.5) of input and target; default on for train only.
        corrupt: keyword arguments of :func:`posezoo.data.transforms.corrupt_2d` (MotionBERT's
            pretraining masking / noise), or None.
        fps: resample clips to this frame rate (None keeps each file's rate).
    """

    def __init__(self, files, layout_out: str = "h36m-17", clip_len: int = 243, stride: int | None = None,
                 split: str = "train", split_rule: str = "auto", test_every: int = 5,
                 cameras: dict | None = None, seed: int = 0, flip: bool | None = None,
                 corrupt: dict | None = None, fps: float | None = None):
        self._load_clips(files, layout_out, split, split_rule, test_every, fps)
        self.clip_len, self.split, self.seed = int(clip_len), split, int(seed)
        self.train = split == "train"
        self.stride = int(stride or (81 if self.train else clip_len))
        self.cameras = dict(cameras or {})
        sample_camera(np.random.default_rng(0), self.cameras)  # validate the settings now
        self.flip = self.train if flip is None else bool(flip)
        self.corrupt = corrupt
        items = []
        for fi, ci in self.clips:
            starts = T.clip_windows(self.clip_length(fi, ci), self.clip_len, self.stride) or [-1]
            items += [(fi, ci, s) for s in starts]
        self.items = np.array(items, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, index: int) -> dict:
        """Item ``index`` as numpy arrays plus ``world`` (T, J, 3, centred, Y up), ``points_cam``
        (T, J, 3, camera frame, not root-relative) and the :class:`Camera`; before any flip."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        fi, ci, start = (int(v) for v in self.items[index])
        rng = _item_rng(self.seed, index, self.train)
        clip = self.clip_array(fi, ci)
        if start >= 0:
            frames = clip[start:start + self.clip_len]
        else:
            frames = clip[T.resample(len(clip), self.clip_len, randomness=self.train, rng=rng)]
        world, travel = _centre(frames)
        camera = sample_camera(rng, self.cameras, travel)
        inputs, points = project_clip(world, camera)
        meta = dict(self.clip_meta(fi, ci), start=start, frames=self.clip_len, **camera.meta())
        return dict(inputs=inputs, target=(points - points[:, :1]).astype(np.float32), world=world,
                    points_cam=points, camera=camera, meta=meta, rng=rng)

    def __getitem__(self, index: int) -> dict:
        s = self.sample(index)
        inputs, target, rng = s["inputs"], s["target"], s["rng"]
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            inputs, target = self.layout.flip(inputs), self.layout.flip(target)
        if self.corrupt is not None:
            inputs = T.corrupt_2d(inputs, rng, **self.corrupt)
        return dict(inputs=T.to_tensor(inputs), target=T.to_tensor(target), meta=dict(s["meta"], flipped=flipped))
