"""``posezoo.lift`` scored end to end on Human3.6M-format files: what a user of the lifting API gets
(gap filling, pose-frame or screen normalisation, the model, flip, smoothing and rigid bones), not
the training recipe's scoring of the bare model.

The protocol is Human3.6M's usual one: the test subjects' (S9, S11) every video of every camera,
every frame, 17 joints, root-relative MPJPE (protocol 1) and P-MPJPE (protocol 2, Procrustes per
frame), in mm; averaged over all frames and per action (trials apart, as the files name them).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from posezoo.evaluation.functional import mpjpe, p_mpjpe


@dataclass
class Video:
    """One camera's view of one action: ``keypoints`` (T, 17, 3) pixels + confidence (0: missing),
    ``target`` (T, 17, 3) camera frame, root-relative, metres; image ``size`` (width, height)."""

    subject: str
    action: str
    camera: str
    keypoints: np.ndarray
    target: np.ndarray
    size: tuple[int, int]


def h36m_videos(data_3d, data_2d, cameras=None, subjects=None, actions=None) -> tuple[list[Video], list[str]]:
    """The test videos of VideoPose3D-format files (read and paired by
    :class:`posezoo.data.datasets.VideoPose3DH36MDataset`) with their 2D back in pixels, and the
    views the 2D file lacks."""
    from posezoo.data.datasets import VideoPose3DH36MDataset

    dataset = VideoPose3DH36MDataset(data_3d, data_2d, cameras, split="test", subjects=subjects,
                                     actions=actions, flip=False)
    videos = []
    for seq in dataset.sequences:
        meta = seq["meta"]
        w, h = meta["width"], meta["height"]
        xy, conf = seq["inputs"][..., :2], seq["inputs"][..., 2:]
        pixels = (xy + np.array([1.0, h / w], np.float32)) * (w / 2)  # inverse of normalize_screen_coordinates
        keypoints = np.concatenate([pixels, conf], axis=-1) * (conf > 0)
        videos.append(Video(meta["subject"], meta["action"], meta["camera"], keypoints.astype(np.float32),
                            seq["target"], (int(w), int(h))))
    return videos, list(dataset.missing_views)


def score_lift(videos: list[Video], model="tcn-s-81f-lift.mocap", fps: float = 50.0, flip: bool = False,
               dtype: str | None = None, progress: Callable[[int, int], None] | None = None, **lift_args) -> dict:
    """Lift every video with :func:`posezoo.lift` and score it.

    Returns ``{"frames", "mpjpe", "p_mpjpe"}`` (mm, every frame counts once), ``"action_avg"``
    ({"mpjpe", "p_mpjpe"}: per action, then over actions) and ``"videos"`` (one row per video).
    ``lift_args`` go to :func:`posezoo.lift` (``rigid_bones``, ``smooth``, ...).
    """
    from posezoo.lifting import Lifter, lift

    lifter = model if isinstance(model, Lifter) else Lifter(model, dtype=dtype)
    total, done = sum(len(v.keypoints) for v in videos), 0
    rows, per_action = [], defaultdict(lambda: [[], []])
    for video in videos:
        result = lift(video.keypoints, layout="h36m-17", image_size=video.size, model=lifter, fps=fps, flip=flip,
                      scale=True, **lift_args)
        pred = 1000.0 * next(iter(result.poses.values()))
        target = 1000.0 * video.target[:len(pred)]
        errors = mpjpe(pred, target), p_mpjpe(pred, target)
        rows.append(dict(subject=video.subject, action=video.action, camera=video.camera, frames=len(pred),
                         mpjpe=float(errors[0].mean()), p_mpjpe=float(errors[1].mean())))
        for store, err in zip(per_action[video.action], errors):
            store.append(err)
        done += len(pred)
        if progress is not None:
            progress(done, total)
    frames = sum(r["frames"] for r in rows)
    out = {"frames": frames,
           **{k: sum(r[k] * r["frames"] for r in rows) / frames for k in ("mpjpe", "p_mpjpe")},
           "action_avg": {k: float(np.mean([np.concatenate(v[i]).mean() for v in per_action.values()]))
                          for i, k in enumerate(("mpjpe", "p_mpjpe"))},
           "videos": rows}
    return out
