"""Keypoint layouts: joint names, skeleton parents and left/right symmetry, as registry items.

A layout is looked up by name (``get_layout("h36m-17")``). Joint names starting with ``left_`` /
``right_`` define the mirror pairs used by flip augmentation and flip test-time averaging.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from posezoo.registry import KEYPOINT_LAYOUTS


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
