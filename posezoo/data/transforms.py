"""Array transforms for 2D/3D keypoint sequences: screen normalisation, crop_scale, flip, clip
sampling and MotionBERT's 2D corruption.

Shapes: keypoints are (..., J, C) with C = 2 (x, y), 3 (x, y, confidence) or 3 (x, y, z); clips
are (T, J, C), multi-person clips (M, T, J, C). Pixel coordinates have x to the right and y down.
Functions that draw random numbers take a ``numpy.random.Generator`` (``rng``); where the official
code draws from the global ``np.random`` the default ``rng=None`` does the same, so results match
it under ``np.random.seed``.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from posezoo.data.layouts import KeypointLayout, get_layout


def _random(rng: np.random.Generator | None):
    return np.random if rng is None else rng


def normalize_screen_coordinates(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixels -> MotionBERT / VideoPose3D screen units: ``xy / w * 2 - [1, h / w]``.

    x maps to [-1, 1], y to [-h/w, h/w]; the aspect ratio is kept. Only the first two channels
    change (a confidence or z channel passes through). (..., C) -> (..., C), float.
    """
    out = np.array(xy, dtype=np.result_type(xy, np.float32), copy=True)
    out[..., :2] = out[..., :2] / w * 2 - np.array([1.0, h / w])
    return out


def denormalize_screen_coordinates(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen_coordinates` on x, y: ``(xy + [1, h / w]) * w / 2``."""
    out = np.array(xy, dtype=np.result_type(xy, np.float32), copy=True)
    out[..., :2] = (out[..., :2] + np.array([1.0, h / w])) * w / 2
    return out


def normalize_pixels_centered(xy: np.ndarray, w: float, h: float) -> np.ndarray:
    """MotionBERT's ``--pixel`` mode: ``(xy - [w, h] / 2) / (min(w, h) / 2)`` on x, y."""
    out = np.array(xy, dtype=np.result_type(xy, np.float32), copy=True)
    out[..., :2] = (out[..., :2] - np.array([w, h]) / 2) / (min(w, h) / 2)
    return out


def make_cam(xy: np.ndarray, img_shape: Sequence[int]) -> np.ndarray:
    """MotionBERT's action-data normalisation: ``xy / max(w, h) * 2 - 1``; ``img_shape`` = (h, w)."""
    h, w = img_shape
    return xy / max(w, h) * 2 - 1


def crop_scale(motion: np.ndarray, scale_range: Sequence[float] = (1, 1),
               rng: np.random.Generator | None = None) -> np.ndarray:
    """MotionBERT's crop_scale: map the square around the joints' box to [-1, 1].

    motion: ([M,] T, J, 3) with (x, y, confidence). The box covers joints with confidence != 0
    (over all persons and frames); its larger side times ``ratio ~ U(scale_range)`` is the square's
    side. Every joint is transformed (zero-confidence ones too), then all channels are clipped to
    [-1, 1]. Fewer than 4 valid joints or a zero-size box give zeros. Float64 like the official code.
    """
    motion = np.asarray(motion)
    valid = motion[motion[..., 2] != 0][:, :2]
    if len(valid) < 4:
        return np.zeros(motion.shape)
    (xmin, ymin), (xmax, ymax) = valid.min(0), valid.max(0)
    ratio = _random(rng).uniform(low=scale_range[0], high=scale_range[1], size=1)[0]
    scale = max(xmax - xmin, ymax - ymin) * ratio
    if scale == 0:
        return np.zeros(motion.shape)
    corner = np.array([(xmin + xmax - scale) / 2, (ymin + ymax - scale) / 2])
    result = np.array(motion, dtype=np.result_type(motion, np.float64), copy=True)
    result[..., :2] = ((motion[..., :2] - corner) / scale - 0.5) * 2
    return np.clip(result, -1, 1)


def normalize_pose_frames(keypoints: np.ndarray, root: int = 0) -> np.ndarray:
    """posezoo's ``pose-frame`` normalisation: each frame centred on its root joint and divided by
    half the larger side of its joints' box, so the input says nothing of the image size, the
    person's distance or where they stand. Used alike in training and in ``posezoo.lift``.

    keypoints: (..., T, J, 3) x, y (any units, e.g. pixels) and confidence; joints with confidence
    <= 0 are missing: left out of the box and set to (0, 0, 0). A frame whose root is missing is
    centred on its box; a frame with fewer than 2 joints takes the median scale of the clip's other
    frames. Returns float32 (..., T, J, 3), the confidence kept.
    """
    kp = np.asarray(keypoints)
    kp = kp.astype(np.result_type(kp.dtype, np.float32), copy=False)
    visible = kp[..., 2] > 0
    xy = np.where(visible[..., None], kp[..., :2], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames handled below
        lo, hi = np.nanmin(xy, axis=-2), np.nanmax(xy, axis=-2)  # (..., T, 2)
        scale = np.max(hi - lo, axis=-1) / 2  # (..., T)
        scale = np.where((visible.sum(-1) >= 2) & (scale > 0), scale, np.nan)
        fallback = np.nanmedian(scale, axis=-1, keepdims=True)
    scale = np.where(np.isnan(scale), fallback, scale)
    scale = np.where(np.isnan(scale) | (scale <= 0), 1.0, scale)
    centre = np.where(visible[..., root, None], kp[..., root, :2], (lo + hi) / 2)
    centre = np.where(np.isnan(centre), 0.0, centre)
    out = np.concatenate([(kp[..., :2] - centre[..., None, :]) / scale[..., None, None], kp[..., 2:3]], axis=-1)
    return np.where(visible[..., None], out, 0.0).astype(np.float32)


def flip_pose(poses, layout: str | KeypointLayout = "h36m-17"):
    """Mirror (..., J, C) poses left-right (negate x, swap left/right joints); numpy or torch.

    Use it on a 2D input and its 3D target together (both have x first).
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    return layout.flip(poses)


def resample(ori_len: int, target_len: int, randomness: bool = True,
             rng: np.random.Generator | None = None) -> np.ndarray:
    """MotionBERT's resample: ``target_len`` frame indices spread evenly over ``ori_len`` frames.

    With ``randomness`` each index is jittered: a longer clip draws one frame uniformly inside
    each interval; a shorter clip repeats frames, choosing floor or ceil of the even position at
    random. Without, ``linspace(0, ori_len, target_len, endpoint=False)`` truncated to int.
    """
    even = np.linspace(0, ori_len, num=target_len, endpoint=False)
    if not randomness:
        return np.linspace(0, ori_len, num=target_len, endpoint=False, dtype=int)
    r = _random(rng)
    if ori_len < target_len:
        low, high = np.floor(even), np.ceil(even)
        sel = r.randint(2, size=even.shape) if rng is None else rng.integers(2, size=even.shape)
        result = np.sort(sel * low + (1 - sel) * high)
    else:
        result = r.random(even.shape) * (even[1] - even[0]) + even
    return np.clip(result, 0, ori_len - 1).astype(np.uint32)


def clip_windows(length: int, clip_len: int, stride: int) -> list[int]:
    """Start frames of the full ``clip_len`` windows of a sequence of ``length`` frames, every
    ``stride`` frames (MotionBERT's split_clips inside one video; the tail after the last full
    window is dropped). A sequence shorter than ``clip_len`` has none: resample it instead."""
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
    return list(range(0, length - clip_len + 1, stride))


def resample_fps(length: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Fractional source frame positions (float64) of a ``fps_in`` sequence sampled at ``fps_out``."""
    n = max(1, int(np.floor((length - 1) * fps_out / fps_in)) + 1)
    return np.minimum(np.arange(n) * (fps_in / fps_out), length - 1)


def interpolate_frames(frames: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, ...) ``frames`` at fractional ``positions`` (N,) -> (N, ...)."""
    lo = np.floor(positions).astype(int)
    hi = np.minimum(lo + 1, len(frames) - 1)
    a = (positions - lo).reshape(-1, *([1] * (frames.ndim - 1)))
    return frames[lo] * (1 - a) + frames[hi] * a


def mask_joints(x: np.ndarray, rng: np.random.Generator, mask_ratio: float = 0.05,
                mask_T_ratio: float = 0.1) -> np.ndarray:
    """MotionBERT's add_mask on clips (..., T, J, C): zero all channels of each joint with
    probability ``mask_ratio`` and of each whole frame with probability ``mask_T_ratio``.
    (The official batched version shares the frame mask across the batch; here it is per clip.)"""
    T, J = x.shape[-3], x.shape[-2]
    lead = x.shape[:-3]
    keep = rng.random(lead + (T, J, 1)) > mask_ratio
    keep_t = rng.random(lead + (T, 1, 1)) > mask_T_ratio
    return x * keep * keep_t


def add_noise_2d(x: np.ndarray, rng: np.random.Generator, mean=0.0, std=0.0, weight=1.0,
                 uniform_range: float = 0.06, jitter_std: float = 0.002, num_keyframes: int = 27,
                 d2c: dict | None = None, scale=1.0) -> np.ndarray:
    """MotionBERT's Augmenter2D.add_noise on clips x (..., T, J, C >= 2) -> (..., T, J, 3).

    Per joint and keyframe, draw ``N(mean_j, std_j)`` with probability ``weight_j``, otherwise
    ``(U - 0.5) * uniform_range``; interpolate the keyframes linearly to T frames, add
    ``N(0, jitter_std)``. The new confidence is ``clip(a / (d + a) + b d + N(m, s), 0, 1)`` for the
    displacement norm d, with ``d2c = dict(a=, b=, m=, s=)``; without ``d2c`` the input confidence
    (or 1) is kept. ``mean``/``std`` broadcast to (J, 2), ``weight`` to (J,). The official values
    live in MotionBERT's params/synthetic_noise.pth and params/d2c_params.pkl
    (see :func:`posezoo.data.readers.read_motionbert_noise_params`).

    ``scale`` (a number, or one per clip over the leading dims) converts the official units (H36M
    screen units, a person about 0.9 tall) to x's: the displacement is multiplied by it and ``d2c``
    sees the displacement divided by it.
    """
    T, J = x.shape[-3], x.shape[-2]
    lead = x.shape[:-3]
    dtype = np.result_type(x.dtype, np.float32)
    mean = np.broadcast_to(np.asarray(mean, dtype=dtype), (J, 2))
    std = np.broadcast_to(np.asarray(std, dtype=dtype), (J, 2))
    weight = np.broadcast_to(np.asarray(weight, dtype=dtype), (J,))[:, None]
    sel = rng.random(lead + (num_keyframes, J, 1), dtype=dtype)
    gauss = rng.standard_normal(lead + (num_keyframes, J, 2), dtype=dtype) * std + mean
    unif = (rng.random(lead + (num_keyframes, J, 2), dtype=dtype) - 0.5) * uniform_range
    keyframes = np.moveaxis(np.where(sel < weight, gauss, unif), -3, 0)  # (K, ..., J, 2)
    delta = np.moveaxis(interpolate_frames(keyframes, np.linspace(0, num_keyframes - 1, T)), 0, -3).astype(dtype)
    delta += rng.standard_normal(lead + (T, J, 2), dtype=dtype) * dtype.type(jitter_std)
    scale = np.broadcast_to(np.asarray(scale, dtype), lead).reshape(lead + (1, 1, 1))
    xy = x[..., :2] + delta * scale
    if d2c is None:
        conf = x[..., 2:3] if x.shape[-1] > 2 else np.ones(lead + (T, J, 1))
    else:
        d = np.linalg.norm(delta, axis=-1, keepdims=True)
        conf = d2c["a"] / (d + d2c["a"]) + d2c["b"] * d + rng.standard_normal(d.shape, dtype=dtype) * d2c["s"] + d2c["m"]
        conf = np.clip(conf, 0, 1)
    return np.concatenate([xy, conf], axis=-1).astype(x.dtype)


def corrupt_2d(x: np.ndarray, rng: np.random.Generator, mask_ratio: float = 0.05,
               mask_T_ratio: float = 0.1, noise: dict | None = None) -> np.ndarray:
    """MotionBERT's pretraining 2D corruption of one clip (T, J, 3): noise (if ``noise`` is a dict
    of :func:`add_noise_2d` arguments), then masking (when both ratios are > 0, as officially)."""
    if noise is not None:
        x = add_noise_2d(x, rng, **noise)
    if mask_ratio > 0 and mask_T_ratio > 0:
        x = mask_joints(x, rng, mask_ratio, mask_T_ratio)
    return x


def human_tracking(x: np.ndarray) -> np.ndarray:
    """MotionBERT's 2-person track fix for (M, T, J, C): swap the persons from each frame on where
    person 0 moves less to person 1's previous pose than to its own (cumulative parity)."""
    if x.shape[0] == 1:
        return x
    diff0 = np.linalg.norm(x[0, 1:] - x[0, :-1], axis=-1).sum(-1)
    diff1 = np.linalg.norm(x[0, 1:] - x[1, :-1], axis=-1).sum(-1)
    sel = (np.cumsum(diff0 > diff1) % 2)[:, None, None]
    out = np.zeros(x.shape)
    out[:, 0] = x[:, 0]
    out[0, 1:] = x[1, 1:] * sel + x[0, 1:] * (1 - sel)
    out[1, 1:] = x[0, 1:] * sel + x[1, 1:] * (1 - sel)
    return out


def random_move(x: np.ndarray, rng: np.random.Generator, angle_range=(-10.0, 10.0),
                scale_range=(0.9, 1.1), shift_range=(-0.1, 0.1)) -> np.ndarray:
    """MotionBERT's action augmentation (move_time 1) on (M, T, J, C): a rotation, scale and shift
    of x, y, each interpolated linearly over the clip from one random value to another."""
    T = x.shape[1]
    ends = [rng.uniform(*r, 2) for r in (angle_range, scale_range, shift_range, shift_range)]
    a, s, tx, ty = (np.linspace(e[0], e[1], T) for e in ends)
    a = a * np.pi / 180
    rot = np.stack([np.stack([np.cos(a) * s, -np.sin(a) * s], -1),
                    np.stack([np.sin(a) * s, np.cos(a) * s], -1)], -2)  # (T, 2, 2)
    out = np.array(x, dtype=np.float64, copy=True)
    out[..., :2] = np.einsum("tij,mtvj->mtvi", rot, x[..., :2]) + np.stack([tx, ty], -1)[None, :, None]
    return out


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """A float32 torch tensor of ``x`` (contiguous, owning its memory)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

