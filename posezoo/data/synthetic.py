"""Lifting pairs made from mocap as a detector would see it, generated a whole batch at a time.

:class:`SyntheticLiftDataset` turns the open mocap (already converted to ``h36m-17``) into what a
lifter meets on real video, so that weights trained on it transfer:

1. a window of ``frames`` frames played at a random speed (30 fps sources seen as 18-50 fps);
2. the skeleton moved to Human3.6M's joint definitions with per-clip proportions
   (:mod:`posezoo.data.retarget`), limbs scaled +-8 %, a random left/right mirror;
3. a static camera anywhere around the subject: any yaw, 0.5-2 m high, 2.5-8 m away (plus the
   subject's travel), aimed near the body with a little roll (perspective as in phone and lab video);
   some clips seated on an unseen chair, sitting down or standing up (:mod:`posezoo.data.seating`);
4. detector-like 2D: MotionBERT's keyframe-correlated per-joint noise with uniform outliers and
   displacement-derived confidence (:data:`DETECTOR_NOISE`), its size relative to the person's and
   varied per clip (none to twice Human3.6M detectors'), sometimes all confidences 1 (inputs
   without scores); joints dropped at random, limb ends occluded for whole runs, and one joint
   absent from every frame as a 2D layout without it gives it (confidence 0); in some clips the
   thorax, spine and head where COCO-like layouts put them (mid-shoulders, mid-eyes: :func:`face_points`);
5. ``pose-frame`` normalisation (:func:`posezoo.data.transforms.normalize_pose_frames`), exactly as
   ``posezoo.lift`` normalises a model trained here.

Items: ``inputs`` float32 (frames, 17, 3); ``target`` float32 (1 or frames, 17, 3) camera frame
(x right, y down, z forward), root-relative, metres; ``meta`` (clip, source). The training split
draws a fresh window for every index (the index seeds nothing but the batch's generator); the test
split is fixed per index. ``__getitems__`` makes a batch in one vectorised pass, which is what
lets a 2-core CPU feed batches of 1024 windows.
"""
from __future__ import annotations

import numpy as np
import torch

from posezoo.data import retarget as R
from posezoo.data import seating
from posezoo.data import transforms as T
from posezoo.data.datasets import _MocapClips
from posezoo.registry import DATASETS

# MotionBERT's detector model (params/synthetic_noise.pth, d2c_params.pkl; shared/reference/transfer.md
# §2.1), H36M-17 order, in H36M screen units (a person is about 0.9 tall). Outlier probabilities and
# the larger biases are the official values; the per-joint stds are the official ones rounded to a
# joint class (0.0034-0.0095).
_STD = [0.0037, 0.0045, 0.0065, 0.0090, 0.0045, 0.0065, 0.0095, 0.0040, 0.0055, 0.0040, 0.0035,
        0.0080, 0.0070, 0.0075, 0.0075, 0.0070, 0.0075]
_MEAN_Y = {8: -0.0065, 6: -0.0052, 11: -0.0046}
DETECTOR_NOISE = dict(
    mean=[[0.0, _MEAN_Y.get(j, 0.0)] for j in range(17)],
    std=[[s, s] for s in _STD],
    weight=[0.999, 0.97, 0.89, 0.89, 0.97, 0.88, 0.82, 0.96, 0.92, 0.97, 0.98,
            0.89, 0.80, 0.70, 0.88, 0.82, 0.73],
    uniform_range=0.06, jitter_std=0.002, num_keyframes=27,
    d2c=dict(a=0.028, b=1.1, m=-0.0046, s=0.143),
)
H36M_PERSON_HEIGHT = 0.88  # screen units (pixels / width * 2) of a standing H36M subject, on average

OCCLUDABLE = (R.L_ELBOW, R.L_WRIST, R.R_ELBOW, R.R_WRIST, R.L_KNEE, R.L_ANKLE, R.R_KNEE, R.R_ANKLE)

DEFAULT_AUGMENT = dict(
    speed=(0.6, 1.7),              # playback speed of the 30 fps sources
    limb_scale=0.08,               # thigh/shin/upper arm/forearm: +-8 % (left and right alike) + 2 % asymmetry
    distance=(2.5, 8.0),           # metres, camera to subject (plus the subject's travel)
    camera_height=(0.5, 2.0),      # metres above the floor
    aim_height=(0.6, 1.3),         # metres: the point looked at, above the floor
    aim_jitter=(12.0, 8.0),        # degrees of yaw / pitch off the subject
    roll=4.0,                      # degrees (uniform +-)
    noise_level=(0.5, 2.0),        # detector noise x H36M detectors' (log-uniform per clip)
    clean=0.2,                     # share of clips without noise
    unit_confidence=0.2,           # share of clips whose confidences are all 1
    drop=0.05,                     # largest per-joint drop probability (uniform per clip)
    occlusion=0.3,                 # share of clips with one limb joint missing for a run of frames
    occlusion_frames=(5, 60),
    seated=0.15,                   # share of clips seated, sitting down or standing up (seating.seat)
    absent=0.25,                   # share of clips with one joint missing in every frame, half of them
                                   # the neck/nose (Stacked Hourglass's 16 joints lack it)
    face_points=0.3,               # share of clips whose thorax, spine and head are placed as the COCO
                                   # rule places them (coco/openpose/mediapipe inputs): see face_points
)
"""Ranges of :class:`SyntheticLiftDataset`'s training augmentation (override any key with ``augment``)."""


def _look_rotation(forward: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World -> camera rotations (N, 3, 3) (rows: right, down, forward) for Y-up worlds, rolled by
    ``roll`` radians about the optical axis."""
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(forward, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    return np.stack([c * right + s * down, c * down - s * right, forward], axis=1)


def view_batch(world: np.ndarray, rng: np.random.Generator, augment: dict) -> np.ndarray:
    """Random static cameras for clips (N, T, J, 3) (Y up) -> camera-frame points (N, T, J, 3)."""
    n = len(world)
    root = world[:, :, 0]
    middle = root.mean(axis=1) * [1.0, 0.0, 1.0]
    travel = np.linalg.norm((root - middle[:, None])[..., [0, 2]], axis=-1).max(axis=1)
    yaw = rng.uniform(-np.pi, np.pi, n)
    distance = rng.uniform(*augment["distance"], n) + travel
    centre = middle + np.stack([distance * np.sin(yaw), rng.uniform(*augment["camera_height"], n),
                                distance * np.cos(yaw)], axis=-1)
    aim = middle + np.stack([np.zeros(n), rng.uniform(*augment["aim_height"], n), np.zeros(n)], axis=-1)
    forward = aim - centre
    yaw_off, pitch_off = (np.deg2rad(rng.uniform(-a, a, n)) for a in augment["aim_jitter"])
    heading = np.arctan2(forward[:, 0], forward[:, 2]) + yaw_off
    pitch = np.arctan2(forward[:, 1], np.linalg.norm(forward[:, [0, 2]], axis=-1)) + pitch_off
    forward = np.stack([np.cos(pitch) * np.sin(heading), np.sin(pitch), np.cos(pitch) * np.cos(heading)], -1)
    rot = _look_rotation(forward, np.deg2rad(rng.uniform(-augment["roll"], augment["roll"], n)))
    return np.einsum("ntjc,nkc->ntjk", world - centre[:, None, None].astype(world.dtype), rot.astype(world.dtype))


def face_points(xy: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """2D (N, T, 17, 2) with, in ``share`` of the clips, the thorax, spine and head placed as
    layouts without those points get them from a face detector's (the COCO rule of
    :mod:`posezoo.data.layouts`): thorax = mid-shoulders, spine = mean of hips and shoulders, head =
    mid-eyes, here 20-70 % of the way from the neck/nose to the head top. Human3.6M's head joint is
    the top of the head; read as such, mid-eyes put 11-19 mm onto the stand-in's MPJPE."""
    if share <= 0:  # no draw: the rest of the batch comes out as without this step
        return xy
    chosen = np.flatnonzero(rng.random(len(xy)) < share)
    out = xy.copy()
    c = xy[chosen]
    shoulders = (c[..., R.L_SHOULDER, :] + c[..., R.R_SHOULDER, :]) / 2
    hips = (c[..., R.L_HIP, :] + c[..., R.R_HIP, :]) / 2
    eyes = rng.uniform(0.2, 0.7, (len(chosen), 1, 1)).astype(xy.dtype)
    out[chosen, :, R.THORAX] = shoulders
    out[chosen, :, R.SPINE] = (shoulders + hips) / 2
    out[chosen, :, R.HEAD] = c[..., R.NOSE, :] + eyes * (c[..., R.HEAD, :] - c[..., R.NOSE, :])
    return out


def detector_inputs(points: np.ndarray, rng: np.random.Generator, augment: dict) -> np.ndarray:
    """Camera-frame points (N, T, J, 3) -> detector-like 2D (N, T, J, 3): x, y (focal-length units)
    with noise, confidence (0 for missing joints), before normalisation."""
    n, frames, joints = points.shape[:3]
    xy = face_points(points[..., :2] / np.maximum(points[..., 2:3], 0.1), rng, augment["face_points"])
    box = xy.max(axis=2) - xy.min(axis=2)
    person = box.max(axis=-1).mean(axis=1)  # (N,) the person's size in these units
    level = np.exp(rng.uniform(*np.log(augment["noise_level"]), n)) * (rng.random(n) >= augment["clean"])
    noisy = T.add_noise_2d(np.concatenate([xy, np.ones(xy.shape[:-1] + (1,), xy.dtype)], -1), rng,
                           **DETECTOR_NOISE, scale=level * person / H36M_PERSON_HEIGHT)
    conf = np.where((level > 0)[:, None, None], noisy[..., 2], 1.0)
    conf[rng.random(n) < augment["unit_confidence"]] = 1.0
    drop = rng.random((n, frames, joints)) < rng.uniform(0, augment["drop"], n)[:, None, None]
    occluded = np.flatnonzero(rng.random(n) < augment["occlusion"])
    for i in occluded:
        length = int(rng.integers(*augment["occlusion_frames"]))
        start = int(rng.integers(-length // 2, frames))
        drop[i, max(start, 0):start + length, OCCLUDABLE[rng.integers(len(OCCLUDABLE))]] = True
    absent = np.flatnonzero(rng.random(n) < augment["absent"])  # a joint the 2D layout lacks
    drop[absent, :, np.where(rng.random(len(absent)) < 0.5, R.NOSE, rng.integers(1, joints, len(absent)))] = True
    conf = np.where(drop, 0.0, np.maximum(conf, 1e-3)).astype(xy.dtype)
    return np.concatenate([noisy[..., :2], conf[..., None]], axis=-1)


@DATASETS.register_module()
class SyntheticLiftDataset(_MocapClips):
    """Detector-like 2D -> H36M-skeleton 3D lifting pairs from mocap npz files (module docstring).

    Args:
        files: shared mocap npz paths; ``file_weights``: sampling weight per file (default: by frames).
        frames: input window length (a TCN's receptive field, a transformer's clip length).
        target: ``"centre"`` (the centre frame, for models that lift a window to one frame) or ``"all"``.
        split, split_rule, test_every: see :func:`posezoo.data.datasets.clip_split`.
        test_windows: number of fixed windows of the test split (evenly spread over its frames).
        length: items per epoch of the training split (only the sampler's range; every draw is new).
        augment: overrides of :data:`DEFAULT_AUGMENT`; the test split uses the same ranges with a
            fixed draw per index, and mean H36M proportions.
        seed: seeds the test draws (the training batches are seeded by their indices).
        fps: the frame rate clips are resampled to before the speed change.
    """

    def __init__(self, files, frames: int = 243, target: str = "centre", split: str = "train",
                 split_rule: str = "auto", test_every: int = 5, test_windows: int = 1024,
                 length: int = 1_000_000, augment: dict | None = None, seed: int = 0,
                 fps: float = 30.0, file_weights=None):
        if target not in ("centre", "all"):
            raise ValueError(f"target must be 'centre' or 'all', got {target!r}")
        self._load_clips(files, "h36m-17", split, split_rule, test_every, fps)
        unknown = set(augment or {}) - set(DEFAULT_AUGMENT)
        if unknown:
            raise ValueError(f"unknown augment keys {sorted(unknown)}; known: {sorted(DEFAULT_AUGMENT)}")
        self.augment = {**DEFAULT_AUGMENT, **(augment or {})}
        self.frames, self.target, self.seed = int(frames), target, int(seed)
        self.train = split == "train"
        clips = [self.clip_array(fi, ci, cache=False) for fi, ci in self.clips]
        self.motion = np.concatenate(clips).astype(np.float32)  # (N, 17, 3)
        lengths = np.array([len(c) for c in clips])
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.lengths = lengths
        files_of = np.array([fi for fi, _ in self.clips])
        weights = np.ones(len(self.files)) if file_weights is None else np.asarray(file_weights, np.float64)
        if len(weights) != len(self.files):
            raise ValueError(f"file_weights has {len(weights)} values for {len(self.files)} files")
        share = np.array([lengths[files_of == fi].sum() for fi in range(len(self.files))], np.float64)
        if file_weights is None:
            weights = share
        # probability of each frame as a window centre: the file's weight spread over its frames
        frame_file = np.repeat(files_of, lengths)
        p = (weights / np.maximum(share, 1))[frame_file]
        self._p = p / p.sum()
        self._clip_of_frame = np.repeat(np.arange(len(clips)), lengths)
        self._length = int(length) if self.train else min(int(test_windows), len(self.motion))

    def __len__(self) -> int:
        return self._length

    def _windows(self, rng: np.random.Generator, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World clips (N, frames, 17, 3) around global frame ``centres``, at random speeds
        (edge-held at the clip's ends), and each window's clip index."""
        clip = self._clip_of_frame[centres]
        speed = rng.uniform(*self.augment["speed"], len(centres)) if self.train else np.ones(len(centres))
        offsets = (np.arange(self.frames) - self.frames // 2)[None] * speed[:, None]
        local = np.clip(centres[:, None] - self.starts[clip][:, None] + offsets, 0, self.lengths[clip][:, None] - 1)
        # positions never pass a clip's last frame, so the next clip's first frame gets weight 0
        positions = (self.starts[clip][:, None] + local).ravel()
        world = T.interpolate_frames(self.motion, positions).astype(np.float32)
        return world.reshape(len(centres), self.frames, *self.motion.shape[1:]), clip

    def generate(self, rng: np.random.Generator, centres: np.ndarray) -> dict[str, np.ndarray]:
        """One batch for window centres (N,) (global frame indices): inputs, target, clip indices."""
        world, clip = self._windows(rng, centres)
        n = len(world)
        if self.train:
            world = R.retarget_h36m(world, R.draw_proportions(rng, n))
            k = self.augment["limb_scale"]
            shared = rng.uniform(1 - k, 1 + k, (n, 2, 2))  # (upper, lower) x (legs, arms)
            asym = rng.uniform(0.98, 1.02, (n, 2, 4))
            upper = np.repeat(shared[:, 0], 2, axis=1) * asym[:, 0]
            lower = np.repeat(shared[:, 1], 2, axis=1) * asym[:, 1]
            world = R.scale_limbs(world, upper, lower)
            flip = rng.random(n) < 0.5
            world[flip] = self.layout.flip(world[flip], axis=0)
        else:
            world = R.retarget_h36m(world)
        seated = rng.random(n) < self.augment["seated"]
        if seated.any():
            world[seated] = seating.seat(world[seated], rng)
        points = view_batch(world, rng, self.augment)
        inputs = T.normalize_pose_frames(detector_inputs(points, rng, self.augment))
        target = points - points[..., :1, :]
        if self.target == "centre":
            target = target[:, self.frames // 2:self.frames // 2 + 1]
        return dict(inputs=inputs, target=target.astype(np.float32), clip=clip)

    def _items(self, batch: dict, clip: np.ndarray) -> list[dict]:
        inputs, target = torch.from_numpy(batch["inputs"]), torch.from_numpy(batch["target"])
        return [dict(inputs=inputs[i], target=target[i], meta=self._meta(int(c))) for i, c in enumerate(clip)]

    def _meta(self, clip: int) -> dict:
        fi, ci = self.clips[clip]
        return dict(clip=self.files[fi].clip_names[ci], source=self.files[fi].path.name)

    def __getitems__(self, indices) -> list[dict]:
        indices = [int(i) for i in indices]
        if any(not 0 <= i < len(self) for i in indices):
            raise IndexError(f"indices out of range for {len(self)} items")
        if self.train:
            rng = np.random.default_rng([self.seed, len(indices), *indices[:8]])
            batch = self.generate(rng, rng.choice(len(self.motion), size=len(indices), p=self._p))
            return self._items(batch, batch["clip"])
        items = []
        for i in indices:  # a fixed draw per index, whatever the batch
            rng = np.random.default_rng([self.seed, i])
            centre = int(round((i + 0.5) * len(self.motion) / len(self)))
            batch = self.generate(rng, np.array([min(centre, len(self.motion) - 1)]))
            items += self._items(batch, batch["clip"])
        return items

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

