"""Readers of users' 2D keypoint files, each on a small file written in that format."""
from __future__ import annotations

import json

import numpy as np
import pytest

from posezoo.keypoints import KeypointFileError, read_keypoints


def _flat(points: np.ndarray) -> list[float]:
    return [float(v) for v in points.reshape(-1)]


def test_coco_results_json_with_track_ids(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 500, (4, 17, 3)), rng.uniform(0, 500, (4, 17, 3))
    dets = [{"image_id": f, "category_id": 1, "keypoints": _flat(a[f]), "score": 0.9, "track_id": 7} for f in range(4)]
    dets += [{"image_id": f, "category_id": 1, "keypoints": _flat(b[f]), "score": 0.8, "track_id": 3}
             for f in (0, 1, 3)]  # person 3 missed in frame 2
    path = tmp_path / "results.json"
    path.write_text(json.dumps(dets))
    tracks = read_keypoints(path)
    assert tracks.layout == "coco-17" and sorted(tracks.tracks) == [3, 7]
    np.testing.assert_allclose(tracks.tracks[7], a.astype(np.float32))
    assert np.isnan(tracks.tracks[3][2]).all() and np.allclose(tracks.tracks[3][3], b[3])


def test_alphapose_halpe_json(tmp_path):
    points = np.arange(5 * 26 * 3, dtype=np.float32).reshape(5, 26, 3)
    dets = [{"image_id": f"{f}.jpg", "category_id": 1, "keypoints": _flat(points[f]), "score": 2.5, "idx": [1],
             "box": [0, 0, 1, 1]} for f in range(5)]
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(dets))
    tracks = read_keypoints(path)
    assert tracks.layout == "halpe-26"
    np.testing.assert_array_equal(tracks.tracks[1], points)


def test_openpose_folder(tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    pose = np.random.default_rng(1).uniform(0, 700, (25, 3))
    pts = np.stack([pose + [5 * f, 0, 0] for f in range(3)]).astype(np.float32)  # moving right; ids -1: tracked
    for f in range(3):
        (folder / f"video_{f:012d}_keypoints.json").write_text(json.dumps(
            {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": _flat(pts[f])}]}))
    tracks = read_keypoints(folder)
    assert tracks.layout == "openpose-25" and list(tracks.frames) == [0, 1, 2]
    np.testing.assert_allclose(tracks.tracks[0], pts)


def test_numpy_and_csv(tmp_path):
    arr = np.random.default_rng(2).uniform(0, 100, (6, 33, 2)).astype(np.float32)
    np.save(tmp_path / "kp.npy", arr)
    tracks = read_keypoints(tmp_path / "kp.npy")
    assert tracks.layout == "mediapipe-33" and tracks.tracks[0].shape == (6, 33, 3)
    assert (tracks.tracks[0][..., 2] == 1).all()
    np.savez(tmp_path / "kp.npz", keypoints=arr[:, :17], image_size=np.array([640, 480]), fps=np.array(30.0))
    tracks = read_keypoints(tmp_path / "kp.npz")
    assert tracks.layout is None  # 17 joints: COCO or H36M, the user must say
    assert tracks.image_size == (640, 480) and tracks.fps == 30.0
    rows = arr[:, :17].reshape(6, -1)
    (tmp_path / "kp.csv").write_text("\n".join(",".join(f"{v:.3f}" for v in r) for r in rows))
    tracks = read_keypoints(tmp_path / "kp.csv", layout="coco-17")
    assert tracks.tracks[0].shape == (6, 17, 3)  # 34 columns: x, y per joint
    np.testing.assert_allclose(tracks.tracks[0][..., :2], arr[:, :17], atol=1e-3)


@pytest.mark.parametrize("name, content, message", [
    ("a.json", "{\"foo\": 1}", "COCO results format"),
    ("b.json", "not json", "not a keypoint file"),
    ("c.npy", None, "expected keypoints"),
    ("d.txt", "x", "unsupported keypoint file type"),
    ("e.csv", "1,2,3,4,5\n", "not 2 or 3 values per joint"),
])
def test_bad_files_say_what_is_wrong(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((4, 5)))
    else:
        path.write_text(content)
    with pytest.raises(KeypointFileError, match=message):
        read_keypoints(path)


def test_missing_input():
    with pytest.raises(FileNotFoundError, match="not found"):
        read_keypoints("/no/such/file.json")
