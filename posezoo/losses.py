"""Training losses of the zoo's tasks, as plain functions on tensors.

Pose losses take ``pred`` and ``target`` of shape (..., T, J, C) (any leading dims) and return a
scalar. The limb and angle losses use the H36M-17 skeleton (MotionBERT's ``lib/model/loss.py``
definitions: 16 limbs, 18 limb pairs); they raise on another joint count. All reproduce the official
functions to float64 round-off. ``POSE_LOSSES`` maps the names used in task configs to functions
with the common signature ``(pred, target) -> scalar``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# (parent, child) joint pairs of H36M-17 whose difference is a limb vector.
H36M_LIMBS = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
              (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))
# Pairs of limb indices whose angle is compared by the angle losses.
H36M_LIMB_PAIRS = ((0, 3), (0, 6), (3, 6), (0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 10), (7, 13),
                   (8, 13), (10, 13), (7, 8), (8, 9), (10, 11), (11, 12), (13, 14), (14, 15))


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.ndim < 3:
        raise ValueError(f"expected poses (..., T, J, C), got shape {tuple(pred.shape)}")


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error: mean L2 distance over all leading dims, frames and joints."""
    _check_pair(pred, target)
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def scale_to(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred`` scaled per frame by the least-squares factor that best matches ``target`` (N-MPJPE)."""
    num = (target * pred).sum(-1, keepdim=True).mean(-2, keepdim=True)
    den = (pred * pred).sum(-1, keepdim=True).mean(-2, keepdim=True)
    return pred * (num / den)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after a per-frame scale-only alignment of ``pred`` to ``target``."""
    _check_pair(pred, target)
    return mpjpe(scale_to(pred, target), target)


def velocity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L2 error of the frame-to-frame displacements (0 for a single frame)."""
    _check_pair(pred, target)
    if pred.shape[-3] <= 1:
        return pred.new_zeros(())
    return mpjpe(pred.diff(dim=-3), target.diff(dim=-3))


def _limbs(x: torch.Tensor) -> torch.Tensor:
    """H36M-17 limb vectors (..., T, 16, C)."""
    if x.shape[-2] != 17:
        raise ValueError(f"limb and angle losses use the h36m-17 skeleton: expected 17 joints, got {x.shape[-2]}")
    a, b = zip(*H36M_LIMBS)
    return x[..., list(a), :] - x[..., list(b), :]


def limb_lengths(x: torch.Tensor) -> torch.Tensor:
    """(..., T, 17, 3) -> (..., T, 16) H36M limb lengths."""
    return torch.linalg.vector_norm(_limbs(x), dim=-1)


def limb_var(pred: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over limbs of the (unbiased) variance of each limb length over time; ``target`` unused."""
    if pred.shape[-3] <= 1:
        return pred.new_zeros(())
    return limb_lengths(pred).var(dim=-2).mean()


def limb_gt(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 error of the limb lengths."""
    _check_pair(pred, target)
    return F.l1_loss(limb_lengths(pred), limb_lengths(target))


def limb_angles(x: torch.Tensor) -> torch.Tensor:
    """(..., T, 17, 3) -> (..., T, 18) angles in radians between pairs of H36M limbs."""
    limbs = _limbs(x)
    a, b = zip(*H36M_LIMB_PAIRS)
    cos = F.cosine_similarity(limbs[..., list(a), :], limbs[..., list(b), :], dim=-1)
    return torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))


def angle(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 error of the limb-pair angles."""
    _check_pair(pred, target)
    return F.l1_loss(limb_angles(pred), limb_angles(target))


def angle_velocity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 error of the frame-to-frame change of the limb-pair angles (0 for a single frame)."""
    _check_pair(pred, target)
    if pred.shape[-3] <= 1:
        return pred.new_zeros(())
    return F.l1_loss(limb_angles(pred).diff(dim=-2), limb_angles(target).diff(dim=-2))


def weighted_2d(pred: torch.Tensor, target: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Reprojection loss: mean L2 norm of the confidence-weighted x, y error.

    pred (..., J, >=2), target (..., J, >=2), confidence (..., J, 1) or (..., J); the weight
    multiplies the difference vector, as MotionBERT's ``loss_2d_weighted`` does.
    """
    if confidence.ndim == pred.ndim - 1:
        confidence = confidence.unsqueeze(-1)
    return torch.linalg.vector_norm((pred[..., :2] - target[..., :2]) * confidence, dim=-1).mean()


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth-L1 (Huber) joint loss, mean over every element."""
    _check_pair(pred, target)
    return F.smooth_l1_loss(pred, target, beta=beta)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Classification loss: logits (B, K), integer labels (B,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (B, K) and labels (B,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)


def vq_commitment(features: torch.Tensor, quantised: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """VQ-VAE commitment loss ``beta * mse(features, sg(quantised))``: pulls encoder features to
    their (fixed) codes; the codebook itself is updated elsewhere (EMA)."""
    return beta * F.mse_loss(features, quantised.detach())


POSE_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mpjpe": mpjpe,
    "n_mpjpe": n_mpjpe,
    "velocity": velocity,
    "limb_var": limb_var,
    "limb_gt": limb_gt,
    "angle": angle,
    "angle_velocity": angle_velocity,
    "smooth_l1": smooth_l1,
}


def weighted_pose_loss(pred: torch.Tensor, target: torch.Tensor, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """``{"loss_<name>": weight * POSE_LOSSES[name](pred, target)}`` for every non-zero weight."""
    unknown = sorted(set(weights) - set(POSE_LOSSES))
    if unknown:
        raise KeyError(f"unknown pose loss(es) {unknown}; known: {', '.join(POSE_LOSSES)}")
    return {f"loss_{name}": w * POSE_LOSSES[name](pred, target) for name, w in weights.items() if w}


def _root_relative(x: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    return x - root[..., :1, :]


def smpl_pose_l1(pred_rotmat: torch.Tensor, target_pose: torch.Tensor) -> torch.Tensor:
    """L1 between predicted rotation matrices (..., 24, 3, 3) and those of the target axis-angle
    pose (..., 72) (MotionBERT's ``loss_pose``; the official code turns the predicted axis-angle back
    into matrices, which gives the predicted matrices up to round-off)."""
    from posezoo.models.mesh import axis_angle_to_rotmat

    return F.l1_loss(pred_rotmat, axis_angle_to_rotmat(target_pose.unflatten(-1, (-1, 3))))


MESH_TERMS = ("pose", "shape", "norm", "verts")


def weighted_mesh_loss(pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """MotionBERT's ``MeshLoss`` (L1), each term times its weight, as ``{"loss_<name>": ...}``.

    ``pred``: the mesh head's ``theta`` (..., T, 82), ``rotmat`` (..., T, 24, 3, 3), ``kp_3d``
    (..., T, 17, 3) mm and ``verts`` (..., T, V, 3) mm; ``target``: ``theta``, ``kp_3d``, ``verts``.
    Names of ``POSE_LOSSES`` score the joints, both made relative to their joint 0 (mm, so
    ``mpjpe`` is in mm); ``pose``: :func:`smpl_pose_l1`; ``shape``: L1 of the betas; ``norm``: mean
    L2 norm of the predicted theta (82); ``verts``: mean vertex distance (mm) after subtracting each
    mesh's joint 0 (not an official term; MPVE as a loss). Zero weights are skipped.
    """
    unknown = sorted(set(weights) - set(POSE_LOSSES) - set(MESH_TERMS))
    if unknown:
        raise KeyError(f"unknown mesh loss(es) {unknown}; known: {', '.join([*POSE_LOSSES, *MESH_TERMS])}")
    joint_weights = {k: w for k, w in weights.items() if k in POSE_LOSSES}
    out = weighted_pose_loss(_root_relative(pred["kp_3d"], pred["kp_3d"]),
                             _root_relative(target["kp_3d"], target["kp_3d"]), joint_weights)
    terms = {
        "pose": lambda: smpl_pose_l1(pred["rotmat"], target["theta"][..., :72]),
        "shape": lambda: F.l1_loss(pred["theta"][..., 72:], target["theta"][..., 72:]),
        "norm": lambda: torch.linalg.vector_norm(pred["theta"], dim=-1).mean(),
        "verts": lambda: mpjpe(_root_relative(pred["verts"], pred["kp_3d"]),
                               _root_relative(target["verts"], target["kp_3d"])),
    }
    out.update({f"loss_{name}": weights[name] * terms[name]() for name in MESH_TERMS if weights.get(name)})
    return out
