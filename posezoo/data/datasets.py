"""Map-style datasets for lifting and action recognition, registered in ``DATASETS``.

Every item is a dict that mmengine's Runner batches with ``default_collate``:

* lifting (:class:`MocapLiftDataset`, :class:`MotionBERTH36MDataset`, :class:`VideoPose3DH36MDataset`):
  ``inputs`` float32 (T, J, 3) = x, y in MotionBERT's normalised screen coordinates
  (``pixels / w * 2 - [1, h / w]``) and a confidence (missing joints are (0, 0, 0));
  ``target`` float32 (T, J, 3) = 3D joints in the camera frame (x right, y down, z forward),
  root-relative (joint 0), metres; ``meta`` = dict of plain values (names, frame numbers, camera).
* action (:class:`ActionClipDataset`, :class:`NTUActionDataset`): ``inputs`` float32 (M, T, J, 3),
  ``label`` int, ``meta``.
* single poses for pose tokenizers (:class:`MocapPoseDataset`): ``inputs`` float32 (J, 4) =
  root-relative, scale-normalised x, y, z + visibility; ``target`` float32 (J, 3) metres; ``meta``.

Randomness: test items are a pure function of (seed, index). Training items draw from a generator
seeded with (seed, index, numpy's global generator, torch's initial seed), so mmengine's
``randomness`` seed (which seeds numpy and torch in every worker) makes runs repeatable while
epochs and workers differ.

``metainfo`` (read by mmengine's loops into ``dataset_meta``) gives the layout, its joints, the
source files with their licenses, and for action datasets the class names.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import torch

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
    trailing clip number; number % test_every == 0 is test: Bandai's ``..._001``), ``index`` (the
    clip's position in the file; position % test_every == 0 is test), ``hash``
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
    elif rule == "index":
        out = ["test" if i % test_every == 0 else "train" for i in range(len(names))]
    elif rule == "hash":
        out = [_split_hash(n, test_every) for n in names]
    else:
        raise ValueError(f"split_rule must be 'auto', 'prefix', 'number', 'index' or 'hash', got {rule!r}")
    bad = [n for n, s in zip(names, out) if s is None]
    if bad:
        raise ValueError(f"split_rule {rule!r} does not apply to clips {bad[:5]}")
    return out


def _item_rng(seed: int, index: int, train: bool) -> np.random.Generator:
    if train:
        return np.random.default_rng([seed, index, int(np.random.randint(2 ** 31)),
                                      torch.initial_seed() % 2 ** 63])
    return np.random.default_rng([seed, index])


def _clip_frames(start: int, length: int, clip_len: int, train: bool, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of an item: the window at ``start``, or (``start`` -1: a clip shorter than
    ``clip_len``) the whole clip resampled to ``clip_len`` frames (random for train, even for test)."""
    if start >= 0:
        return np.arange(start, start + clip_len)
    return T.resample(length, clip_len, randomness=train, rng=rng).astype(np.int64)


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
    return screen_inputs(points, camera), points


def screen_inputs(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Camera-frame points (..., J, 3) metres -> float32 (..., J, 3): normalised screen x, y of their
    projection and confidence 1 for points in front of the camera and inside the image, else (0, 0, 0)."""
    pixels = camera.project(points)
    visible = (points[..., 2] > 1e-3) & np.all((pixels >= 0) & (pixels <= [camera.w, camera.h]), axis=-1)
    inputs = np.concatenate([T.normalize_screen_coordinates(pixels, camera.w, camera.h),
                             np.ones(pixels.shape[:-1] + (1,))], axis=-1)
    return (inputs * visible[..., None]).astype(np.float32)


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
        self.layout, self.split, self.fps = get_layout(layout_out), split, fps
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

    @property
    def metainfo(self) -> dict:
        return dict(layout=self.layout.name, joints=self.layout.joints, split=self.split,
                    sources=[dict(file=f.path.name, source=f.meta.get("source"), license=f.meta.get("license"))
                             for f in self.files])

    def clip_length(self, fi: int, ci: int) -> int:
        f = self.files[fi]
        n = f.clip_length(ci)
        return n if self.fps is None else len(T.resample_fps(n, float(f.fps[ci]), self.fps))

    def clip_array(self, fi: int, ci: int, cache: bool = True) -> np.ndarray:
        """Clip ``ci`` of file ``fi`` in the output layout: (frames, J, 3) float32 metres, Y up."""
        key = (fi, ci)
        if key in self._cache:
            return self._cache[key]
        f = self.files[fi]
        clip = convert_keypoints(f.clip(ci).astype(np.float32), f.layout.name, self.layout.name)
        if self.fps is not None:
            clip = T.interpolate_frames(clip, T.resample_fps(len(clip), float(f.fps[ci]), self.fps))
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if cache:
            self._cache[key] = clip
        return clip

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
        self.clip_len, self.seed = int(clip_len), int(seed)
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
        world, travel = _centre(clip[_clip_frames(start, len(clip), self.clip_len, self.train, rng)])
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


@DATASETS.register_module()
class ActionClipDataset(_MocapClips):
    """Action (or style) classification of whole mocap clips projected by virtual cameras.

    One item per clip of the split: the clip is resampled to ``clip_len`` frames (MotionBERT's
    resample: random for train, even for test), centred, projected as in
    :class:`MocapLiftDataset`. ``label`` picks a per-clip label of the files (Bandai: ``content``
    or ``style``); class indices follow ``self.classes`` (sorted names over all clips of all files).

    Item: ``inputs`` float32 (M=1, T, J, 3) normalised screen x, y + confidence (or crop_scale'd
    with ``normalise="crop_scale"`` and ``scale_range``, MotionBERT's action normalisation);
    ``label`` int; ``meta`` dict (clip, source, fps, label name, camera).
    ``flip`` is off by default: Bandai's contents name the left or right hand.
    """

    def __init__(self, files, label: str = "content", layout_out: str = "h36m-17", clip_len: int = 243,
                 split: str = "train", split_rule: str = "auto", test_every: int = 5,
                 cameras: dict | None = None, seed: int = 0, flip: bool = False,
                 normalise: str = "screen", scale_range=None, fps: float | None = None):
        self._load_clips(files, layout_out, split, split_rule, test_every, fps)
        missing = [str(f.path) for f in self.files if label not in f.labels]
        if missing:
            raise ValueError(f"label {label!r} is not in {missing}; available: "
                             f"{sorted(set().union(*(f.labels for f in self.files)))}")
        if normalise not in ("screen", "crop_scale"):
            raise ValueError(f"normalise must be 'screen' or 'crop_scale', got {normalise!r}")
        self.label, self.clip_len, self.seed = label, int(clip_len), int(seed)
        self.train = split == "train"
        self.cameras, self.flip, self.normalise = dict(cameras or {}), bool(flip), normalise
        self.scale_range = tuple(scale_range or ((1, 3) if self.train else (2, 2)))
        sample_camera(np.random.default_rng(0), self.cameras)
        self.classes = tuple(sorted(set().union(*(set(f.labels[label].tolist()) for f in self.files))))
        self.labels = np.array([self.classes.index(self.files[fi].labels[label][ci]) for fi, ci in self.clips])

    @property
    def metainfo(self) -> dict:
        return dict(super().metainfo, classes=self.classes, label=self.label)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        fi, ci = self.clips[index]
        rng = _item_rng(self.seed, index, self.train)
        clip = self.clip_array(fi, ci)
        world, travel = _centre(clip[T.resample(len(clip), self.clip_len, randomness=self.train, rng=rng)])
        camera = sample_camera(rng, self.cameras, travel)
        inputs, _ = project_clip(world, camera)
        if self.flip and rng.random() < 0.5:
            inputs = self.layout.flip(inputs)
        if self.normalise == "crop_scale":
            inputs = T.crop_scale(inputs, self.scale_range, rng)
        meta = dict(self.clip_meta(fi, ci), label_name=str(self.classes[self.labels[index]]), **camera.meta())
        return dict(inputs=T.to_tensor(inputs[None]), label=int(self.labels[index]), meta=meta)


@DATASETS.register_module()
class MocapPoseDataset(_MocapClips):
    """Single 3D poses of the shared mocap files (for pose tokenizers such as PCT's): every
    ``frame_step``-th frame of each clip of the split, in the output layout (Bandai, CMU, ...:
    the registered conversions to ``layout_out``), root-relative, divided by ``scale``.

    Item: ``inputs`` float32 (J, 4) = x, y, z relative to the root joint (joint 0) in units of
    ``scale`` metres (world axes, Y up) and visibility 1; ``target`` float32 (J, 3) = the same pose
    in metres; ``meta`` dict: clip, source, fps, frame (in the clip, after fps resampling), scale.

    Args:
        files, layout_out, split, split_rule, test_every, fps: as :class:`MocapLiftDataset`
            (``split_rule="index"`` holds out every ``test_every``-th clip of each file).
        frame_step: keep every ``frame_step``-th frame.
        scale: metres per unit; None = the median root-to-thorax distance over the poses of the
            TRAINING split of the same files (so a train and a test dataset agree).
    """

    def __init__(self, files, layout_out: str = "h36m-17", split: str = "train", split_rule: str = "auto",
                 test_every: int = 5, frame_step: int = 1, fps: float | None = None, scale: float | None = None):
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        self._load_clips(files, layout_out, split, split_rule, test_every, fps)
        self.frame_step = int(frame_step)
        poses, index = [], []
        for fi, ci in self.clips:
            clip = self.clip_array(fi, ci, cache=False)[::self.frame_step]
            poses.append(clip - clip[:, :1])
            index.append(np.stack([np.full(len(clip), fi), np.full(len(clip), ci),
                                   np.arange(len(clip)) * self.frame_step], axis=1))
        self.poses_m = np.concatenate(poses)  # (N, J, 3) root-relative metres
        self.index = np.concatenate(index)  # (N, 3): file, clip, frame
        self.scale = float(scale) if scale is not None else self._training_scale(split_rule, test_every)
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0 metres per unit, got {self.scale}")

    def _training_scale(self, split_rule: str, test_every: int) -> float:
        """Median root-to-thorax distance (metres) of the training split's poses."""
        if "thorax" not in self.layout.joints:
            raise ValueError(f"layout {self.layout.name!r} has no 'thorax' joint to derive the scale from; "
                             "pass scale=<metres per unit>")
        thorax = self.layout.index("thorax")
        if self.split == "train":
            return float(np.median(np.linalg.norm(self.poses_m[:, thorax], axis=-1)))
        lengths = []
        for fi, f in enumerate(self.files):
            for ci, s in enumerate(clip_split(f.clip_names, split_rule, test_every)):
                if s == "train":
                    clip = self.clip_array(fi, ci, cache=False)[::self.frame_step]
                    lengths.append(np.linalg.norm(clip[:, thorax] - clip[:, 0], axis=-1))
        if not lengths:
            raise ValueError("no training clips to derive the scale from; pass scale=<metres per unit>")
        return float(np.median(np.concatenate(lengths)))

    @property
    def metainfo(self) -> dict:
        return dict(super().metainfo, scale_m=self.scale, frame_step=self.frame_step)

    def __len__(self) -> int:
        return len(self.poses_m)

    def poses(self) -> torch.Tensor:
        """Every item's ``inputs`` as one tensor (N, J, 4)."""
        x = torch.from_numpy(self.poses_m / self.scale).float()
        return torch.cat((x, torch.ones_like(x[..., :1])), dim=-1)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        pose = self.poses_m[index]
        inputs = np.concatenate([pose / self.scale, np.ones((len(pose), 1), np.float32)], axis=-1)
        fi, ci, frame = (int(v) for v in self.index[index])
        meta = dict(self.clip_meta(fi, ci), frame=frame, scale=self.scale)
        return dict(inputs=T.to_tensor(inputs), target=T.to_tensor(pose), meta=meta)


@DATASETS.register_module()
class NTUActionDataset:
    """NTU RGB+D 2D skeletons from a pyskl pickle (e.g. ``ntu60_hrnet.pkl``), preprocessed as
    MotionBERT's ``NTURGBD`` dataset does.

    Per item: ``make_cam`` (pixels / max(w, h) * 2 - 1), 2-person ``human_tracking``,
    COCO -> H36M-17 on x, y only, resample to ``clip_len`` frames (random for train splits,
    even otherwise), the confidence appended (``conf_order="coco"``: the keypoint scores in COCO
    order, unmapped, the official quirk; ``"h36m"``: converted like x, y), a zero second person for
    single-person clips (persons beyond 2 are dropped), ``random_move`` (train), ``crop_scale``
    over both persons (scale_range: [1, 3] train, [2, 2] test, MotionBERT's configs).
    The official code resamples once when loading; here every training item is resampled anew.

    Item: ``inputs`` float32 (M=2, T, 17, 3), ``label`` int, ``meta`` dict (frame_dir, frames).
    """

    def __init__(self, file, split: str = "xsub_train", clip_len: int = 243, random_move: bool | None = None,
                 scale_range=None, seed: int = 0, conf_order: str = "coco"):
        data = read_pyskl(file)
        if split not in data["split"]:
            raise ValueError(f"split {split!r} not in {file}; splits: {sorted(data['split'])}")
        if conf_order not in ("coco", "h36m"):
            raise ValueError(f"conf_order must be 'coco' or 'h36m', got {conf_order!r}")
        wanted = set(data["split"][split])
        self.annotations = [a for a in data["annotations"] if a["frame_dir"] in wanted]
        for a in self.annotations:
            if np.shape(a["keypoint"])[2:] != (17, 2) or "keypoint_score" not in a:
                raise DataFormatError(f"{file}: {a['frame_dir']} needs COCO-17 2D keypoints (M, T, 17, 2) "
                                      f"and keypoint_score, got {np.shape(a['keypoint'])}")
        self.train = "train" in split
        self.clip_len, self.seed, self.conf_order = int(clip_len), int(seed), conf_order
        self.random_move = self.train if random_move is None else bool(random_move)
        self.scale_range = tuple(scale_range or ((1, 3) if self.train else (2, 2)))
        self.split, self.file = split, str(file)

    @property
    def metainfo(self) -> dict:
        return dict(layout="h36m-17", joints=get_layout("h36m-17").joints, split=self.split,
                    sources=[dict(file=Path(self.file).name)])

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        ann = self.annotations[index]
        rng = _item_rng(self.seed, index, self.train)
        xy = T.human_tracking(T.make_cam(np.asarray(ann["keypoint"], np.float64)[:2], ann["img_shape"]))
        score = np.asarray(ann["keypoint_score"], np.float64)[:2, ..., None]
        xy = convert_keypoints(xy, "coco-17", "h36m-17")
        if self.conf_order == "h36m":
            score = convert_keypoints(score, "coco-17", "h36m-17")
        frames = T.resample(int(ann["total_frames"]), self.clip_len, randomness=self.train, rng=rng)
        motion = np.concatenate([xy[:, frames], score[:, frames]], axis=-1)
        if len(motion) == 1:
            motion = np.concatenate([motion, np.zeros_like(motion)], axis=0)
        if self.random_move:
            motion = T.random_move(motion, rng)
        motion = T.crop_scale(motion, self.scale_range, rng)
        return dict(inputs=T.to_tensor(motion), label=int(ann["label"]),
                    meta=dict(frame_dir=str(ann["frame_dir"]), frames=int(ann["total_frames"])))


H36M_LICENSE = "Human3.6M license (research only)"


class _SequenceLiftDataset:
    """Lifting windows over prepared sequences: ``self.sequences`` holds dicts with ``inputs``
    (L, J, 3), ``target`` (L, J, 3) root-relative, ``frame_meta`` (name -> (L,) array, cut per
    window into meta) and ``meta`` (plain values). Windows every ``stride`` frames; a sequence
    shorter than ``clip_len`` gives one resampled item (MotionBERT's split_clips)."""

    layout = get_layout("h36m-17")

    @property
    def metainfo(self) -> dict:
        return dict(layout=self.layout.name, joints=self.layout.joints, split=self.split,
                    sources=[dict(file=Path(str(f)).name, license=self.license) for f in self.source_files])

    def _make_windows(self, clip_len: int, stride: int | None, train: bool, seed: int,
                      flip: bool | None, corrupt: dict | None) -> None:
        self.clip_len, self.train, self.seed = int(clip_len), train, int(seed)
        self.stride = int(stride or (81 if train else clip_len))
        self.flip = train if flip is None else bool(flip)
        self.corrupt = corrupt
        items = []
        for si, seq in enumerate(self.sequences):
            starts = T.clip_windows(len(seq["inputs"]), self.clip_len, self.stride) or [-1]
            items += [(si, s) for s in starts]
        self.items = np.array(items, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        si, start = (int(v) for v in self.items[index])
        seq, rng = self.sequences[si], _item_rng(self.seed, index, self.train)
        frames = _clip_frames(start, len(seq["inputs"]), self.clip_len, self.train, rng)
        inputs, target = seq["inputs"][frames], seq["target"][frames]
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            inputs, target = self.layout.flip(inputs), self.layout.flip(target)
        if self.corrupt is not None:
            inputs = T.corrupt_2d(inputs, rng, **self.corrupt)
        meta = dict(seq["meta"], start=start, frames=self.clip_len, flipped=flipped,
                    **{k: T.to_tensor(v[frames]) for k, v in seq["frame_meta"].items()})
        return dict(inputs=T.to_tensor(inputs), target=T.to_tensor(target), meta=meta)


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of equal consecutive values."""
    labels = np.asarray(labels)
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [len(labels)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _resolution(camera_names) -> np.ndarray:
    """(N, 2) image (w, h) of Human3.6M camera ids."""
    names = np.asarray(camera_names).astype(str)
    unknown = sorted(set(names) - set(H36M_RESOLUTION))
    if unknown:
        raise DataFormatError(f"unknown Human3.6M camera names {unknown}; known: {list(H36M_RESOLUTION)}")
    return np.array([H36M_RESOLUTION[n] for n in names], dtype=np.float64)


@DATASETS.register_module()
class MotionBERTH36MDataset(_SequenceLiftDataset):
    """Human3.6M from MotionBERT's preprocessed pickle (``h36m_sh_conf_cam_source_final.pkl``).

    Inputs as MotionBERT's DataReaderH36M: the stored 2D (SH detections) normalised with each
    camera's resolution, with the stored confidence; ``gt_2d``: the ground-truth projections
    (``joint3d_image``'s u, v) with confidence 1 instead, as MotionBERT's ``gt_2d`` option. Videos
    are the runs of equal ``source``; windows every ``stride`` frames (official: 81 train, 243 test;
    a video's tail after its last full window is dropped), shorter videos resampled.

    ``target="metres"``: ``joints_2.5d_image`` root-relative / 1000 (the official evaluation
    space, which is the pixel-aligned "2.5D" camera frame scaled to mm); ``"normalised"``: the
    official training target, ``joint3d_image`` normalised like the 2D (z * 2 / w), root-relative.
    ``meta`` keeps ``factor_2_5d`` (T,) per frame: the official evaluation computes mm as
    ``normalised * width / 2 * factor_2_5d``. Item shapes as :class:`MocapLiftDataset`. ``license``
    labels the data in ``metainfo`` (the license a model trained on it inherits).
    """

    def __init__(self, file, split: str = "train", clip_len: int = 243, stride: int | None = None,
                 target: str = "metres", seed: int = 0, flip: bool | None = None, corrupt: dict | None = None,
                 license: str = H36M_LICENSE, gt_2d: bool = False):
        _check_split(split)
        if target not in ("metres", "normalised"):
            raise ValueError(f"target must be 'metres' or 'normalised', got {target!r}")
        self.split, self.source_files, self.license = split, [file], license
        d = read_motionbert_h36m(file)[split]
        wh = _resolution(d["camera_name"])
        w, h = wh[:, 0:1, None], wh[:, 1:2, None]
        pixels = d["joint3d_image"] if gt_2d else d["joint_2d"]
        xy = pixels[..., :2] / w * 2 - np.concatenate([np.ones_like(h), h / w], axis=-1)
        conf = np.ones_like(xy[..., :1]) if gt_2d else d["confidence"].reshape(len(xy), 17, -1)[..., :1]
        inputs = np.concatenate([xy, conf], axis=-1).astype(np.float32)
        if target == "metres":
            points = d["joints_2.5d_image"] / 1000.0
        else:
            points = d["joint3d_image"] / w * 2
            points[..., 1] -= (h / w)[..., 0]
            points[..., 0] -= 1
        points = (points - points[:, :1]).astype(np.float32)
        self.sequences = []
        for a, b in _runs(d["source"]):
            self.sequences.append(dict(
                inputs=inputs[a:b], target=points[a:b],
                frame_meta={"factor_2_5d": np.asarray(d["2.5d_factor"][a:b], np.float32)},
                meta=dict(source=str(d["source"][a]), action=str(d["action"][a]),
                          camera=str(d["camera_name"][a]), width=float(wh[a, 0]), height=float(wh[a, 1]))))
        self._make_windows(clip_len, stride, split == "train", seed, flip, corrupt)


H36M_SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
# Stacked Hourglass's 16 MPII joints (VideoPose3D's sh_* files; the joint names of 3d-pose-baseline:
# RFoot, RKnee, RHip, LHip, LKnee, LFoot, Hip, Spine, Thorax, Head, RWrist, RElbow, RShoulder,
# LShoulder, LElbow, LWrist) at the H36M-17 positions; H36M's neck/nose (-1) has no counterpart.
SH_16_TO_H36M_17 = (6, 2, 1, 0, 3, 4, 5, 7, 8, -1, 9, 13, 14, 15, 12, 11, 10)


PUBLISHED_CALIBRATION = "Human3.6M's published calibration (posezoo.data.h36m_calibration)"


def h36m_cameras_for(data_3d, cameras=None) -> tuple[dict[tuple[str, str], dict], str]:
    """The calibration that goes with ``data_3d``, and where it came from: ``cameras`` (mmpose's
    ``cameras.pkl``) when given, else a ``cameras.pkl`` beside ``data_3d``, else Human3.6M's published
    calibration (:func:`posezoo.data.h36m_calibration.h36m_calibration`), which VideoPose3D keeps in
    its code rather than in its files."""
    if cameras is None:
        beside = Path(str(data_3d)).with_name("cameras.pkl")
        if not beside.is_file():
            from posezoo.data.h36m_calibration import h36m_calibration

            return h36m_calibration(), PUBLISHED_CALIBRATION
        cameras = beside
    return read_h36m_cameras(cameras), str(cameras)


def _camera_views(views, where: str) -> list[tuple[str, np.ndarray | None]]:
    """(camera id, view or None if missing) of one VideoPose3D 2D entry.

    A list holds one view per camera in :data:`H36M_CAMERAS` order, as VideoPose3D's scripts write it
    (position = camera; a camera without detections is None, or here also an empty array); a dict
    maps camera ids to views. A list of another length cannot say which camera it lacks: refused.
    """
    if isinstance(views, dict):
        unknown = sorted(set(map(str, views)) - set(H36M_CAMERAS))
        if unknown:
            raise DataFormatError(f"{where}: unknown camera ids {unknown}; known: {list(H36M_CAMERAS)}")
        views = [views.get(cam) for cam in H36M_CAMERAS]
    elif len(views) != len(H36M_CAMERAS):
        raise DataFormatError(f"{where}: {len(views)} views; VideoPose3D's format has one per camera "
                              f"{list(H36M_CAMERAS)} in that order, a missing one None: a shorter list "
                              "cannot say which camera it lacks")
    return [(cam, None if v is None or np.size(v) == 0 else np.asarray(v)) for cam, v in zip(H36M_CAMERAS, views)]


def _h36m_17_pixels(kp: np.ndarray, layout_name: str | None) -> np.ndarray:
    """VideoPose3D 2D (T, J, 2 | 3) pixels -> (T, 17, 3) pixels + confidence (1 where none is stored)
    in H36M-17 order: 16 joints are Stacked Hourglass's (:data:`SH_16_TO_H36M_17`, neck/nose missing),
    17 joints COCO's when ``layout_name`` is 'coco' (converted), else H36M's. Missing joints (0, 0, 0)."""
    if kp.shape[-1] == 2:
        kp = np.concatenate([kp, np.ones(kp.shape[:-1] + (1,))], axis=-1)
    if kp.shape[1] == 16:
        out = kp[:, [max(i, 0) for i in SH_16_TO_H36M_17]]
        out[:, [i for i, j in enumerate(SH_16_TO_H36M_17) if j < 0]] = 0
        return out
    if layout_name == "coco":
        return convert_keypoints(kp, "coco-17", "h36m-17", conf_mode="min")
    return kp


@DATASETS.register_module()
class VideoPose3DH36MDataset(_SequenceLiftDataset):
    """Human3.6M from VideoPose3D's ``data_3d_h36m.npz`` + ``data_2d_h36m_<source>.npz``.

    The world 3D (32 joints, metres) is reduced to the 17 joints and moved into each camera's frame
    (``X_cam = (X_world - T) @ R``) with the calibration :func:`h36m_cameras_for` finds: mmpose's
    ``cameras.pkl`` when given or beside ``data_3d``, else Human3.6M's published calibration, so
    VideoPose3D's two files suffice. The 2D of that camera is brought to H36M-17
    (:func:`_h36m_17_pixels`: CPN / ground truth as stored, COCO detections converted, Stacked
    Hourglass's 16 joints with the neck/nose missing) and normalised with VideoPose3D's
    ``normalize_screen_coordinates`` (confidence 1 unless stored; missing joints (0, 0, 0)).
    Sequences are cut to the shorter of 2D and 3D (VideoPose3D trims the 2D). ``subjects``
    defaults to the protocol's split (train S1, S5, S6, S7, S8; test S9, S11).

    Views pair with cameras by position in :data:`H36M_CAMERAS` (see :func:`_camera_views`). A
    camera without 2D (None or empty, e.g. S11 Directions' 54138969 in the Stacked Hourglass
    detections) and an action without 2D at all are skipped and listed in ``missing_views``
    (``metainfo`` too); VideoPose3D's own scripts drop S11 Directions altogether.

    Item shapes as :class:`MocapLiftDataset`; ``meta``: subject, action, camera, width, height.
    ``license`` labels the data in ``metainfo`` (the license a model trained on it inherits).
    """

    def __init__(self, data_3d, data_2d, cameras=None, split: str = "train", subjects=None, actions=None,
                 clip_len: int = 243, stride: int | None = None, seed: int = 0, flip: bool | None = None,
                 corrupt: dict | None = None, license: str = H36M_LICENSE):
        _check_split(split)
        self.split, self.license = split, license
        poses_3d = read_videopose3d_3d(data_3d)
        poses_2d, meta_2d = read_videopose3d_2d(data_2d)
        cams, self.cameras = h36m_cameras_for(data_3d, cameras)
        self.source_files = [data_3d, data_2d, self.cameras]
        self.sequences, self.missing_views = [], []
        for subject in subjects or H36M_SUBJECTS[split]:
            if subject not in poses_3d or subject not in poses_2d:
                raise DataFormatError(f"subject {subject} missing: 3D has {sorted(poses_3d)}, 2D {sorted(poses_2d)}")
            for action in sorted(poses_3d[subject]):
                if actions is not None and action.split(" ")[0] not in actions and action not in actions:
                    continue
                world = poses_3d[subject][action]
                world = world[:, list(H36M_32_TO_17)] if world.shape[1] == 32 else world
                views = poses_2d[subject].get(action)
                if views is None:
                    self.missing_views += [f"{subject} {action} {cam}" for cam in H36M_CAMERAS]
                    continue
                for cam_id, kp in _camera_views(views, f"{data_2d}: {subject} {action}"):
                    if kp is None:
                        self.missing_views.append(f"{subject} {action} {cam_id}")
                        continue
                    cam = cams.get((subject, cam_id))
                    if cam is None:
                        raise DataFormatError(f"{self.cameras}: no camera ({subject!r}, {cam_id!r})")
                    n = min(len(world), len(kp))
                    w, h = (float(cam[k]) if k in cam else v for k, v in zip("wh", H36M_RESOLUTION[cam_id]))
                    points = (world[:n] - np.asarray(cam["T"], np.float64).reshape(1, 1, 3)) @ np.asarray(cam["R"])
                    kp = _h36m_17_pixels(kp[:n], meta_2d.get("layout_name"))
                    xy = T.normalize_screen_coordinates(kp[..., :2], w, h)
                    inputs = np.concatenate([xy, kp[..., 2:]], -1) * (kp[..., 2:] > 0)
                    self.sequences.append(dict(
                        inputs=inputs.astype(np.float32),
                        target=(points - points[:, :1]).astype(np.float32), frame_meta={},
                        meta=dict(subject=subject, action=action, camera=cam_id, width=w, height=h)))
        if not self.sequences:
            raise ValueError(f"no sequences for split {split!r} (subjects {subjects}, actions {actions})")
        self._make_windows(clip_len, stride, split == "train", seed, flip, corrupt)

    @property
    def metainfo(self) -> dict:
        return dict(super().metainfo, missing_views=list(self.missing_views))


# --- mesh recovery from SMPL parameter sequences ------------------------------------------------------

# AMASS worlds are Z up; the virtual cameras look at Y-up worlds: (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
SMPL_BODY_VALUES = 66  # root + 21 body joints, axis-angle: the start of SMPL, SMPL-H and SMPL-X poses


def _amass_paths(files) -> list[tuple[str, Path]]:
    """(clip name, path) of AMASS npz files: each entry a file, or a folder searched recursively
    (names relative to it, e.g. ``CMU/01/01_01_poses``)."""
    out = []
    for entry in [files] if isinstance(files, (str, Path)) else list(files or []):
        entry = Path(entry).expanduser()
        if entry.is_dir():
            found = sorted(entry.rglob("*.npz"))
            if not found:
                raise FileNotFoundError(f"no .npz files under {entry}")
            out += [(p.relative_to(entry).with_suffix("").as_posix(), p) for p in found]
        elif entry.is_file():
            out.append((entry.stem, entry))
        else:
            raise FileNotFoundError(f"AMASS file or folder not found: {entry}")
    if not out:
        raise ValueError("no AMASS files given")
    return out


def smpl_pose(poses: np.ndarray, where: str) -> np.ndarray:
    """AMASS ``poses`` (T, D) -> SMPL axis-angle (T, 72): SMPL (D = 72) as is; SMPL-H (156) and SMPL-X
    (165): the root and 21 body joints, the two SMPL hand joints at rest."""
    if poses.shape[1] == 72:
        return poses.astype(np.float32)
    if poses.shape[1] not in (156, 165):
        raise DataFormatError(f"{where}: poses must be (T, 72 | 156 | 165) axis-angle (SMPL, SMPL-H, SMPL-X), "
                              f"got {poses.shape}")
    out = np.zeros((len(poses), 72), np.float32)
    out[:, :SMPL_BODY_VALUES] = poses[:, :SMPL_BODY_VALUES]
    return out


@DATASETS.register_module()
class AMASSMeshDataset:
    """Mesh-recovery samples from SMPL parameter sequences in AMASS npz format, seen by virtual cameras.

    Each AMASS file is one clip (``poses``, ``betas``, ``trans``, ``mocap_framerate``; read with
    :func:`posezoo.data.readers.read_amass_npz`), resampled to ``fps`` (nearest frame), split by clip
    (:func:`clip_split` on the names). The body is posed with your SMPL model (one model for every
    clip: the files' ``gender`` is not used; SMPL-H / SMPL-X poses keep their 22 body joints, betas
    their first 10). Per item, as :class:`MocapLiftDataset`: a ``clip_len`` window (every ``stride``
    frames; shorter clips resampled), a camera drawn around the window's centred root trajectory,
    the H36M-17 joints (the ``j_regressor`` applied to the vertices) projected and normalised.
    ``flip`` (default: train only, p = 0.5) mirrors the scene: the SMPL pose is mirrored
    (:func:`posezoo.models.mesh.flip_thetas`) and the root's camera x negated before projecting.

    Item: ``inputs`` float32 (T, 17, 3) normalised screen x, y + confidence; ``target`` dict, camera
    frame: ``theta`` (T, 82) (axis-angle pose with the global orientation turned into the camera
    frame, then betas), ``kp_3d`` (T, 17, 3) and ``verts`` (T, V, 3) in mm, as the body model gives
    them (root not subtracted); ``meta``: clip, start, frames, fps, flipped and the camera.

    Args:
        files: AMASS npz files or folders of them.
        body_model, j_regressor: the SMPL model file and the 17 x V H36M regressor
            (see :class:`posezoo.models.mesh.SMPLBody`); read now, so a wrong file fails here.
        clip_len, stride, split, split_rule, test_every, cameras, seed: as :class:`MocapLiftDataset`
            (split_rule default ``hash``).
        fps: frame rate to resample to (None keeps each file's).
    """

    def __init__(self, files, body_model, j_regressor, clip_len: int = 16, stride: int | None = None,
                 split: str = "train", split_rule: str = "hash", test_every: int = 5,
                 cameras: dict | None = None, seed: int = 0, flip: bool | None = None,
                 fps: float | None = 30.0):
        from posezoo.data.readers import check_finite, read_amass_npz
        from posezoo.models.mesh import NUM_BETAS, SMPLBody  # here: posezoo.models.mesh imports posezoo.data

        _check_split(split)
        self.split, self.layout = split, get_layout("h36m-17")
        self.clip_len, self.seed, self.train = int(clip_len), int(seed), split == "train"
        self.stride = int(stride or (clip_len // 2 if self.train else clip_len))
        self.cameras, self.fps = dict(cameras or {}), fps
        sample_camera(np.random.default_rng(0), self.cameras)
        self.flip = self.train if flip is None else bool(flip)
        self.body = SMPLBody(body_model, j_regressor)
        paths = _amass_paths(files)
        self.clips = []
        for (name, path), s in zip(paths, clip_split([n for n, _ in paths], split_rule, test_every)):
            if s != split:
                continue
            data = read_amass_npz(path)
            pose, trans = smpl_pose(data["poses"], str(path)), data["trans"].astype(np.float32)
            rate = data["mocap_framerate"]
            if not np.isfinite(rate) or rate <= 0:
                raise DataFormatError(f"{path}: mocap_framerate must be a positive number, got {rate}")
            if fps is not None:
                keep = np.round(T.resample_fps(len(pose), rate, fps)).astype(np.int64)
                pose, trans = pose[keep], trans[keep]
            betas = np.zeros(NUM_BETAS, np.float32)
            given = np.asarray(data["betas"], np.float32).reshape(-1)[:NUM_BETAS]
            betas[:len(given)] = given
            self.clips.append(dict(name=name, pose=pose, trans=trans, betas=betas, fps=float(fps or rate)))
        if not self.clips:
            raise ValueError(f"split {split!r} of the {len(paths)} AMASS files is empty")
        # the SMPL root joint at rest (metres) per clip: where the posed root sits before `trans`
        with torch.no_grad():
            rest = self.body(torch.from_numpy(np.stack([c["betas"] for c in self.clips])),
                             torch.zeros(len(self.clips), 72))
        if "kp_3d" not in rest:
            raise ValueError("AMASSMeshDataset needs j_regressor (the H36M joint regressor) for the 17 joints")
        check_finite(rest["verts"].numpy(), f"the body model {body_model} posed at rest")
        for clip, root in zip(self.clips, rest["joints"][:, 0].numpy() / 1000.0):
            clip["rest_root"] = root
        items = []
        for ci, clip in enumerate(self.clips):
            starts = T.clip_windows(len(clip["pose"]), self.clip_len, self.stride) or [-1]
            items += [(ci, s) for s in starts]
        self.items = np.array(items, dtype=np.int64)

    @property
    def metainfo(self) -> dict:
        return dict(layout=self.layout.name, joints=self.layout.joints, split=self.split, clips=len(self.clips),
                    body_model=self.body.model_path.name)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        from posezoo.models.mesh import axis_angle_to_rotmat, flip_thetas, rotmat_to_axis_angle

        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        ci, start = (int(v) for v in self.items[index])
        clip, rng = self.clips[ci], _item_rng(self.seed, index, self.train)
        frames = _clip_frames(start, len(clip["pose"]), self.clip_len, self.train, rng)
        pose = torch.from_numpy(clip["pose"][frames]).double()
        # the SMPL root joint in a Y-up world, centred; the camera looks at it
        root, travel = _centre(((clip["trans"][frames] + clip["rest_root"]) @ Z_UP_TO_Y_UP.T)[:, None])
        camera = sample_camera(rng, self.cameras, travel)
        root_cam = camera.world_to_camera(root[:, 0])
        # global orientation in the camera frame: camera rotation after the Z-up -> Y-up turn
        to_camera = torch.from_numpy(camera.R @ Z_UP_TO_Y_UP)
        pose[:, :3] = rotmat_to_axis_angle(to_camera @ axis_angle_to_rotmat(pose[:, :3]))
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            pose, root_cam = flip_thetas(pose), root_cam * [-1.0, 1.0, 1.0]
        pose = pose.float()
        betas = torch.from_numpy(clip["betas"]).expand(len(frames), -1)
        with torch.no_grad():
            body = self.body(betas, pose)
        # the body is posed about the rest root: move it to its camera-frame position to project
        points = body["kp_3d"].double().numpy() / 1000.0 + (root_cam - clip["rest_root"])[:, None]
        target = dict(theta=torch.cat([pose, betas], dim=-1), kp_3d=body["kp_3d"], verts=body["verts"])
        meta = dict(clip=clip["name"], start=start, frames=self.clip_len, fps=clip["fps"], flipped=flipped,
                    **camera.meta())
        return dict(inputs=T.to_tensor(screen_inputs(points, camera)), target=target, meta=meta)
