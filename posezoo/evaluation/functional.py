"""Per-frame pose errors in numpy (float64), as the official evaluation scripts compute them.

Every function takes ``pred`` and ``target`` of shape (F, J, 3) and returns one error per frame,
shape (F,) (or (F - 1,) / (F - 2,) for the velocity and acceleration errors), in the input's units.
"""
from __future__ import annotations

import numpy as np


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"expected pred and target of the same shape (F, J, C), got {pred.shape} and {target.shape}")
    return pred, target


def mpjpe(pred, target) -> np.ndarray:
    """Mean joint distance per frame (MPJPE, protocol 1 when the inputs are root-relative)."""
    pred, target = _pair(pred, target)
    return np.linalg.norm(pred - target, axis=-1).mean(-1)


def procrustes_align(pred, target) -> np.ndarray:
    """``pred`` aligned to ``target`` frame by frame by the similarity transform (rotation, uniform
    scale, translation) of least squared error. A reflection is never used: when the best orthogonal
    map has det -1, the last singular direction is flipped (as VideoPose3D/MotionBERT ``p_mpjpe``)."""
    pred, target = _pair(pred, target)
    mu_t, mu_p = target.mean(1, keepdims=True), pred.mean(1, keepdims=True)
    t0, p0 = target - mu_t, pred - mu_p
    norm_t = np.sqrt((t0 ** 2).sum(axis=(1, 2), keepdims=True))
    norm_p = np.sqrt((p0 ** 2).sum(axis=(1, 2), keepdims=True))
    t0, p0 = t0 / norm_t, p0 / norm_p
    u, s, vt = np.linalg.svd(t0.transpose(0, 2, 1) @ p0)
    v = vt.transpose(0, 2, 1)
    sign = np.sign(np.linalg.det(v @ u.transpose(0, 2, 1)))
    v[:, :, -1] *= sign[:, None]
    s[:, -1] *= sign
    rot = v @ u.transpose(0, 2, 1)
    scale = s.sum(1)[:, None, None] * norm_t / norm_p
    return scale * (pred @ rot) + (mu_t - scale * (mu_p @ rot))


def p_mpjpe(pred, target) -> np.ndarray:
    """MPJPE after Procrustes alignment per frame (P-MPJPE, protocol 2)."""
    return mpjpe(procrustes_align(pred, target), target)


def n_mpjpe(pred, target) -> np.ndarray:
    """MPJPE after the per-frame scale-only alignment of ``pred`` (N-MPJPE)."""
    pred, target = _pair(pred, target)
    scale = (target * pred).sum(-1).mean(-1) / (pred * pred).sum(-1).mean(-1)
    return mpjpe(pred * scale[:, None, None], target)


def mpjve(pred, target) -> np.ndarray:
    """Mean per-joint velocity error per frame transition (units per frame), shape (F - 1,)."""
    pred, target = _pair(pred, target)
    return mpjpe(np.diff(pred, axis=0), np.diff(target, axis=0))


def acceleration_error(pred, target) -> np.ndarray:
    """Mean per-joint acceleration error (second differences, units per frame²), shape (F - 2,)."""
    pred, target = _pair(pred, target)
    return mpjpe(np.diff(pred, n=2, axis=0), np.diff(target, n=2, axis=0))


POSE_ERRORS = {
    "mpjpe": mpjpe,
    "p_mpjpe": p_mpjpe,
    "n_mpjpe": n_mpjpe,
    "mpjve": mpjve,
    "accel": acceleration_error,
}
