"""Sanity checks around :func:`posezoo.lift`: its arguments, the model, each track of 2D keypoints
before lifting and the 3D poses after, so that meaningless input gives an error or a warning
(:class:`~posezoo.errors.PosezooWarning`) instead of a plausible-looking pose.

Refused (:class:`~posezoo.errors.InputError`): coordinates that are inf or beyond ±1e6 px,
confidences outside [0, 1], every frame's joints at one point, most joints more than one image
size outside a known image, and non-finite outputs. Warned: joints with NaN in detected frames
(used as undetected), some collapsed frames, some joints far outside the image, frame-to-frame
motion as large as the skeleton (noise, or unrelated people under one track id).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from posezoo.errors import InputError, PosezooWarning

MAX_COORDINATE = 1e6  # pixels; beyond, the values are not image coordinates
COLLAPSED = 1e-4  # a frame whose visible joints span less than this x (1 + |coordinate|) is one point
OUTSIDE_REFUSED = 0.5  # share of visible joints more than one image size outside the image
OUTSIDE_WARNED = 0.05
NOISY_MOTION = 0.25  # median joint motion per frame / median skeleton size


def check_lift_args(image_size, fps, max_gap) -> tuple[int, int] | None:
    """``image_size`` as (width, height) whole pixels >= 1 (or None); refuse a bad fps or max_gap."""
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float, np.number))
                            or not math.isfinite(fps) or fps <= 0):
        raise InputError(f"fps must be a positive number of frames per second, got {fps!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise InputError(f"max_gap must be a whole number of frames >= 0, got {max_gap!r}")
    if image_size is None:
        return None
    size = np.asarray(image_size, dtype=object).ravel()
    if len(size) != 2 or not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                                 and math.isfinite(v) and v >= 1 and float(v).is_integer() for v in size):
        raise InputError(f"image size must be (width, height) in whole pixels >= 1, got {image_size!r}")
    return int(size[0]), int(size[1])


def check_device(device: str | torch.device) -> None:
    """Refuse a device name torch does not know, or one this machine does not have."""
    try:
        torch.empty(0, device=torch.device(device))
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise InputError(f"device {str(device)!r} is not usable here: {reason}") from None


def check_lift_model(model: torch.nn.Module) -> bool:
    """Refuse a model whose output is not 3D joints (..., T, J, 3), e.g. an action model or a mesh
    model without a body model; True for a mesh model whose dict output has the joints (``kp_3d``)."""
    with torch.inference_mode():
        out = model(model.example_input(batch=1).to(next(model.parameters()).device))
    joints = out.get("kp_3d") if isinstance(out, dict) else out
    if not (isinstance(joints, torch.Tensor) and joints.ndim == 4 and joints.shape[-1] == 3):
        head = getattr(model, "config", {}).get("head", {}).get("type", type(model).__name__)
        name = getattr(model, "meta", {}).get("name") or type(model).__name__
        instead = ("; a mesh head gives them (kp_3d) with a body model: create it with smpl_model_path= and "
                   "j_regressor_path=, or run model(x)['theta'] for SMPL pose and shape alone (posezoo.models.mesh)"
                   if isinstance(out, dict) and "theta" in out else "")
        raise InputError(f"{name} has a {head!r} head, not 3D joints: lift needs a model with a lift head{instead}")
    return isinstance(out, dict)


def check_track(track: np.ndarray, image_size: tuple[int, int] | None, what: str) -> np.ndarray:
    """A (T, J, 3) track (x, y pixels, confidence; NaN rows: undetected frames) checked as described
    in the module docstring; returns it with NaN joints of detected frames set to (0, 0, 0)."""
    track = np.array(track, dtype=np.float32)
    nan = np.isnan(track).any(-1)  # (T, J)
    detected = ~nan.all(-1)
    partial = nan & detected[:, None]
    if partial.any():
        track[partial] = 0
        warnings.warn(f"{what}: {int(partial.any(-1).sum())} detected frame(s) have NaN joints; "
                      "they are used as undetected (confidence 0)", PosezooWarning, stacklevel=3)
    rows = track[detected]
    if rows.size == 0:
        return track
    if not np.isfinite(rows).all() or np.abs(rows[..., :2]).max() > MAX_COORDINATE:
        raise InputError(f"{what}: coordinates are inf or beyond ±{MAX_COORDINATE:.0e} px: not image coordinates")
    confidence = rows[..., 2]
    if confidence.min() < 0 or confidence.max() > 1:
        raise InputError(f"{what}: confidences must lie in [0, 1], got {confidence.min():g} .. {confidence.max():g}")
    visible = confidence > 0
    points = np.where(visible[..., None], rows[..., :2], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without a visible joint give NaN
        span = np.nanmax(points, axis=1) - np.nanmin(points, axis=1)  # (T', 2)
        size = np.nanmax(span, axis=-1)
        scale = 1 + np.nanmax(np.abs(points), axis=(1, 2))
    counted = visible.sum(-1) >= 2
    collapsed = counted & (size <= COLLAPSED * scale)
    if counted.any() and collapsed[counted].all():
        raise InputError(f"{what}: in every frame all joints lie at one point; nothing to lift")
    if collapsed.any():
        warnings.warn(f"{what}: in {int(collapsed.sum())} frame(s) all joints lie at one point",
                      PosezooWarning, stacklevel=3)
    if image_size is not None:
        _check_inside(points[visible], image_size, what)
    _check_motion(points, size[counted & ~collapsed], what)
    return track


def _check_inside(points: np.ndarray, image_size: tuple[int, int], what: str) -> None:
    w, h = image_size
    outside = (points[:, 0] < -w) | (points[:, 0] > 2 * w) | (points[:, 1] < -h) | (points[:, 1] > 2 * h)
    share = float(outside.mean()) if len(points) else 0.0
    message = (f"{what}: {share:.0%} of the joints lie more than one image size outside the {w} x {h} image "
               f"(x {points[:, 0].min():.0f} .. {points[:, 0].max():.0f}, y {points[:, 1].min():.0f} .. "
               f"{points[:, 1].max():.0f}); is the image size right?")
    if share > OUTSIDE_REFUSED:
        raise InputError(message)
    if share > OUTSIDE_WARNED:
        warnings.warn(message, PosezooWarning, stacklevel=4)


def _check_motion(points: np.ndarray, sizes: np.ndarray, what: str) -> None:
    """Warn when joints move as far per frame as the skeleton is large (noise, not a person)."""
    if len(points) < 3 or len(sizes) == 0 or np.median(sizes) <= 0:
        return
    step = np.linalg.norm(np.diff(points, axis=0), axis=-1)  # NaN where a joint is not visible twice
    if np.isnan(step).all():
        return
    motion = float(np.nanmedian(step)) / float(np.median(sizes))
    if motion > NOISY_MOTION:
        warnings.warn(f"{what}: joints move {motion:.0%} of the skeleton's size per frame (median): this "
                      "looks like noise or several people under one track id, and the 3D result may be "
                      "meaningless", PosezooWarning, stacklevel=4)


def check_poses(poses: np.ndarray, what: str) -> None:
    """Refuse 3D output that is not finite (naming the first bad frame)."""
    bad = ~np.isfinite(poses)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0])
        raise InputError(f"{what}: the model's output holds NaN/inf (first in frame {frame}) for this input; "
                         "nothing written")
