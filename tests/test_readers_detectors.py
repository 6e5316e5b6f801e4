"""Keypoint files exactly as MMPose 1.x and Ultralytics write them, and CSV by the layout's joints."""
import json

import numpy as np
import pytest

from posezoo.keypoints import KeypointFileError, read_keypoints
from test_tracking import pelvis_x, person


def _walkers(frames: int = 6) -> list[list[np.ndarray]]:
    """Per frame, two people (17, 3) walking apart; the detector lists them in a changing order."""
    out = []
    for t in range(frames):
        a, b = person(300 - 10 * t, 600, 300), person(500 + 10 * t, 600, 280)
        out.append([a, b] if t % 2 else [b, a])
    return out


def _mmpose_instance(points: np.ndarray, score_scale: float = 1.0) -> dict:
    # mmpose/structures/utils.py split_instances(): nested [[x, y], ...] keypoints, a flat list of
    # keypoint_scores, and "bbox" written as a 1-tuple of [x1, y1, x2, y2] (so [[...]] in JSON)
    xy = points[:, :2]
    return {"keypoints": xy.tolist(), "keypoint_scores": (points[:, 2] * score_scale).tolist(),
            "bbox": [[*xy.min(0).tolist(), *xy.max(0).tolist()]], "bbox_score": 0.97}


def _check_walkers(tracks, frames: list[int]) -> None:
    assert tracks.layout == "coco-17" and list(tracks.frames) == frames and len(tracks.tracks) == 2
    xs = sorted((pelvis_x(t) for t in tracks.tracks.values()), key=lambda x: x[0])
    np.testing.assert_allclose(xs[0], 300 - 10 * np.arange(len(frames)), atol=1e-3)  # no swaps between people
    np.testing.assert_allclose(xs[1], 500 + 10 * np.arange(len(frames)), atol=1e-3)


def test_mmpose_inferencer_video_json(tmp_path):
    # mmpose/apis/inferencers/base_mmpose_inferencer.py _finalize_video_processing(): a list of
    # dict(frame_id=i, instances=split_instances(...)), frame ids from 0; RTMPose scores exceed 1
    data = [{"frame_id": t, "instances": [_mmpose_instance(p, 1.1) for p in found]} for t, found in enumerate(_walkers())]
    (path := tmp_path / "video.json").write_text(json.dumps(data, indent="  "))
    tracks = read_keypoints(path)
    _check_walkers(tracks, list(range(6)))
    assert all(np.nanmax(t[..., 2]) == 1 for t in tracks.tracks.values())  # clipped to [0, 1]


def test_mmpose_inferencer_image_jsons_in_a_folder(tmp_path):
    # the same inferencer on images (or with pred_out_dir for a folder): one <image name>.json per
    # image, holding split_instances(...) only: a list of instance dicts
    for t, found in enumerate(_walkers()):
        (tmp_path / f"img_{t:05d}.json").write_text(json.dumps([_mmpose_instance(p) for p in found]))
    _check_walkers(read_keypoints(tmp_path), list(range(6)))
    one = read_keypoints(tmp_path / "img_00002.json")
    assert len(one.tracks) == 2 and list(one.frames) == [0]


def test_mmpose_topdown_demo_predictions(tmp_path):
    # demo/topdown_demo_with_mmdet.py --save-predictions on a video: json_tricks dump of
    # dict(meta_info=dataset_meta, instance_info=[dict(frame_id=1.., instances=...)])
    meta = {"dataset_name": "coco", "num_keypoints": 17,
            "flip_indices": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
            "sigmas": {"__ndarray__": [0.026] * 17, "dtype": "float32", "shape": [17]}}
    info = [{"frame_id": t + 1, "instances": [_mmpose_instance(p) for p in found]} for t, found in enumerate(_walkers())]
    (path := tmp_path / "results_clip.json").write_text(json.dumps({"meta_info": meta, "instance_info": info}, indent="\t"))
    _check_walkers(read_keypoints(path), list(range(1, 7)))


def _ultralytics_summary(points: np.ndarray, track_id: int | None = None) -> dict:
    # ultralytics/engine/results.py Results.summary() (to_json()/tojson() dump it): name, class,
    # confidence, box {x1, y1, x2, y2}, track_id when tracking, keypoints {x: [...], y: [...], visible: [...]}
    xy = points[:, :2]
    out = {"name": "person", "class": 0, "confidence": 0.91,
           "box": dict(zip(("x1", "y1", "x2", "y2"), [*xy.min(0).tolist(), *xy.max(0).tolist()]))}
    if track_id is not None:
        out["track_id"] = track_id
    out["keypoints"] = {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "visible": points[:, 2].tolist()}
    return out


def test_ultralytics_results_json(tmp_path):
    frames = [[_ultralytics_summary(p) for p in found] for found in _walkers()]  # [r.summary() for r in results]
    (path := tmp_path / "yolo.json").write_text(json.dumps(frames, indent=2))
    _check_walkers(read_keypoints(path), list(range(6)))
    for t, found in enumerate(frames):  # one r.to_json() per image
        (tmp_path / "frames").mkdir(exist_ok=True)
        (tmp_path / "frames" / f"{t}.json").write_text(json.dumps(found, indent=2))
    _check_walkers(read_keypoints(tmp_path / "frames"), list(range(6)))


def test_ultralytics_track_ids_are_kept_and_normalised_boxes_refused(tmp_path):
    frames = [[_ultralytics_summary(p, 5 if p[0, 0] < 400 else 9) for p in found] for found in _walkers()]
    (path := tmp_path / "tracked.json").write_text(json.dumps(frames))
    tracks = read_keypoints(path)
    assert sorted(tracks.tracks) == [5, 9] and pelvis_x(tracks.tracks[5])[0] == pytest.approx(300)
    norm = [[{**d, "box": {k: v / 1000 for k, v in d["box"].items()}} for d in found] for found in frames]
    (path := tmp_path / "normalised.json").write_text(json.dumps(norm))
    with pytest.raises(KeypointFileError, match=r"normalised to \[0, 1\]"):
        read_keypoints(path)


def test_csv_joint_count_from_the_layout(tmp_path):
    xy = np.random.default_rng(0).uniform(0, 700, (5, 33, 2)).astype(np.float32)  # MediaPipe's 33 joints
    np.savetxt(path := tmp_path / "mp.csv", xy.reshape(5, 66), delimiter=",", fmt="%.3f")
    for layout in ("mediapipe-33", None):  # 66 columns: 33 x (x, y), not 22 x (x, y, c)
        tracks = read_keypoints(path, layout=layout)
        assert tracks.layout == "mediapipe-33" and tracks.tracks[0].shape == (5, 33, 3)
        np.testing.assert_allclose(tracks.tracks[0][..., :2], xy, atol=1e-3)
    with pytest.raises(KeypointFileError, match="66 columns is not .* for the 17 joints of coco-17"):
        read_keypoints(path, layout="coco-17")


@pytest.mark.parametrize("content, message", [
    ('[{"frame_id": 0, "instances": [{"keypoints": [[1, 2, 3]], "keypoint_scores": [1]}]}]', "MMPose keypoints"),
    ('[[{"name": "person", "box": {}, "keypoints": {"x": [1, 2], "y": [1]}}]]', "Ultralytics keypoints"),
    ('[[{"name": "person", "class": 0, "box": {"x1": 1}}]]', "was the detector a pose model"),
    ('{"meta_info": {}, "instance_info": 3}', "COCO results format"),
])
def test_bad_detector_files_say_what_is_wrong(tmp_path, content, message):
    (path := tmp_path / "bad.json").write_text(content)
    with pytest.raises(KeypointFileError, match=message):
        read_keypoints(path)
