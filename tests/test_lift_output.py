"""What ``posezoo lift`` writes and says (issue 14): every key of docs/lift_output.md in both
formats, the image size and fps recorded, a warning only where a missing image size changes the
normalisation, bad outputs refused before any model work, progress reported in frames."""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import posezoo
from posezoo import lifting
from posezoo.cli import main
from posezoo.errors import InputError, PosezooWarning
from posezoo.keypoints import KeypointTracks

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "treadmill_walk_openpose.npz"
DOC = ROOT / "docs" / "lift_output.md"
TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=27)


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    """30 frames of a real OpenPose BODY_25 track (x, y px in a 720 x 720 image, confidence)."""
    with np.load(EXAMPLE) as data:
        return data["keypoints"][:30].copy()


def two_people(walk: np.ndarray) -> np.ndarray:
    """(2, T, J, 3): the walk and a copy 200 px to the right."""
    return np.stack([walk, walk + np.array([200.0, 0, 0], np.float32)])


def doc_keys(doc: Path = DOC) -> dict[str, tuple[str, str]]:
    """{key: (npz column, json column)} of the key table (five columns) in docs/lift_output.md."""
    text = doc.read_text()
    section = text[text.index("## Keys"):text.index("## Reading it")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `")]
    return {row[0].strip("`"): (row[1], row[2]) for row in rows if len(row) == 5}


def test_saved_files_hold_every_documented_key(tmp_path, walk):
    keys = doc_keys()
    assert {"poses_3d", "frames", "track_ids", "fps", "image_size", "refine", "normalisation"} <= set(keys)
    result = posezoo.lift(walk, layout="openpose-25", image_size=(720, 720), fps=24.0)
    with np.load(result.save(tmp_path / "p.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta_json"]))
    payload = json.loads(result.save(tmp_path / "p.json").read_text())
    for key, (npz, in_json) in keys.items():
        if "array" in npz:
            assert (key in arrays) != ("(mesh)" in npz), f"{key} documented as an .npz array {npz}"
        if "meta_json" in npz:
            assert key in meta, f"{key} documented in meta_json"
        assert (key in payload) == (in_json == "yes"), f"{key}: .json column says {in_json!r}"
    undocumented = (set(arrays) | set(meta) | set(payload)) - set(keys)
    assert not undocumented, f"written but not in {DOC.name}: {undocumented}"
    assert arrays["poses_3d"].shape == (1, 30, 17, 3) and arrays["keypoints_2d"].shape == (1, 30, 17, 3)
    assert arrays["image_size"].tolist() == [720, 720] == meta["image_size"] == payload["image_size"]
    assert meta["fps"] == payload["fps"] == 24.0 and meta["normalisation"] == "pose-frame"
    assert len(meta["input_joint_names"]) == arrays["keypoints_2d"].shape[2]
    np.testing.assert_allclose(np.array(payload["poses_3d"]["0"]), arrays["poses_3d"][0], atol=1e-6)
    np.testing.assert_allclose(np.array(payload["keypoints_2d"]["0"]), arrays["keypoints_2d"][0], atol=1e-4)


def test_everyone_lifted_over_their_own_frames(tmp_path, walk):
    """Track 1 enters at frame 12, is missed for 3 frames and leaves after frame 26: lifted over
    frames 12..26, NaN outside in the .npz, its own rows in the .json, drawn by posezoo render."""
    people = two_people(walk)
    people[1, :12] = people[1, 27:] = people[1, 18:21] = np.nan
    result = posezoo.lift(people, layout="openpose-25", image_size=(720, 720))
    assert result.spans == {0: (0, 30), 1: (12, 27)} and result.poses[1].shape == (15, 17, 3)
    assert np.isfinite(result.poses[1]).all() and (result.confidence[1][6:9] == 0).all()  # interpolated
    with np.load(result.save(tmp_path / "p.npz")) as data:
        poses, spans = data["poses_3d"], data["track_spans"]
        assert poses.shape == (2, 30, 17, 3) and spans.tolist() == [[0, 30], [12, 27]]
        assert np.isfinite(poses[0]).all() and np.isfinite(poses[1, 12:27]).all()
        assert np.isnan(poses[1, :12]).all() and np.isnan(poses[1, 27:]).all()
        assert np.isnan(data["keypoints_2d"][1, :12]).all() and np.isnan(data["confidence"][1, 27:]).all()
    payload = json.loads(result.save(tmp_path / "p.json").read_text())
    assert payload["track_spans"] == {"0": [0, 30], "1": [12, 27]} and len(payload["poses_3d"]["1"]) == 15
    np.testing.assert_allclose(np.array(payload["poses_3d"]["1"]), poses[1, 12:27], atol=1e-6)
    assert main(["render", str(tmp_path / "p.npz"), str(tmp_path / "one.gif"), "--track", "1"]) == 0
    result.poses[1][3, 0, 0] = np.nan  # inside the span: refused, nothing written
    with pytest.raises(InputError, match="track 1.*NaN/inf"):
        result.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_a_long_gap_inside_a_track_is_named_by_its_frames(walk):
    people = two_people(walk)
    people[1, 5:20] = np.nan
    frames = np.arange(100, 130)
    tracks = KeypointTracks({i: p for i, p in enumerate(people)}, frames, "openpose-25")
    with pytest.raises(InputError, match=r"track 1: frames 105..119 \(15 frames\) are missing"):
        posezoo.lift(tracks)


def test_unknown_image_size_is_saved_as_such(tmp_path, walk):
    result = posezoo.lift(walk, layout="openpose-25")
    with np.load(result.save(tmp_path / "p.npz")) as data:
        assert data["image_size"].shape == (0,) and json.loads(str(data["meta_json"]))["image_size"] is None
    assert json.loads(result.save(tmp_path / "p.json").read_text())["image_size"] is None


def test_missing_size_warns_only_where_the_normalisation_needs_it(tmp_path, walk):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosezooWarning)
        default = posezoo.lift(walk, layout="openpose-25")  # pose-frame: the image size plays no part
    assert default.meta["normalisation"] == "pose-frame"
    screen = str(posezoo.save(posezoo.create("dstformer-lift", **TINY), tmp_path / "screen"))
    with pytest.warns(PosezooWarning, match=r"no image size.*crop-scale.*--size W H") as caught:
        result = posezoo.lift(two_people(walk), layout="openpose-25", model=screen)
    assert len(caught) == 1 and result.meta["normalisation"] == "crop-scale"  # once, not per track
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosezooWarning)
        result = posezoo.lift(walk, layout="openpose-25", model=screen, image_size=(720, 720))
    assert result.meta["normalisation"] == "screen" and result.image_size == (720, 720)


def cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_cli_warns_once_without_size(tmp_path, capsys, walk):
    np.savez(path := tmp_path / "k.npz", keypoints=walk, layout="openpose-25")
    screen = posezoo.save(posezoo.create("dstformer-lift", **TINY), tmp_path / "screen")
    code, err = cli(capsys, "lift", path, "--model", screen, "--out", tmp_path / "o.npz")
    assert code == 0 and err.count("posezoo lift: warning: no image size") == 1, err


def test_fps_from_the_command_line_for_json_inputs(tmp_path, capsys, walk):
    dets = [{"image_id": t, "keypoints": walk[t].ravel().tolist(), "score": 0.9, "track_id": 0}
            for t in range(len(walk))]
    (src := tmp_path / "dets.json").write_text(json.dumps(dets))
    code, err = cli(capsys, "lift", src, "--layout", "openpose-25", "--out", tmp_path / "a.json")
    assert code == 0, err
    assert json.loads((tmp_path / "a.json").read_text())["fps"] is None  # the JSON says nothing of time
    code, err = cli(capsys, "lift", src, "--layout", "openpose-25", "--fps", "50", "--out", tmp_path / "b.json")
    out = json.loads((tmp_path / "b.json").read_text())
    assert code == 0 and out["fps"] == 50.0 and out["refine"]["smooth_frames"] == 15  # 0.3 s at 50 fps


@pytest.fixture
def no_model_work(monkeypatch):
    """Any reading of the input, loading of a model or lifting fails the test loudly (exit 1)."""
    def fail(*args, **kwargs):
        raise AssertionError("model work started before the outputs were checked")

    for name in ("read_keypoints", "load_trained", "lift"):
        monkeypatch.setattr(lifting, name, fail)
    monkeypatch.setattr(lifting.Lifter, "run", fail)


BAD_OUTPUTS = [(["--out", "{tmp}/poses.txt"], "must end in .npz or .json"),
               (["--render", "{tmp}/walk.png"], "must end in .gif or .mp4"),
               (["--render", "{tmp}/walk.mp4"], "needs ffmpeg"),
               (["--out", "{tmp}/locked/poses.npz"], "no permission to write"),
               (["--render", "{tmp}/locked/walk.gif"], "no permission to write")]


@pytest.mark.parametrize("args,mention", BAD_OUTPUTS, ids=[" ".join(a) for a, _ in BAD_OUTPUTS])
def test_bad_outputs_refused_before_the_lift_starts(tmp_path, capsys, monkeypatch, walk, no_model_work,
                                                    args, mention):
    path = tmp_path / "long.npz"
    np.savez(path, keypoints=np.tile(walk, (300, 1, 1)), layout="openpose-25")  # 9,000 frames
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    access = os.access  # root may write anywhere: deny the locked folder as the kernel denies a user
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and access(p, mode, **kw))
    monkeypatch.setattr("shutil.which", lambda name, *a, **kw: None)  # no ffmpeg
    monkeypatch.chdir(tmp_path)  # the default --out poses.npz
    code, err = cli(capsys, "lift", path, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and mention in err and "model work" not in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["locked", "long.npz"]


def test_progress_reports_frames_over_all_tracks(walk):
    calls = []
    posezoo.lift(two_people(walk), layout="openpose-25", flip=True,
                 progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 60) and calls[-1] == (60, 60)
    assert all(t == 60 for _, t in calls) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) >= 5  # each track's pass and its flipped pass report


def test_lifter_reports_each_batch_of_windows(tmp_path, walk):
    from posezoo.data.layouts import convert_keypoints

    lifter = lifting.Lifter(posezoo.create("dstformer-lift", **TINY), batch_size=2, overlap=6)
    x = np.tile(convert_keypoints(walk, "openpose-25", "h36m-17"), (4, 1, 1)) / 720  # 120 frames
    seen = []
    out = lifter.run(x, seen.append)
    assert out.shape == (120, 17, 3) and seen[-1] == 120 and len(seen) > 1 and seen == sorted(seen)


def test_cli_progress_bar_shows_frames_and_rate():
    import io
    import time

    from rich.console import Console

    from posezoo.commands.lift import frames_progress

    terminal, log = io.StringIO(), io.StringIO()
    with frames_progress(Console(file=terminal, force_terminal=True, color_system=None, width=120)) as bar:
        detecting = bar("detecting people in webcam")
        detecting(40, None)  # a webcam: no total
        progress = bar("lifting walk")
        progress(0, 9000)
        time.sleep(0.05)
        progress(9000, 9000)
    assert re.search(r"detecting people in webcam .*40/\? frames", terminal.getvalue()), terminal.getvalue()
    assert "9000/9000 frames" in terminal.getvalue() and "frames/s" in terminal.getvalue()
    with frames_progress(Console(file=log, force_terminal=False)) as bar:
        bar("lifting walk")(9000, 9000)
    assert log.getvalue() == ""  # no bar in a log file


def test_mesh_model_without_a_body_model_is_refused_with_what_to_use_instead(tmp_path, capsys, walk):
    mesh = posezoo.save(posezoo.create("dstformer-lift", head="mesh", hidden_dim=8, **TINY), tmp_path / "mesh")
    np.savez(path := tmp_path / "k.npz", keypoints=walk, layout="openpose-25", image_size=np.array([720, 720]))
    code, err = cli(capsys, "lift", path, "--model", mesh, "--out", tmp_path / "o.npz")
    assert code == 2 and "'mesh' head, not 3D joints" in err and "smpl_model_path= and j_regressor_path=" in err, err
    assert "model(x)['theta']" in err and "Traceback" not in err and not (tmp_path / "o.npz").exists()


def test_a_mesh_model_lifts_to_its_joints_with_smpl_beside_them(tmp_path, walk):
    pytest.importorskip("smplx")
    from tests.conftest import write_body_model

    body, regressor, _ = write_body_model(tmp_path)  # 40 vertices
    mesh = posezoo.create("dstformer-mesh", smpl_model_path=str(body), j_regressor_path=str(regressor),
                          hidden_dim=8, **TINY)
    people = two_people(walk)
    people[1, :10] = np.nan  # enters at frame 10
    result = posezoo.lift(people, layout="openpose-25", image_size=(720, 720), model=mesh, smooth=1,
                          rigid_bones=False)
    assert result.units == "mm" and result.spans[1] == (10, 30) and result.poses[1].shape == (20, 17, 3)
    shapes = {"smpl_pose": (20, 72), "smpl_betas": (20, 10), "vertices": (20, 40, 3)}
    assert {k: v[1].shape for k, v in result.extras.items()} == shapes
    joints = np.einsum("kv,tvc->tkc", np.load(regressor), result.extras["vertices"][1])
    np.testing.assert_allclose(result.poses[1], joints, rtol=1e-4, atol=1e-2)  # poses_3d: the mesh's kp_3d
    mesh_keys = {k for k, (npz, _) in doc_keys().items() if "(mesh)" in npz}
    assert mesh_keys == set(shapes)
    with np.load(result.save(tmp_path / "p.npz")) as data:
        for key, shape in shapes.items():
            assert data[key].shape == (2, 30, *shape[1:]) and np.isnan(data[key][1, :10]).all()
            np.testing.assert_array_equal(data[key][1, 10:], result.extras[key][1])
        assert not set(data.files) - set(doc_keys())
    payload = json.loads(result.save(tmp_path / "p.json").read_text())
    assert all(len(payload[key]["1"]) == 20 and len(payload[key]["0"]) == 30 for key in shapes)
    with pytest.raises(InputError, match="mesh_flip_test; lift a mesh model without flip"):
        posezoo.lift(people, layout="openpose-25", image_size=(720, 720), model=mesh, flip=True)
