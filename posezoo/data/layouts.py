"""Keypoint layouts: joint names, skeleton parents and left/right symmetry, as registry items,
and the registered conversions between them.

A layout is looked up by name (``get_layout("h36m-17")``). Joint names starting with ``left_`` /
``right_`` define the mirror pairs used by flip augmentation and flip test-time averaging.

Layouts: ``h36m-17``, ``coco-17``, ``halpe-26``, ``openpose-25`` (BODY_25), ``mediapipe-33``
(BlazePose), and the skeletons of the shared mocap files ``bandai-21``, ``cmu-38``,
``deepmimic-15`` (their source names, normalised by :func:`normalise_joint_names`).

Every layout converts to ``h36m-17`` (:func:`convert_keypoints`). A conversion is a table: each
target joint is one source joint, or a weighted sum of source joints (a mean, or an extrapolation
for joints the source lacks). ``KeypointConversion.approximate`` names the target joints that only
roughly correspond: score them separately.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from posezoo.registry import KEYPOINT_LAYOUTS, PartRegistry

# Conversions between layouts, registered as "<src>-><dst>".
KEYPOINT_CONVERSIONS = PartRegistry("keypoint conversion", scope="posezoo")


@dataclass(frozen=True)
class KeypointLayout:
    """Joint order of a skeleton. ``parents[i]`` is joint i's parent index (-1 for the root)."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...] | None = None
    description: str = ""

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"layout {self.name} has no joint {joint!r}; joints: {', '.join(self.joints)}") from None

    @functools.cached_property
    def mirror(self) -> tuple[int, ...]:
        """For each joint, the index of its mirror image (itself for central joints)."""
        out = []
        for name in self.joints:
            for a, b in (("left_", "right_"), ("right_", "left_")):
                if name.startswith(a) and name.replace(a, b, 1) in self.joints:
                    out.append(self.joints.index(name.replace(a, b, 1)))
                    break
            else:
                out.append(self.joints.index(name))
        return tuple(out)

    def flip(self, poses, axis: int = 0):
        """Mirror poses (..., J, C) left-right: negate channel ``axis`` (x) and swap mirror joints.

        Works on numpy arrays and torch tensors; other channels (y, z, confidence) are untouched.
        """
        if poses.shape[-2] != self.num_joints:
            raise ValueError(f"{self.name} has {self.num_joints} joints, poses have {poses.shape[-2]} on dim -2")
        index = list(self.mirror)
        flipped = poses[..., index, :]
        if isinstance(flipped, torch.Tensor):
            flipped = flipped.clone()
        else:
            flipped = np.array(flipped, copy=True)
        flipped[..., axis] = -flipped[..., axis]
        return flipped


def register_layout(layout: KeypointLayout) -> KeypointLayout:
    """Make ``layout`` findable by name through the ``KEYPOINT_LAYOUTS`` registry."""
    KEYPOINT_LAYOUTS.register_module(name=layout.name, module=functools.partial(lambda: layout))
    return layout


def get_layout(name: str) -> KeypointLayout:
    """The registered layout called ``name``; unknown names raise listing the known ones."""
    factory = KEYPOINT_LAYOUTS.get(name)
    if factory is None:
        raise KeyError(f"unknown keypoint layout {name!r}; known: {', '.join(KEYPOINT_LAYOUTS.names())}")
    return factory()


H36M_17 = register_layout(KeypointLayout(
    name="h36m-17",
    joints=("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
            "spine", "thorax", "nose", "head", "left_shoulder", "left_elbow", "left_wrist",
            "right_shoulder", "right_elbow", "right_wrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    description="Human3.6M 17 joints in MotionBERT/VideoPose3D order",
))


def normalise_joint_names(names: Sequence[str]) -> tuple[str, ...]:
    """Source joint names -> snake_case with ``left_`` / ``right_`` prefixes.

    Handles the side markers of the common sources: ``Shoulder_L`` (Bandai), ``LShoulder``
    (OpenPose), ``lhumerus`` (CMU ASF: only where the other side exists, so ``lowerback`` and
    ``root`` stay), ``mouth_left`` (MediaPipe). ``UpperArm_L`` -> ``left_upper_arm``.
    """
    names = [str(n) for n in names]
    lowered = {n.lower() for n in names}
    out = []
    for name in names:
        side, base = "", name
        if m := re.fullmatch(r"(.+?)[_ ]?([LR])", name):  # Shoulder_L
            side, base = m.group(2), m.group(1)
        elif m := re.fullmatch(r"([LR])([A-Z].*)", name):  # LShoulder
            side, base = m.group(1), m.group(2)
        elif m := re.fullmatch(r"(.+)_(left|right)", name):  # mouth_left
            side, base = m.group(2)[0].upper(), m.group(1)
        elif (m := re.fullmatch(r"([lr])([a-z].*)", name)) and \
                ({"l": "r", "r": "l"}[m.group(1)] + m.group(2)) in lowered:  # lhumerus (if rhumerus)
            side, base = m.group(1).upper(), m.group(2)
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower().strip("_")
        out.append({"L": "left_", "R": "right_", "": ""}[side] + base)
    if len(set(out)) != len(out):
        raise ValueError(f"normalised joint names are not unique: {out}")
    return tuple(out)


COCO_17 = register_layout(KeypointLayout(
    name="coco-17",
    joints=("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
            "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
            "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    description="COCO keypoints (17), as detectors such as HRNet/RTMPose output them",
))

HALPE_26 = register_layout(KeypointLayout(
    name="halpe-26",
    joints=COCO_17.joints + ("head", "neck", "hip", "left_big_toe", "right_big_toe",
                             "left_small_toe", "right_small_toe", "left_heel", "right_heel"),
    parents=(18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 19, 19, 11, 12, 13, 14, 18, 19, -1, 15, 16, 15,
             16, 15, 16),
    description="Halpe full body 26 (AlphaPose), the in-the-wild input of MotionBERT",
))

OPENPOSE_25 = register_layout(KeypointLayout(
    name="openpose-25",
    joints=normalise_joint_names((
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
        "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")),
    parents=(1, 8, 1, 2, 3, 1, 5, 6, -1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11),
    description="OpenPose BODY_25",
))

MEDIAPIPE_33 = register_layout(KeypointLayout(
    name="mediapipe-33",
    joints=normalise_joint_names((
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
        "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
        "right_heel", "left_foot_index", "right_foot_index")),
    parents=(-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, 11,
             12, 23, 24, 25, 26, 27, 28, 27, 28),
    description="MediaPipe Pose / BlazePose 33 landmarks (mouth_left -> left_mouth)",
))

BANDAI_21 = register_layout(KeypointLayout(
    name="bandai-21",
    joints=normalise_joint_names((
        "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L",
        "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L",
        "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R")),
    parents=(-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19),
    description="Bandai-Namco-Research-Motiondataset 1/2 BVH skeleton (joint centres; "
                "shoulder = clavicle, upper_arm = shoulder joint, upper_leg = hip joint)",
))

CMU_38 = register_layout(KeypointLayout(
    name="cmu-38",
    joints=normalise_joint_names((
        "root", "lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes", "ltoes_end", "rhipjoint",
        "rfemur", "rtibia", "rfoot", "rtoes", "rtoes_end", "lowerback", "upperback", "thorax",
        "lowerneck", "upperneck", "head", "head_end", "lclavicle", "lhumerus", "lradius", "lwrist",
        "lhand", "lfingers", "lfingers_end", "lthumb", "lthumb_end", "rclavicle", "rhumerus",
        "rradius", "rwrist", "rhand", "rfingers", "rfingers_end", "rthumb", "rthumb_end")),
    parents=(-1, 0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 0, 13, 14, 15, 16, 17, 18, 15, 20, 21, 22,
             23, 24, 25, 23, 27, 15, 29, 30, 31, 32, 33, 34, 32, 36),
    description="CMU mocap ASF skeleton (each joint named after the bone that starts there: "
                "femur = hip joint, tibia = knee, foot = ankle, humerus = shoulder, radius = elbow)",
))

DEEPMIMIC_15 = register_layout(KeypointLayout(
    name="deepmimic-15",
    joints=("root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder",
            "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder",
            "left_elbow", "left_wrist"),
    parents=(-1, 0, 1, 0, 3, 4, 1, 6, 7, 0, 9, 10, 1, 12, 13),
    description="DeepMimic humanoid reference motions (pybullet humanoid3d)",
))


def guess_layout(num_joints: int) -> KeypointLayout:
    """The only registered layout with ``num_joints`` joints; ambiguous or unknown counts raise
    ValueError naming the candidates (17 joints is H36M or COCO: name the layout)."""
    KEYPOINT_LAYOUTS.names()  # load built-in parts and plugins
    candidates = sorted(n for n in KEYPOINT_LAYOUTS.names() if get_layout(n).num_joints == num_joints)
    if len(candidates) == 1:
        return get_layout(candidates[0])
    if not candidates:
        known = ", ".join(f"{n} ({get_layout(n).num_joints})" for n in KEYPOINT_LAYOUTS.names())
        raise ValueError(f"no keypoint layout has {num_joints} joints; known: {known}")
    raise ValueError(f"{num_joints} joints is ambiguous: {', '.join(candidates)}; name the layout")


Rule = str | Sequence[str] | Mapping[str, float]


@dataclass(frozen=True)
class KeypointConversion:
    """A table from layout ``src`` to layout ``dst``.

    ``rules[dst_joint]`` is a source joint name, a sequence of names (their mean), or a mapping
    name -> weight (a weighted sum; weights sum to 1, so a confidence channel stays in [0, 1]).
    ``approximate`` lists the target joints that only roughly correspond to the source's.
    """

    src: str
    dst: str
    rules: Mapping[str, Rule]
    approximate: tuple[str, ...] = ()
    description: str = ""
    _table: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self):
        src, dst = get_layout(self.src), get_layout(self.dst)
        missing = [j for j in dst.joints if j not in self.rules]
        unknown = [j for j in self.rules if j not in dst.joints] + \
                  [j for j in self.approximate if j not in dst.joints]
        if missing or unknown:
            raise ValueError(f"conversion {self.src}->{self.dst}: rules miss {missing}, unknown {unknown}")
        terms = []
        for joint in dst.joints:
            rule = self.rules[joint]
            if isinstance(rule, str):
                rule = {rule: 1.0}
            elif not isinstance(rule, Mapping):
                rule = {name: 1.0 / len(rule) for name in rule}
            if abs(sum(rule.values()) - 1.0) > 1e-12:
                raise ValueError(f"conversion {self.src}->{self.dst}: weights of {joint} sum to "
                                 f"{sum(rule.values())}, not 1")
            terms.append([(src.index(name), float(w)) for name, w in rule.items()])
        width = max(len(t) for t in terms)
        # Pad with weight 0 on the joint's own first source, so that a NaN elsewhere stays there.
        index = np.array([[i for i, _ in t] + [t[0][0]] * (width - len(t)) for t in terms])
        weight = np.array([[w for _, w in t] + [0.0] * (width - len(t)) for t in terms])
        object.__setattr__(self, "_table", (index, weight))

    @property
    def index(self) -> np.ndarray:
        """(J_dst, K) source joint indices of each target joint's terms."""
        return self._table[0]

    @property
    def weight(self) -> np.ndarray:
        """(J_dst, K) weights of those terms (0 for padding)."""
        return self._table[1]

    def __call__(self, keypoints, conf_mode: str = "mean"):
        """Convert (..., J_src, C) numpy or torch keypoints to (..., J_dst, C), same dtype.

        ``conf_mode="mean"`` applies each rule to every channel, a confidence channel included
        (MotionBERT's halpe2h36m / coco2h36m). ``"min"`` treats the last channel as a confidence:
        a derived joint gets the smallest confidence of its sources, and a joint with confidence 0
        becomes (0, ..., 0), MotionBERT's marker for a missing joint.
        """
        num = get_layout(self.src).num_joints
        if keypoints.ndim < 2 or keypoints.shape[-2] != num:
            raise ValueError(f"{self.src} keypoints need {num} joints on dim -2 (..., J, C), "
                             f"got shape {tuple(keypoints.shape)}")
        if conf_mode not in ("mean", "min"):
            raise ValueError(f"conf_mode must be 'mean' or 'min', got {conf_mode!r}")
        is_torch = isinstance(keypoints, torch.Tensor)
        index, weight = self.index, self.weight
        if is_torch:
            index = torch.as_tensor(index, device=keypoints.device)
            weight = torch.as_tensor(weight, dtype=keypoints.dtype, device=keypoints.device)
        gathered = keypoints[..., index, :]  # (..., J_dst, K, C)
        out = (gathered * weight[..., None]).sum(-2)
        if conf_mode == "min":
            used = weight != 0
            big = torch.finfo(keypoints.dtype).max if is_torch else np.inf
            conf = gathered[..., -1]
            conf = torch.where(used, conf, big) if is_torch else np.where(used, conf, big)
            conf = conf.amin(-1) if is_torch else conf.min(-1)
            out[..., -1] = conf
            out = out * (conf != 0)[..., None]
        return out


def register_conversion(conversion: KeypointConversion) -> KeypointConversion:
    """Make ``conversion`` findable by :func:`get_conversion` (``"<src>-><dst>"``)."""
    KEYPOINT_CONVERSIONS.register_module(name=f"{conversion.src}->{conversion.dst}",
                                         module=functools.partial(lambda: conversion))
    return conversion


def get_conversion(src: str, dst: str) -> KeypointConversion:
    """The registered conversion from ``src`` to ``dst`` (an identity table when they are equal)."""
    if src == dst:
        return _identity(src)
    factory = KEYPOINT_CONVERSIONS.get(f"{src}->{dst}")
    if factory is None:
        raise KeyError(f"no keypoint conversion {src}->{dst}; known: {', '.join(KEYPOINT_CONVERSIONS.names())}")
    return factory()


@functools.lru_cache(maxsize=None)
def _identity(name: str) -> KeypointConversion:
    return KeypointConversion(name, name, {j: j for j in get_layout(name).joints})


def convert_keypoints(keypoints, src: str | KeypointLayout | None, dst: str | KeypointLayout,
                      conf_mode: str = "mean"):
    """Convert (..., J, C) numpy or torch keypoints from layout ``src`` to ``dst``.

    ``src=None`` guesses the layout from J (:func:`guess_layout`). A wrong joint count raises
    ValueError naming the expected and actual counts. See :meth:`KeypointConversion.__call__` for
    ``conf_mode``.
    """
    if src is None:
        src = guess_layout(keypoints.shape[-2])
    name = lambda layout: layout.name if isinstance(layout, KeypointLayout) else layout  # noqa: E731
    return get_conversion(name(src), name(dst))(keypoints, conf_mode=conf_mode)


# --- Conversions to h36m-17 -----------------------------------------------------------------
# COCO convention (MotionBERT's coco2h36m, mmpose): pelvis = mean hips, thorax = mean shoulders,
# spine = mean(pelvis, thorax), nose = nose, head = mean eyes.
_LIMBS = {f"{s}_{j}": f"{s}_{j}" for s in ("left", "right")
          for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")}
_HIPS_SHOULDERS = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
_COCO_RULE = {**_LIMBS, "pelvis": ("left_hip", "right_hip"), "thorax": ("left_shoulder", "right_shoulder"),
              "spine": _HIPS_SHOULDERS, "nose": "nose", "head": ("left_eye", "right_eye")}

register_conversion(KeypointConversion(
    "coco-17", "h36m-17", _COCO_RULE, approximate=("spine", "thorax", "head"),
    description="MotionBERT coco2h36m (lib/data/dataset_action.py)"))
register_conversion(KeypointConversion(
    "halpe-26", "h36m-17",
    {**_LIMBS, "pelvis": "hip", "spine": ("neck", "hip"), "thorax": "neck", "nose": "nose", "head": "head"},
    approximate=("spine",), description="MotionBERT halpe2h36m (lib/data/dataset_wild.py)"))
register_conversion(KeypointConversion(
    "openpose-25", "h36m-17", _COCO_RULE, approximate=("spine", "thorax", "head"),
    description="the COCO convention by name (BODY_25's mid_hip / neck are not used: the hip and "
                "shoulder means match H36M's pelvis and the official coco2h36m)"))
register_conversion(KeypointConversion(
    "mediapipe-33", "h36m-17", _COCO_RULE, approximate=("spine", "thorax", "head"),
    description="the COCO convention by name (eyes = MediaPipe's eye centres)"))

# Mocap skeletons: limbs by joint centre; pelvis = mean of the hip joints (the source roots sit a
# few cm above); the head joints, which the sources place differently, are approximations.
register_conversion(KeypointConversion(
    "bandai-21", "h36m-17",
    {"pelvis": ("left_upper_leg", "right_upper_leg"),
     **{f"{s}_{h}": f"{s}_{b}" for s in ("left", "right") for h, b in (
         ("hip", "upper_leg"), ("knee", "lower_leg"), ("ankle", "foot"), ("shoulder", "upper_arm"),
         ("elbow", "lower_arm"), ("wrist", "hand"))},
     "spine": "chest", "thorax": "neck", "nose": "head",
     # Bandai's head joint sits only ~6 cm above its neck: extend the neck twice more for the top.
     "head": {"head": 3.0, "neck": -2.0}},
    approximate=("spine", "thorax", "nose", "head"),
    description="Bandai: upper_leg/lower_leg/foot = hip/knee/ankle, upper_arm/lower_arm/hand = "
                "shoulder/elbow/wrist; spine = chest, thorax = neck, nose = head joint, "
                "head top = head + 2 (head - neck)"))
register_conversion(KeypointConversion(
    "cmu-38", "h36m-17",
    {"pelvis": ("left_femur", "right_femur"),
     **{f"{s}_{h}": f"{s}_{b}" for s in ("left", "right") for h, b in (
         ("hip", "femur"), ("knee", "tibia"), ("ankle", "foot"), ("shoulder", "humerus"),
         ("elbow", "radius"), ("wrist", "wrist"))},
     "spine": "upperback", "thorax": "thorax", "nose": "upperneck", "head": "head_end"},
    approximate=("spine", "thorax", "nose", "head"),
    description="CMU ASF: femur/tibia/foot = hip/knee/ankle, humerus/radius/wrist = "
                "shoulder/elbow/wrist; spine = upperback, thorax, nose = upperneck, head = head_end"))
register_conversion(KeypointConversion(
    "deepmimic-15", "h36m-17",
    {"pelvis": "root", **_LIMBS, "spine": "chest", "thorax": "neck",
     # No head joints: extend the chest->neck segment by half and by one length.
     "nose": {"neck": 1.5, "chest": -0.5}, "head": {"neck": 2.0, "chest": -1.0}},
    approximate=("spine", "thorax", "nose", "head"),
    description="DeepMimic: same-named limbs, pelvis = root, spine = chest, thorax = neck; "
                "nose and head extrapolated along chest->neck (0.5 and 1 segment beyond the neck)"))
