"""Refining a lifted track with what holds for every real person: bones keep their length, and joints
move smoothly. Both act on one track's whole sequence, after the model.

- :func:`rigid_bones`: each bone gets the track's median length, keeping its per-frame direction
  (forward kinematics from the root along the layout's tree). A lifter's per-frame length guesses are
  noisy; their median over the track is a far better estimate of the person's skeleton.
- :func:`smooth`: a zero-phase local quadratic fit over a short window (Savitzky-Golay), which keeps
  real motion (walking at 24 fps passes unchanged to within a few mm) and removes frame-to-frame
  jitter that comes from the detector.

Shapes: poses (T, J, 3), any units; the root's position is kept.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rigid_bones(poses: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """(T, J, 3) -> (T, J, 3) with every bone at its median length over the track. ``parents[j]`` is
    joint j's parent (-1 for the root); parents must come before their children."""
    poses = np.asarray(poses)
    out = poses.copy()
    for j, parent in enumerate(parents):
        if parent < 0:
            continue
        if parent >= j:
            raise ValueError(f"joint {j}'s parent {parent} comes after it: order the layout parents first")
        bone = poses[:, j] - poses[:, parent]
        length = np.linalg.norm(bone, axis=-1, keepdims=True)
        direction = np.divide(bone, length, out=np.zeros_like(bone), where=length > 0)
        out[:, j] = out[:, parent] + direction * np.median(length)
    return out


def savgol_weights(window: int, order: int = 2) -> np.ndarray:
    """Weights of the centre value of a least-squares polynomial fit of ``order`` over ``window``
    (odd) samples."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the smoothing window must be a positive odd number of frames, got {window}")
    half = window // 2
    t = np.arange(-half, half + 1, dtype=np.float64)
    basis = np.vander(t, min(order, window - 1) + 1, increasing=True)
    return np.linalg.pinv(basis)[0]


def smooth(poses: np.ndarray, window: int = 9, order: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing of (T, J, C) along T (edges mirrored); ``window`` 1 returns a copy."""
    poses = np.asarray(poses)
    if window == 1 or len(poses) < 3:
        return poses.copy()
    window = min(window, len(poses) - (1 - len(poses) % 2))  # odd and no longer than the track
    weights = savgol_weights(window, order)
    half = window // 2
    padded = np.concatenate([poses[half:0:-1], poses, poses[-2:-half - 2:-1]])
    out = sum(w * padded[i:i + len(poses)] for i, w in enumerate(weights))
    return out.astype(poses.dtype)
