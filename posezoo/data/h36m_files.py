"""Human3.6M-format files made from the shared mocap: a stand-in for the real dataset (which posezoo
cannot ship) that exercises the H36M recipes end to end and measures them.

Written in exactly the formats users hold: VideoPose3D's ``data_3d_h36m.npz`` (world Z up, metres,
17 joints) and ``data_2d_h36m_gt.npz`` (ground-truth projections, pixels, H36M-17 order), mmpose's
``cameras.pkl`` (``X_cam = (X_world - T) @ R``; four cameras per subject, H36M-like: 1000 x 1002 px,
f 1145 px, about 5 m from the origin at 1.5 m height, no distortion) and MotionBERT's
``h36m_sh_conf_cam_source_final.pkl`` (confidence 1). Clips are split by :func:`clip_split`;
training clips go round robin to S1, S5, S6, S7, S8, held-out ones to S9, S11; the clip name is
the action name.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from posezoo.data import transforms as T
from posezoo.data.datasets import H36M_SUBJECTS, clip_split
from posezoo.data.layouts import convert_keypoints
from posezoo.data.readers import H36M_CAMERAS, read_motion_npz
from posezoo.data.retarget import retarget_h36m

H36M_FPS = 50.0
# (azimuth degrees, distance m, height m) of the four cameras, looking at (0, 0, 0.9) m
CAMERA_PLACES = ((45.0, 5.0, 1.5), (135.0, 5.2, 1.6), (-45.0, 4.8, 1.45), (-135.0, 5.5, 1.55))
FOCAL, CENTRE, SIZE = 1145.0, (512.0, 515.0), (1000, 1002)


def h36m_cameras(subjects) -> dict[tuple[str, str], dict]:
    """mmpose-format cameras: {(subject, camera id): {R (3, 3), T (3, 1) centre in metres, f, c, k, p, w, h, name}}."""
    cams = {}
    for i, (cam_id, (azimuth, distance, height)) in enumerate(zip(H36M_CAMERAS, CAMERA_PLACES)):
        a = np.deg2rad(azimuth)
        centre = np.array([distance * np.cos(a), distance * np.sin(a), height])
        forward = np.array([0.0, 0.0, 0.9]) - centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        rotation = np.stack([right, np.cross(forward, right), forward], axis=1)  # columns: camera axes
        for subject in subjects:
            cams[(subject, cam_id)] = dict(R=rotation, T=centre.reshape(3, 1), f=np.full((2, 1), FOCAL),
                                           c=np.array(CENTRE).reshape(2, 1), k=np.zeros((3, 1)), p=np.zeros((2, 1)),
                                           w=SIZE[0], h=SIZE[1], name=cam_id, id=i)
    return cams


def _longest_run(inside: np.ndarray) -> slice:
    """The longest run of True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    if not len(starts):
        return slice(0, 0)
    best = int(np.argmax(stops - starts))
    return slice(int(starts[best]), int(stops[best]))


def mocap_subjects(files, test_every: int = 5, max_frames: int | None = None, area: float = 2.0,
                   split_rule: str = "hash", retarget: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """{subject: {clip name: (T, 17, 3) world Z-up metres at 50 fps}} from shared mocap files, split
    by clip (``split_rule``: see :func:`clip_split`; ``"auto"`` is the split the default lifter's
    recipe holds out). Each clip's mean root is moved to x = y = 0 and the clip is cut to its
    longest run with the root within ``area`` metres of it (the capture area: every camera sees the
    whole body), then to ``max_frames``; clips left shorter than 27 frames are dropped.
    ``retarget``: joints moved to Human3.6M's definitions at its mean proportions
    (:func:`posezoo.data.retarget.retarget_h36m`), as the lifters trained on the mocap output them."""
    subjects: dict[str, dict[str, np.ndarray]] = {s: {} for split in ("train", "test") for s in H36M_SUBJECTS[split]}
    turn = {"train": 0, "test": 0}
    for path in [files] if isinstance(files, (str, Path)) else files:
        motion = read_motion_npz(path)
        for ci, split in enumerate(clip_split(motion.clip_names, split_rule, test_every)):
            clip = convert_keypoints(motion.clip(ci).astype(np.float64), motion.layout.name, "h36m-17")
            if retarget:
                clip = retarget_h36m(clip[None])[0]
            clip = T.interpolate_frames(clip, T.resample_fps(len(clip), float(motion.fps[ci]), H36M_FPS))
            world = clip @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # Y up -> Z up
            world[..., :2] -= world[:, 0, :2].mean(axis=0)
            world = world[_longest_run(np.linalg.norm(world[:, 0, :2], axis=-1) <= area)][:max_frames]
            if len(world) < 27:
                continue
            names = H36M_SUBJECTS[split]
            subjects[names[turn[split] % len(names)]][motion.clip_names[ci]] = world.astype(np.float32)
            turn[split] += 1
    return subjects


def project(world: np.ndarray, cam: dict) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 3) -> (camera-frame points (..., 3) metres, pixels (..., 2))."""
    points = (world - cam["T"].reshape(3)) @ cam["R"]
    return points, points[..., :2] / points[..., 2:] * cam["f"].reshape(2) + cam["c"].reshape(2)


H36M_2D_METADATA = {"layout_name": "h36m", "num_joints": 17,
                    "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


def write_videopose3d_files(folder, subjects: dict, cameras: dict) -> dict[str, Path]:
    """``data_3d_h36m.npz``, ``data_2d_h36m_gt.npz`` and ``cameras.pkl`` in ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses_2d = {s: {a: [project(w, cameras[(s, c)])[1].astype(np.float32) for c in H36M_CAMERAS]
                    for a, w in actions.items()} for s, actions in subjects.items()}
    paths = {"data_3d": folder / "data_3d_h36m.npz", "data_2d": folder / "data_2d_h36m_gt.npz",
             "cameras": folder / "cameras.pkl"}
    np.savez_compressed(paths["data_3d"], positions_3d=subjects)
    np.savez_compressed(paths["data_2d"], positions_2d=poses_2d, metadata=H36M_2D_METADATA)
    paths["cameras"].write_bytes(pickle.dumps(cameras, protocol=4))
    return paths


def write_detected_2d(folder, subjects: dict, cameras: dict, seed: int = 0, level: float = 1.0) -> Path:
    """``data_2d_h36m_sh_like.npz``: the ground-truth projections with detector-like errors in
    Stacked Hourglass's form (16 joints, x, y without confidence; H36M's neck/nose joint absent), as
    ``data_2d_h36m_sh_pt_mpii.npz``. The errors are MotionBERT's detector model
    (:data:`posezoo.data.synthetic.DETECTOR_NOISE`, fit to Human3.6M detections) at ``level`` times
    its size, in each camera's screen units (half the image width)."""
    from posezoo.data.datasets import SH_16_TO_H36M_17
    from posezoo.data.synthetic import DETECTOR_NOISE

    rng = np.random.default_rng(seed)
    keep = [SH_16_TO_H36M_17.index(k) for k in range(16)]  # H36M-17 joint of each SH joint
    poses_2d = {}
    for s, actions in subjects.items():
        poses_2d[s] = {}
        for a, w in actions.items():
            views = []
            for c in H36M_CAMERAS:
                pixels = project(w, cameras[(s, c)])[1]
                noisy = T.add_noise_2d(pixels, rng, **DETECTOR_NOISE, scale=level * cameras[(s, c)]["w"] / 2)
                views.append(noisy[:, keep, :2].astype(np.float32))
            poses_2d[s][a] = views
    metadata = {"layout_name": "mpii", "num_joints": 16,
                "keypoints_symmetry": [[3, 4, 5, 13, 14, 15], [0, 1, 2, 10, 11, 12]]}
    path = Path(folder) / "data_2d_h36m_sh_like.npz"
    np.savez_compressed(path, positions_2d=poses_2d, metadata=metadata)
    return path


def write_face_points_2d(folder, subjects: dict, cameras: dict, seed: int = 0) -> Path:
    """``data_2d_h36m_gt_face.npz``: the ground-truth projections with the thorax, spine and head
    placed as COCO-like detector layouts give them (mid-shoulders, mean of hips and shoulders,
    mid-eyes: :func:`posezoo.data.synthetic.face_points`), the rest exact."""
    from posezoo.data.synthetic import face_points

    rng = np.random.default_rng(seed)
    poses_2d = {s: {a: [face_points(project(w, cameras[(s, c)])[1][None], rng, 1.0)[0].astype(np.float32)
                        for c in H36M_CAMERAS] for a, w in actions.items()} for s, actions in subjects.items()}
    path = Path(folder) / "data_2d_h36m_gt_face.npz"
    np.savez_compressed(path, positions_2d=poses_2d, metadata=H36M_2D_METADATA)
    return path


def write_motionbert_pickle(path, subjects: dict, cameras: dict) -> Path:
    """MotionBERT's ``h36m_sh_conf_cam_source_final.pkl`` layout: per split, the frames of every
    (subject, clip, camera) video concatenated; ``joint3d_image`` = (u, v, depth * f / root depth)
    pixels, ``2.5d_factor`` = root depth / f (mm per pixel), ``joints_2.5d_image`` = their product (mm)."""
    out = {}
    for split in ("train", "test"):
        parts = []
        for subject in H36M_SUBJECTS[split]:
            for action, world in subjects[subject].items():
                for cam_id in H36M_CAMERAS:
                    points, pixels = project(world.astype(np.float64), cameras[(subject, cam_id)])
                    factor = points[:, 0, 2] * 1000.0 / FOCAL
                    image = np.concatenate([pixels, points[..., 2:] * 1000.0 / factor[:, None, None]], axis=-1)
                    n = len(world)
                    arrays = {"joint_2d": pixels, "confidence": np.ones((n, 17, 1)), "joint3d_image": image,
                              "joints_2.5d_image": image * factor[:, None, None], "2.5d_factor": factor}
                    parts.append({**{k: v.astype(np.float32) for k, v in arrays.items()},
                                  "camera_name": np.array([cam_id] * n), "action": np.array([action] * n),
                                  "source": np.array([f"{subject}_{action}_{cam_id}"] * n)})
        out[split] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out, protocol=4))
    return path
