"""Seated people from standing mocap: the open mocap has nobody on a chair, yet people in video
sit (Human3.6M's Sitting, Eating, Phoning, Smoking, Waiting are mostly seated). :func:`seat` keeps a
clip's upper body and its motion and bends the legs into a seated pose: thighs forward, shins
down, feet on the floor, the hips at chair height. Some clips sit down or stand up inside the
window instead (the legs turn between the two poses), as in Human3.6M's SittingDown.

Shapes: poses (N, T, 17, 3) metres, Y up, Human3.6M-17 order (after
:func:`posezoo.data.retarget.retarget_h36m`); every bone keeps its length.
"""
from __future__ import annotations

import numpy as np

from posezoo.data.retarget import L_ANKLE, L_HIP, L_KNEE, PELVIS, R_ANKLE, R_HIP, R_KNEE, _unit, facing

UP = np.array([0.0, 1.0, 0.0])
LEGS = ((L_HIP, L_KNEE, L_ANKLE, 1.0), (R_HIP, R_KNEE, R_ANKLE, -1.0))  # (hip, knee, ankle, side)

SEATED_RANGES = dict(
    hip_flexion=(65.0, 100.0),   # degrees of the thigh from straight down towards the front
    shin=(-25.0, 25.0),          # degrees of the shin from straight down (+: foot forward)
    spread=(0.0, 20.0),          # degrees each knee turns outwards
    transition=(20, 60),         # frames a sit-down or stand-up takes
)
"""Ranges drawn per clip and leg by :func:`seat`."""


def _ramp(rng: np.random.Generator, n: int, frames: int) -> np.ndarray:
    """Seatedness (N, T) in [0, 1]: half the clips seated throughout, a quarter sitting down, a
    quarter standing up, each transition a smooth step over a random stretch of the window."""
    kind = rng.random(n)
    length = rng.integers(*SEATED_RANGES["transition"], n)
    start = rng.uniform(-0.5, 1.0, n) * frames - length / 2
    t = np.clip((np.arange(frames)[None] - start[:, None]) / length[:, None], 0.0, 1.0)
    step = t * t * (3 - 2 * t)
    return np.where((kind < 0.5)[:, None], 1.0, np.where((kind < 0.75)[:, None], step, 1.0 - step))


def seat(poses: np.ndarray, rng: np.random.Generator, seatedness: np.ndarray | None = None) -> np.ndarray:
    """Seat clips (N, T, 17, 3) (module docstring); returns a new array of the input's dtype.

    ``seatedness`` (N, T) in [0, 1]: how far each frame is turned towards the seated pose (1:
    seated); default: drawn (half the clips seated throughout, the others sitting down or up).
    """
    x = np.array(poses, dtype=np.result_type(poses.dtype, np.float32))
    n, frames = x.shape[:2]
    s = (_ramp(rng, n, frames) if seatedness is None else np.asarray(seatedness, x.dtype))[..., None]  # (N, T, 1)
    forward = facing(x)
    forward = _unit(forward - forward[..., 1:2] * UP)  # horizontal
    floor = x[..., [L_ANKLE, R_ANKLE], 1].min(axis=(1, 2))  # (N,) the feet's lowest height in the clip
    for hip, knee, ankle, side in LEGS:
        out = _unit(x[..., hip, :] - x[..., PELVIS, :])  # towards this side
        out = _unit(out - out[..., 1:2] * UP)
        flexion, shin, spread = (np.deg2rad(rng.uniform(*SEATED_RANGES[k], n))[:, None, None]
                                 for k in ("hip_flexion", "shin", "spread"))
        thigh_dir = -np.cos(flexion) * UP + np.sin(flexion) * (np.cos(spread) * forward + np.sin(spread) * out)
        shin_dir = -np.cos(shin) * UP + np.sin(shin) * forward + 0.5 * np.sin(spread) * out
        thigh_len = np.linalg.norm(x[..., knee, :] - x[..., hip, :], axis=-1, keepdims=True)
        shin_len = np.linalg.norm(x[..., ankle, :] - x[..., knee, :], axis=-1, keepdims=True)
        # each bone turns from its own direction to the seated one: lengths kept at every step
        thigh_now = _unit((1 - s) * _unit(x[..., knee, :] - x[..., hip, :]) + s * thigh_dir)
        shin_now = _unit((1 - s) * _unit(x[..., ankle, :] - x[..., knee, :]) + s * _unit(shin_dir))
        x[..., knee, :] = x[..., hip, :] + thigh_now * thigh_len
        x[..., ankle, :] = x[..., knee, :] + shin_now * shin_len
    # a seated person stays put: the hips' travel fades out, and the lower foot goes to the floor
    root = x[..., PELVIS, :] * [1.0, 0.0, 1.0]
    x -= (s * (root - root.mean(axis=1, keepdims=True)))[..., None, :]
    lift = floor[:, None] - x[..., [L_ANKLE, R_ANKLE], 1].min(axis=-1)  # (N, T)
    x[..., 1] += (s[..., 0] * lift)[..., None]
    return x
