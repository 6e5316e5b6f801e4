"""People followed across frames when the detector gives no ids (posezoo.tracking)."""
import json
import sys

import numpy as np
import pytest

from posezoo.errors import InputError
from posezoo.keypoints import read_keypoints, select_person
from posezoo.tracking import track_people

# COCO-17 joints of a person standing, x to the side and y up from the feet, in body heights
TEMPLATE = np.array([(0, .93), (.03, .95), (-.03, .95), (.06, .93), (-.06, .93), (.12, .8), (-.12, .8),
                     (.15, .62), (-.15, .62), (.16, .45), (-.16, .45), (.08, .5), (-.08, .5),
                     (.08, .27), (-.08, .27), (.08, .03), (-.08, .03)])


def person(x: float, feet_y: float, height: float) -> np.ndarray:
    """(17, 3) pixels and confidence 1 of a person ``height`` px tall standing at (x, feet_y)."""
    xy = np.stack([x + TEMPLATE[:, 0] * height, feet_y - TEMPLATE[:, 1] * height], -1)
    return np.concatenate([xy, np.ones((17, 1))], -1).astype(np.float32)


def pelvis_x(track: np.ndarray) -> np.ndarray:
    return track[:, 11:13, 0].mean(-1)


def crossing_detections() -> list[dict]:
    """A (300 px tall) walks right and B (260 px, further back) walks left at 25 px per frame;
    they cross at frame 10, where the detector starts scoring B above A; A is missed in frame 11.
    COCO results without track ids, in each frame listed by descending score."""
    dets = []
    for t in range(20):
        people = [(person(100 + 25 * t, 600, 300), 0.9 if t < 10 else 0.6)]
        if t == 11:
            people = []
        people.append((person(600 - 25 * t, 560, 260), 0.7 if t < 10 else 0.95))
        for points, score in sorted(people, key=lambda p: -p[1]):
            dets.append({"image_id": f"frame_{t:06d}.jpg", "category_id": 1, "keypoints": points.ravel().tolist(),
                         "score": score})
    return dets


def test_crossing_people_keep_their_ids_through_a_score_swap_and_a_miss(tmp_path):
    path = tmp_path / "two_people.json"
    path.write_text(json.dumps(crossing_detections()))
    tracks = read_keypoints(path)
    assert sorted(tracks.tracks) == [0, 1] and list(tracks.frames) == list(range(20))
    a, b = (tracks.tracks[i] for i in sorted(tracks.tracks, key=lambda i: pelvis_x(tracks.tracks[i])[0]))
    assert np.isnan(a[11]).all() and not np.isnan(np.delete(a, 11, 0)).any() and not np.isnan(b).any()
    seen = ~np.isnan(pelvis_x(a))
    np.testing.assert_allclose(pelvis_x(a)[seen], 100 + 25 * np.flatnonzero(seen), atol=1e-3)
    np.testing.assert_allclose(pelvis_x(b), 600 - 25 * np.arange(20), atol=1e-3)
    assert pelvis_x(tracks.tracks[0])[0] == pytest.approx(100)  # A: taller, so track 0


def test_separated_people_never_swap_whatever_the_order(monkeypatch):
    frames = {}
    for t in range(30):
        left, right = person(200 + 3 * t, 500, 280), person(900 - 3 * t, 500, 280)
        frames[t] = [left, right] if t % 2 else [right, left]
    for solver in ("hungarian", "greedy"):
        if solver == "greedy":
            monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # import fails: the greedy match
        ids = {}
        for frame, track, points in track_people(frames):
            ids.setdefault(track, set()).add("left" if points[0, 0] < 550 else "right")
        assert sorted(map(sorted, ids.values())) == [["left"], ["right"]], solver


def test_a_track_survives_short_misses_and_ends_after_long_ones():
    frames = {t: [person(100 + 5 * t, 500, 300)] for t in range(40)}
    for t in range(5, 8):  # 3 frames missed: the same track
        frames[t] = []
    for t in range(20, 32):  # 12 frames missed (> 10): the person comes back under a new id
        frames[t] = []
    tracks = {}
    for frame, track, _ in track_people(frames):
        tracks.setdefault(track, []).append(frame)
    assert sorted(map(min, tracks.values())) == [0, 32]
    assert [f for f in tracks[min(tracks, key=lambda i: min(tracks[i]))]] == [*range(5), *range(8, 20)]


def test_select_person_by_id_or_largest(tmp_path):
    frames = {t: [person(100, 500, 300)] + ([person(600, 500, 200)] if t >= 6 else []) for t in range(12)}
    dets = [{"image_id": t, "keypoints": p.ravel().tolist(), "score": 1} for t, found in frames.items() for p in found]
    (path := tmp_path / "k.json").write_text(json.dumps(dets))
    tracks = read_keypoints(path)
    late = next(i for i, t in tracks.tracks.items() if np.isnan(t[0]).all())
    one = select_person(tracks, late)  # cut to its frames: nothing missing at the start
    assert list(one.tracks) == [late] and list(one.frames) == list(range(6, 12)) and not np.isnan(one.tracks[late]).any()
    largest = select_person(tracks, "largest")
    assert list(largest.frames) == list(range(12)) and pelvis_x(next(iter(largest.tracks.values())))[0] == 100
    with pytest.raises(InputError, match="no person 7; the track ids are 0, 1"):
        select_person(tracks, 7)


def test_lift_a_person_who_enters_late(tmp_path):
    import posezoo

    dets = [{"image_id": t, "keypoints": person(200 + 3 * t, 600, 300).ravel().tolist(), "score": 0.9} for t in range(40)]
    dets += [{"image_id": t, "keypoints": person(700 - 3 * t, 600, 280).ravel().tolist(), "score": 0.95}
             for t in range(20, 40)]
    (path := tmp_path / "late.json").write_text(json.dumps(dets))
    both = posezoo.lift(path)  # each track over its own frames
    assert both.spans == {0: (0, 40), 1: (20, 40)} and both.poses[1].shape == (20, 17, 3)
    result = posezoo.lift(path, person=1)
    assert list(result.poses) == [1] and list(result.frames) == list(range(20, 40))
