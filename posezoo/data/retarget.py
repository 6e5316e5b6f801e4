"""Mocap skeletons -> Human3.6M's joint definitions and proportions, with proportion augmentation.

The open mocap files (Bandai-Namco, CMU, DeepMimic) converted to ``h36m-17`` by name keep their
marker skeletons: hips 0.33-0.43 thigh lengths apart where Human3.6M's are 0.60, a thorax at the
neck instead of level with the shoulders, no face points, and a smaller body (Bandai's thigh is
391 mm, H36M's 452 mm). A lifter trained on them learns the wrong skeleton. :func:`retarget_h36m`
moves the joints to where Human3.6M defines them, following the published H36M-17 skeleton
(VideoPose3D ``h36m_skeleton``, QuaterNet's S1 offsets, PoseAug's per-subject bone lengths;
``shared/reference/transfer.md`` §1.2-1.4):

- body size: the clip is scaled about its pelvis so that the mean thigh is ``thigh`` metres;
- hips: moved along the hip axis to ``hip_width`` thighs apart (knees and feet stay);
- thorax: the shoulders' midpoint, moved with the whole upper body along the trunk so that the
  pelvis-thorax distance is ``trunk`` thighs; spine at ``spine`` of the way up, keeping the
  mocap chest's bend;
- shoulders: ``shoulder_width`` thighs apart, arms carried rigidly;
- nose/neck (9) and head (10): synthesised from the head's up direction and the body's facing:
  ``nose`` thighs from the thorax, forward and up, and ``head`` thighs, mostly up.

Every ratio can be a number or an array per clip, so training draws proportions per clip within
the H36M subjects' ranges (:func:`draw_proportions`). Shapes: poses (..., T, 17, 3) metres, Y up.
"""
from __future__ import annotations

import numpy as np

# H36M-17 joint indices.
PELVIS, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, SPINE, THORAX, NOSE, HEAD = range(11)
L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = range(11, 17)
LEFT_ARM, RIGHT_ARM = (L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)

H36M_PROPORTIONS = dict(thigh=0.452, hip_width=0.60, trunk=1.10, spine=0.48, shoulder_width=0.67,
                        nose=0.27, head=0.41)
"""Mean Human3.6M proportions (training subjects S1, S5-S8): thigh in metres, the rest in thighs."""

PROPORTION_RANGES = dict(thigh=(0.40, 0.50), hip_width=(0.56, 0.65), trunk=(1.05, 1.15), spine=(0.46, 0.51),
                         shoulder_width=(0.61, 0.75), nose=(0.24, 0.30), head=(0.37, 0.47))
"""Ranges drawn for augmentation: the H36M subjects' spread, the thigh a little wider (1.5-1.9 m people)."""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _per_clip(value, lead: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A number or an array over the leading (clip) dims -> shape lead + (1, 1, 1) for (..., T, J, 3)."""
    return np.broadcast_to(np.asarray(value, dtype), lead).reshape(lead + (1, 1, 1))


def draw_proportions(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` random proportion sets, uniform in :data:`PROPORTION_RANGES`."""
    return {k: rng.uniform(lo, hi, n) for k, (lo, hi) in PROPORTION_RANGES.items()}


def thigh_length(poses: np.ndarray) -> np.ndarray:
    """Mean thigh (hip-knee) length of each clip: (..., T, 17, 3) -> (...)."""
    thighs = np.linalg.norm(poses[..., [R_KNEE, L_KNEE], :] - poses[..., [R_HIP, L_HIP], :], axis=-1)
    return thighs.mean(axis=(-1, -2))


def facing(poses: np.ndarray) -> np.ndarray:
    """Unit forward direction of the body per frame (..., T, 3): hip axis (left - right) x trunk up."""
    left = poses[..., L_HIP, :] - poses[..., R_HIP, :]
    up = poses[..., THORAX, :] - poses[..., PELVIS, :]
    return _unit(np.cross(left, up))


def retarget_h36m(poses: np.ndarray, proportions: dict | None = None) -> np.ndarray:
    """Move mocap joints (already in h36m-17 order by name) to Human3.6M's definitions.

    poses: (..., T, 17, 3) metres, Y up; ``proportions``: overrides of :data:`H36M_PROPORTIONS`, each a
    number or an array over the leading dims (one value per clip). Returns a new array (float32 for
    float32 input, else float64).
    """
    p = {**H36M_PROPORTIONS, **(proportions or {})}
    lead = poses.shape[:-3]
    x = np.array(poses, dtype=np.result_type(poses.dtype, np.float32))
    clip = lambda key: _per_clip(p[key], lead, x.dtype)[..., 0, :]  # noqa: E731  (..., 1, 1)
    pelvis = (x[..., R_HIP, :] + x[..., L_HIP, :])[..., None, :] / 2
    x = pelvis + (x - pelvis) * (_per_clip(p["thigh"], lead, x.dtype) / _per_clip(thigh_length(x), lead, x.dtype))
    thigh = clip("thigh")
    pelvis = pelvis[..., 0, :]
    x[..., PELVIS, :] = pelvis  # H36M's pelvis is the hips' midpoint, never a marker above it
    old = x.copy()

    # Hips: symmetric about the pelvis along the hip axis.
    half = _unit(x[..., L_HIP, :] - x[..., R_HIP, :]) * (thigh * clip("hip_width") / 2)
    x[..., L_HIP, :], x[..., R_HIP, :] = pelvis + half, pelvis - half

    # Thorax between the shoulders, the upper body carried along the trunk to the target height.
    upper = [THORAX, NOSE, HEAD, *LEFT_ARM, *RIGHT_ARM]
    shoulders_mid = (old[..., L_SHOULDER, :] + old[..., R_SHOULDER, :]) / 2
    thorax = pelvis + _unit(shoulders_mid - pelvis) * (thigh * clip("trunk"))
    x[..., upper, :] += (thorax - shoulders_mid)[..., None, :]
    x[..., THORAX, :] = thorax

    # Spine on the pelvis-thorax line at the target fraction, plus the mocap chest's bend off its line.
    axis0 = old[..., THORAX, :] - pelvis
    along = (np.sum((old[..., SPINE, :] - pelvis) * axis0, -1, keepdims=True)
             / np.maximum(np.sum(axis0 * axis0, -1, keepdims=True), 1e-9))
    bend = old[..., SPINE, :] - (pelvis + along * axis0)
    x[..., SPINE, :] = pelvis + clip("spine") * (thorax - pelvis) + bend

    # Shoulders at the target width; each arm moves rigidly with its shoulder.
    half = _unit(x[..., L_SHOULDER, :] - x[..., R_SHOULDER, :]) * (
        thigh * clip("shoulder_width") / 2)
    for arm, new in ((LEFT_ARM, thorax + half), (RIGHT_ARM, thorax - half)):
        x[..., arm, :] += (new - x[..., arm[0], :])[..., None, :]

    # Face points from the head's up direction (the mocap neck -> head top) and the body's facing.
    head_up = _unit(old[..., HEAD, :] - old[..., THORAX, :])
    forward = facing(old)
    forward = _unit(forward - np.sum(forward * head_up, -1, keepdims=True) * head_up)
    x[..., NOSE, :] = thorax + _unit(head_up + forward) * (thigh * clip("nose"))
    x[..., HEAD, :] = thorax + _unit(head_up + 0.2 * forward) * (thigh * clip("head"))
    return x


LIMB_CHAINS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE), LEFT_ARM, RIGHT_ARM)
"""(root, middle, end) joints of the four limbs: thigh/shin, upper arm/forearm."""


def scale_limbs(poses: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Scale each limb's two bones about its root, carrying the joints below: ``upper`` / ``lower``
    (..., 4) factors for (right leg, left leg, left arm, right arm). poses (..., T, 17, 3) -> new array."""
    x = np.array(poses, dtype=np.result_type(poses.dtype, np.float32))
    for i, (root, mid, end) in enumerate(LIMB_CHAINS):
        u = np.asarray(upper, x.dtype)[..., i][..., None, None]
        low = np.asarray(lower, x.dtype)[..., i][..., None, None]
        bone1 = x[..., mid, :] - x[..., root, :]
        bone2 = x[..., end, :] - x[..., mid, :]
        x[..., mid, :] = x[..., root, :] + bone1 * u
        x[..., end, :] = x[..., mid, :] + bone2 * low
    return x
