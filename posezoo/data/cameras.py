"""Pinhole cameras with Human3.6M-style radial + tangential distortion, and random virtual cameras
for projecting Y-up mocap into 2D.

Conventions: world points are metres, Y up (the mocap files). The camera frame is x right, y down,
z forward (OpenCV / image convention), so image y grows downwards. ``R`` maps world to camera
(rows are the camera axes in world coordinates) and ``centre`` is the camera position:
``X_cam = (X_world - centre) @ R.T``. (mmpose's cameras.pkl stores ``R_mmpose = R.T`` and
``T = centre``: ``X_cam = (X_world - T) @ R_mmpose``.)

Distortion (Brown-Conrady as OpenCV and mmpose's SimpleCamera write it, on x = X/Z, y = Y/Z,
r2 = x^2 + y^2): ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3``, ``tan = 2 (p1 y + p2 x)``,
``x' = x (radial + tan) + p2 r2``, ``y' = y (radial + tan) + p1 r2``; pixel = f * (x', y') + c.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_CAMERAS = dict(
    yaw=(-180.0, 180.0),          # degrees around the up axis
    elevation=(-5.0, 25.0),       # degrees of the camera above the look-at point
    distance=(3.5, 6.0),          # metres from the look-at point (plus the subject's travel)
    target_height=(0.7, 1.2),     # metres: height of the look-at point above the floor
    focal=(1000.0, 1200.0),       # pixels (fx = fy)
    principal_jitter=10.0,        # pixels around the image centre
    image_size=(1000, 1000),      # (w, h) pixels
    distortion=False,             # draw k, p from the ranges below
    radial=((-0.25, 0.0), (0.0, 0.25), (-0.01, 0.01)),
    tangential=((-2e-3, 2e-3), (-2e-3, 2e-3)),
)
"""Ranges of :func:`sample_camera`, close to Human3.6M's cameras (f 1145-1150 px, 1000 px images,
subjects 3.5-5.9 m away, cameras 1.5 m high)."""


@dataclass(frozen=True)
class Camera:
    """One camera. ``R`` (3, 3) world -> camera, ``centre`` (3,) metres, ``f``/``c`` (2,) pixels,
    ``k`` (3,) radial and ``p`` (2,) tangential distortion, image ``w`` x ``h`` pixels."""

    R: np.ndarray
    centre: np.ndarray
    f: np.ndarray
    c: np.ndarray
    w: int
    h: int
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))
    info: dict = field(default_factory=dict)  # how it was drawn (yaw, elevation, distance, ...)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) camera-frame points (metres, x right, y down, z forward)."""
        return (points - self.centre) @ self.R.T

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`world_to_camera`."""
        return points @ self.R + self.centre

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points -> (..., 2) pixels (distorted when k, p are non-zero)."""
        return project(points_cam, self.f, self.c, self.k, self.p)

    def meta(self) -> dict:
        """The parameters as plain floats (for a sample's meta; collates to tensors)."""
        out = dict(fx=self.f[0], fy=self.f[1], cx=self.c[0], cy=self.c[1], width=self.w, height=self.h,
                   k1=self.k[0], k2=self.k[1], k3=self.k[2], p1=self.p[0], p2=self.p[1], **self.info)
        return {key: float(v) for key, v in out.items()}


def distort(xy: np.ndarray, k: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Distort normalised image points (..., 2) (x = X/Z, y = Y/Z); see the module docstring."""
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = 2 * (p[0] * y + p[1] * x)
    return np.stack([x * (radial + tan) + p[1] * r2, y * (radial + tan) + p[0] * r2], axis=-1)


def undistort(xy: np.ndarray, k: np.ndarray, p: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Invert :func:`distort` by fixed-point iteration (accurate to ~1e-12 for camera-like
    distortion inside the image)."""
    und = np.array(xy, dtype=np.float64, copy=True)
    for _ in range(iterations):
        und = und - (distort(und, k, p) - xy)
    return und


def project(points_cam: np.ndarray, f, c, k=None, p=None) -> np.ndarray:
    """Perspective projection of (..., 3) camera-frame points to (..., 2) pixels."""
    xy = points_cam[..., :2] / points_cam[..., 2:3]
    if k is not None and p is not None and (np.any(k) or np.any(p)):
        xy = distort(xy, np.asarray(k), np.asarray(p))
    return xy * np.asarray(f) + np.asarray(c)


def unproject(pixels: np.ndarray, depth: np.ndarray, f, c, k=None, p=None) -> np.ndarray:
    """(..., 2) pixels and (...) camera depths Z -> (..., 3) camera-frame points."""
    xy = (pixels - np.asarray(c)) / np.asarray(f)
    if k is not None and p is not None and (np.any(k) or np.any(p)):
        xy = undistort(xy, np.asarray(k), np.asarray(p))
    return np.concatenate([xy * depth[..., None], depth[..., None]], axis=-1)


def look_at(centre: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World -> camera rotation (3, 3) of a camera at ``centre`` looking at ``target``, with the
    image y axis pointing along world ``-up`` (rows: right, down, forward)."""
    forward = np.asarray(target, np.float64) - np.asarray(centre, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, np.float64))
    norm = np.linalg.norm(right)
    if norm < 1e-9:
        raise ValueError("camera looks straight along the up axis: its roll is undefined")
    right /= norm
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def sample_camera(rng: np.random.Generator, cameras: dict | None = None, travel: float = 0.0) -> Camera:
    """A random camera around the world origin for a Y-up subject centred there.

    ``cameras`` overrides :data:`DEFAULT_CAMERAS` (a range (lo, hi) draws uniformly, a number
    fixes the value). ``travel`` (metres, the largest horizontal distance of the subject's root
    from the origin) is added to the distance so that the subject stays in front of the camera.
    """
    cfg = {**DEFAULT_CAMERAS, **(cameras or {})}
    unknown = set(cfg) - set(DEFAULT_CAMERAS)
    if unknown:
        raise ValueError(f"unknown camera settings {sorted(unknown)}; known: {sorted(DEFAULT_CAMERAS)}")

    def draw(value):
        if np.ndim(value) == 0:
            return float(value)
        lo, hi = value
        return float(rng.uniform(lo, hi))

    yaw, elevation = draw(cfg["yaw"]), draw(cfg["elevation"])
    distance, height = draw(cfg["distance"]) + travel, draw(cfg["target_height"])
    focal = draw(cfg["focal"])
    w, h = (int(v) for v in cfg["image_size"])
    jitter = float(cfg["principal_jitter"])
    c = np.array([w / 2, h / 2]) + (rng.uniform(-jitter, jitter, 2) if jitter else 0.0)
    yaw_r, elev_r = np.deg2rad(yaw), np.deg2rad(elevation)
    target = np.array([0.0, height, 0.0])
    centre = target + distance * np.array([np.cos(elev_r) * np.sin(yaw_r), np.sin(elev_r),
                                           np.cos(elev_r) * np.cos(yaw_r)])
    k, p = np.zeros(3), np.zeros(2)
    if cfg["distortion"]:
        k = np.array([draw(r) for r in cfg["radial"]])
        p = np.array([draw(r) for r in cfg["tangential"]])
    return Camera(R=look_at(centre, target), centre=centre, f=np.array([focal, focal]), c=c, w=w, h=h,
                  k=k, p=p, info=dict(yaw=yaw, elevation=elevation, distance=distance))
