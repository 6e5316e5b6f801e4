"""Following people across frames when the detector gives no track ids.

:func:`track_people` links each frame's detections to the tracks of the frames before: each live
track's last keypoints are moved by its constant-velocity prediction and compared with every
detection by object keypoint similarity (OKS, with the track's height as the scale); pairs are
chosen one-to-one for the largest total similarity (scipy's Hungarian solver when scipy is
installed, else greedily, best pair first). A pair below ``min_similarity`` is never matched, so
two people apart never trade ids, whatever their detection scores; a detection left over starts a
track, and a track missed for more than ``max_missed`` frames ends (a person back later gets a new
id). Tracks are numbered by prominence: 0 is the person largest in the image for longest.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

KAPPA = 0.1  # OKS falloff as a share of the person's height (COCO's per-joint 2 sigma: 0.05 .. 0.21)
MIN_SIMILARITY = 0.1  # reached at a mean joint distance of about 0.2 x the person's height
MAX_MISSED = 10  # frames a track survives undetected (posezoo.lift interpolates gaps as long)


@dataclass
class _Track:
    points: np.ndarray  # (J, 3) the last detection: x, y pixels and confidence
    frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # pixels per frame
    detections: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def predict(self, frame: int) -> np.ndarray:
        moved = self.points.copy()
        moved[:, :2] += self.velocity * (frame - self.frame)
        return moved

    def update(self, frame: int, points: np.ndarray) -> None:
        common = _visible(self.points) & _visible(points)
        if common.any():  # the mean shift of the joints seen both times, smoothed over frames
            shift = (points[common, :2] - self.points[common, :2]).mean(0) / (frame - self.frame)
            self.velocity = shift if len(self.detections) == 1 else (self.velocity + shift) / 2
        self.points, self.frame = points, frame
        self.detections.append((frame, points))


def _visible(points: np.ndarray) -> np.ndarray:
    return np.isfinite(points).all(-1) & (points[:, 2] > 0)


def _height(points: np.ndarray) -> float:
    """The larger side of the box around the visible joints in pixels: >= 1, or 0 when none is."""
    xy = points[_visible(points), :2]
    return max(float(np.ptp(xy, axis=0).max()), 1.0) if len(xy) else 0.0


def prominence(poses) -> float:
    """How much a person is seen: the sum of their height in pixels over the (J, 3) poses given
    (a (T, J, 3) track counts its frames; undetected NaN frames add nothing)."""
    return sum(_height(p) for p in poses)


def keypoint_similarity(predicted: np.ndarray, detected: np.ndarray) -> float:
    """OKS in [0, 1] between two (J, 3) poses over the joints visible in both (0 when none are),
    scaled by the predicted pose's height."""
    common = _visible(predicted) & _visible(detected)
    if not common.any():
        return 0.0
    squared = ((predicted[common, :2] - detected[common, :2]) ** 2).sum(-1)
    return float(np.exp(-squared / (2 * (KAPPA * _height(predicted)) ** 2)).mean())


def _assign(similarity: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs, each row and column at most once, for the largest total similarity."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        return _assign_greedy(similarity)
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return list(zip(rows.tolist(), cols.tolist()))


def _assign_greedy(similarity: np.ndarray) -> list[tuple[int, int]]:
    pairs, used_rows, used_cols = [], set(), set()
    for flat in np.argsort(-similarity, axis=None, kind="stable"):
        row, col = np.unravel_index(flat, similarity.shape)
        if row not in used_rows and col not in used_cols:
            pairs.append((int(row), int(col)))
            used_rows.add(row)
            used_cols.add(col)
    return pairs


def track_people(frames: Mapping[int, Sequence[np.ndarray]], max_missed: int = MAX_MISSED,
                 min_similarity: float = MIN_SIMILARITY) -> list[tuple[int, int, np.ndarray]]:
    """Each frame's detections ``{frame: [(J, 3) x, y, confidence, ...]}`` -> ``(frame, track id,
    points)`` for every detection, the ids numbered by :func:`prominence`, largest first."""
    live: list[_Track] = []
    ended: list[_Track] = []
    for frame in sorted(frames):
        ended += [t for t in live if frame - t.frame > max_missed + 1]
        live = [t for t in live if frame - t.frame <= max_missed + 1]
        detections = [np.asarray(d, np.float32) for d in frames[frame]]
        similarity = np.array([[keypoint_similarity(t.predict(frame), d) for d in detections] for t in live])
        matched: set[int] = set()
        if live and detections:
            for row, col in _assign(np.where(similarity >= min_similarity, similarity, 0.0)):
                if similarity[row, col] >= min_similarity:
                    live[row].update(frame, detections[col])
                    matched.add(col)
        for col, points in enumerate(detections):
            if col not in matched:
                live.append(_Track(points=points, frame=frame, detections=[(frame, points)]))
    tracks = sorted(ended + live, key=lambda t: (-prominence(p for _, p in t.detections), t.detections[0][0]))
    return [(frame, track_id, points) for track_id, t in enumerate(tracks) for frame, points in t.detections]
