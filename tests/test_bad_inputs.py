"""Bad and edge inputs through every entry point (issue 13): each gives a valid result or a clear
error: exit 2 with one line naming the input for the command lines, a PosezooError for the API.
Nothing runs from a file posezoo opens, nothing is written on failure, an existing output is kept."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import posezoo
from posezoo.cli import main, run_script
from posezoo.errors import InputError, PosezooError, PosezooWarning

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "treadmill_walk_openpose.npz"
TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=27)


class Payload:
    """Unpickling this writes ``marker``: what a crafted file would do with a plain unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    """20 frames of a real OpenPose BODY_25 track (x, y px in a 720 x 720 image, confidence)."""
    with np.load(EXAMPLE) as data:
        return data["keypoints"][:20].copy()


def write_npz(path: Path, keypoints, **extra) -> Path:
    np.savez(path, keypoints=keypoints, layout="openpose-25", **extra)
    return path


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *mentions: str) -> None:
    lines = [line for line in err.splitlines() if line.strip() and ": warning: " not in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for text in mentions:
        assert text in lines[0], (text, lines[0])


# --- 1. no code from files ----------------------------------------------------------------------

def test_pth_payload_never_runs(tmp_path):
    from posezoo.checkpoint import CheckpointError
    from posezoo.engine import compat

    marker, evil = tmp_path / "ran", tmp_path / "iter_10.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "meta": Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="not safe to unpickle"):
        posezoo.create("dstformer-lift", checkpoint=evil, **TINY)
    compat.trust_only(None)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        compat.load_from_local(str(evil))
    assert not marker.exists()


def test_convert_payload_never_runs(tmp_path, capsys):
    marker, evil = tmp_path / "ran", tmp_path / "best_epoch.bin"
    torch.save({"model_pos": Payload(marker)}, evil)
    code, err = cli(capsys, "convert", "--family", "dstformer", evil, tmp_path / "out.safetensors")
    assert_one_line_error(code, err, str(evil), "not safe to unpickle")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_smpl_pickle_payload_never_runs(tmp_path):
    """A config (saved folder or Hub repo) names the SMPL file; its pickle runs nothing."""
    from posezoo.data.readers import DataFormatError
    from posezoo.models.mesh import _read_body_model

    marker, evil = tmp_path / "ran", tmp_path / "SMPL_NEUTRAL.pkl"
    evil.write_bytes(pickle.dumps({"v_template": Payload(marker)}, protocol=2))
    with pytest.raises(DataFormatError, match="refusing to unpickle"):
        _read_body_model(evil)
    assert not marker.exists()
    pytest.importorskip("smplx")
    folder = posezoo.save(posezoo.create("dstformer-lift", head="mesh", hidden_dim=8, **TINY), tmp_path / "mesh")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["head"]["smpl_model_path"] = str(evil)
    (folder / "config.json").write_text(json.dumps(config))
    model = posezoo.create(str(folder))
    with pytest.raises(DataFormatError, match="refusing to unpickle"):
        model(model.example_input(batch=1))
    assert not marker.exists()


def _fake_class(monkeypatch, module: str, name: str) -> type:
    """A class that pickles as ``module.name`` (chumpy / scipy are not installed in the tests)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(name, (), {"__module__": module})
    setattr(sys.modules[module], name, cls)
    return cls


def test_smpl_pickle_chumpy_and_sparse_become_arrays(tmp_path, monkeypatch):
    from posezoo.data.readers import DataFormatError, load_body_model_pickle

    shapedirs = np.arange(24.0).reshape(2, 3, 4)
    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    ch = _fake_class(monkeypatch, "chumpy.ch", "Ch")()
    ch.__dict__.update(x=shapedirs, _dirty_vars=set())
    csc = _fake_class(monkeypatch, "scipy.sparse._csc", "csc_matrix")()
    csc.__dict__.update(data=np.array([1.0, 2.0, 3.0]), indices=np.array([1, 0, 1]), indptr=np.array([0, 1, 2, 3]),
                        _shape=(2, 3), maxprint=50)
    lazy = _fake_class(monkeypatch, "chumpy.ch_ops", "add")()
    for protocol in (0, 2, 4):
        path = tmp_path / f"smpl{protocol}.pkl"
        path.write_bytes(pickle.dumps({"shapedirs": ch, "J_regressor": csc, "f": np.ones(3)}, protocol=protocol))
        arrays = load_body_model_pickle(path)
        assert np.array_equal(arrays["shapedirs"], shapedirs) and np.array_equal(arrays["J_regressor"], dense)
    (tmp_path / "lazy.pkl").write_bytes(pickle.dumps({"shapedirs": lazy}, protocol=2))
    with pytest.raises(DataFormatError, match="chumpy add expression.*convert the file"):
        load_body_model_pickle(tmp_path / "lazy.pkl")


def test_npy_object_array_is_not_unpickled(tmp_path, capsys):
    marker, evil = tmp_path / "ran", tmp_path / "keypoints.npy"
    np.save(evil, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    code, err = cli(capsys, "lift", evil, "--out", tmp_path / "out.npz")
    assert_one_line_error(code, err, str(evil))
    assert not marker.exists() and not (tmp_path / "out.npz").exists()


# --- 2./3. lift: files, arguments, degenerate 2D --------------------------------------------------

def _bad_file(tmp_path: Path, kind: str, walk: np.ndarray) -> Path:
    path = tmp_path / "input"
    if kind == "empty.npy":
        (path := tmp_path / "k.npy").write_bytes(b"")
    elif kind == "empty.npz":
        (path := tmp_path / "k.npz").write_bytes(b"")
    elif kind == "truncated.npz":
        write_npz(tmp_path / "full.npz", walk)
        (path := tmp_path / "k.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:300])
    elif kind == "zero-frames.npy":
        np.save(path := tmp_path / "k.npy", np.zeros((0, 25, 3), np.float32))
    elif kind.startswith("json:"):
        (path := tmp_path / "k.json").write_text(kind[len("json:"):])
    elif kind.startswith("fps="):
        path = write_npz(tmp_path / "k.npz", walk, fps=np.array(json.loads(kind[4:]), dtype=float))
    elif kind == "image_size=(720,)":
        path = write_npz(tmp_path / "k.npz", walk, image_size=np.array([720]))
    elif kind == "image ids 0 and 1e11":
        dets = [{"image_id": i, "keypoints": walk[0].ravel().tolist(), "score": 1} for i in (0, 1e11)]
        (path := tmp_path / "k.json").write_text(json.dumps(dets))
    elif kind == "coco.txt":
        (path := tmp_path / "k.txt").write_text("x")
    return path


BAD_FILES = [
    ("empty.npy", "an empty file"), ("empty.npz", "an empty file"), ("truncated.npz", "k.npz"),
    ("zero-frames.npy", "no keypoints"), ("json:[]", "no detections"), ("json:null", "k.json"),
    ("json:{}", "k.json"), ('json:{"people": "Alice"}', "OpenPose"),
    ('json:{"people": [{"person_id": [-1]}]}', "pose_keypoints_2d"),
    ('json:[{"image_id": 0, "keypoints": "abc"}]', "flat list"), ("fps=[]", "fps"), ("fps=0", "fps"),
    ("fps=NaN", "fps"), ("fps=-30", "fps"), ("image_size=(720,)", "image_size"),
    ("image ids 0 and 1e11", "image ids must be frame numbers"), ("coco.txt", "unsupported"),
]


@pytest.mark.parametrize("kind,mention", BAD_FILES, ids=[k for k, _ in BAD_FILES])
def test_lift_bad_file(tmp_path, capsys, walk, kind, mention):
    path = _bad_file(tmp_path, kind, walk)
    out = tmp_path / "out.npz"
    code, err = cli(capsys, "lift", path, "--out", out)
    assert_one_line_error(code, err, path.name, mention)
    assert not out.exists()
    with pytest.raises(PosezooError):
        posezoo.lift(path)


def _degenerate(walk: np.ndarray, kind: str) -> np.ndarray:
    bad = walk.copy()
    if kind == "x 1e30":
        bad[..., :2] *= 1e30
    elif kind == "inf":
        bad[3, 4, 0] = np.inf
    elif kind == "confidence 50":
        bad[..., 2] *= 50
    elif kind == "one point":
        bad[..., :2] = 360.0
    elif kind == "at -5000 px":
        bad[..., :2] -= 5000
    return bad


DEGENERATE = [("x 1e30", "not image coordinates"), ("inf", "not image coordinates"),
              ("confidence 50", "confidences must lie in [0, 1]"), ("one point", "at one point"),
              ("at -5000 px", "outside the 720 x 720 image")]


@pytest.mark.parametrize("kind,mention", DEGENERATE, ids=[k for k, _ in DEGENERATE])
def test_lift_refuses_degenerate_2d(tmp_path, capsys, walk, kind, mention):
    path = write_npz(tmp_path / "k.npz", _degenerate(walk, kind), image_size=np.array([720, 720]))
    out = tmp_path / "out.npz"
    out.write_bytes(b"kept")
    code, err = cli(capsys, "lift", path, "--out", out)
    assert_one_line_error(code, err, str(path), "track 0", mention)
    assert out.read_bytes() == b"kept"
    with pytest.raises(InputError, match=mention.replace("[", r"\[").replace("]", r"\]")):
        posezoo.lift(path)


BAD_ARGS = [
    (["--size", "1", "1"], "outside the 1 x 1 image"), (["--size", "0", "720"], "image size"),
    (["--fps", "0"], "fps"), (["--fps", "-5"], "fps"), (["--fps", "nan"], "fps"),
    (["--max-gap", "-1"], "max_gap"), (["--device", "bogus"], "device 'bogus'"),
    (["--out", "{tmp}/file/out.npz"], "is a file, not a folder"), (["--out", "{tmp}/out.txt"], "out.txt"),
    (["--render", "{tmp}/x.png"], "x.png"), (["--out", "{tmp}/folder.npz"], "is a folder"),
]
if not torch.cuda.is_available() or torch.cuda.device_count() < 8:
    BAD_ARGS.append((["--device", "cuda:7"], "device 'cuda:7'"))


@pytest.mark.parametrize("args,mention", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_lift_bad_argument(tmp_path, capsys, walk, args, mention):
    path = write_npz(tmp_path / "k.npz", walk, image_size=np.array([720, 720]))
    (tmp_path / "file").write_text("a file")
    (tmp_path / "folder.npz").mkdir()
    args = [a.format(tmp=tmp_path) for a in args]
    out = tmp_path / "out.npz"
    code, err = cli(capsys, "lift", path, "--out", out, *args)
    assert_one_line_error(code, err, mention.format(tmp=tmp_path))
    assert not out.exists(), "nothing written before a refusal"


def test_lift_edge_inputs_give_results(tmp_path, capsys, walk):
    """Usable input with flaws: a result, and a warning where posezoo changed or doubts something."""
    nan_joint = walk.copy()
    nan_joint[:, 7] = np.nan  # one joint missing in every frame: undetected, not "no detected frame"
    path = write_npz(tmp_path / "nan.npz", nan_joint, image_size=np.array([720, 720]))
    code, err = cli(capsys, "lift", path, "--out", tmp_path / "nan_out.json")
    assert code == 0 and "warning: " in err and "NaN joints" in err, err
    assert np.isfinite(json.loads((tmp_path / "nan_out.json").read_text())["poses_3d"]["0"]).all()
    dets = [{"image_id": f"frame_{t:04d}.jpg", "keypoints": walk[t].ravel().tolist(), "score": 0.9, "track_id": None}
            for t in range(len(walk))]
    (tmp_path / "null_track.json").write_text(json.dumps(dets))
    code, err = cli(capsys, "lift", tmp_path / "null_track.json", "--layout", "openpose-25", "--out", tmp_path / "o.npz")
    assert code == 0, err
    rng = np.random.default_rng(0)
    noise = np.concatenate([rng.uniform(0, 720, (20, 25, 2)), np.ones((20, 25, 1))], -1)
    with pytest.warns(PosezooWarning, match="looks like noise"):
        posezoo.lift(noise, layout="openpose-25", image_size=(720, 720))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosezooWarning)  # a real track: no warning at all
        posezoo.lift(walk, layout="openpose-25", image_size=(720, 720))


def test_lift_api_arguments_and_models(tmp_path, walk):
    with pytest.raises(InputError, match="image size"):
        posezoo.lift(walk, layout="openpose-25", image_size=(720,))
    with pytest.raises(InputError, match="'action' head"):
        posezoo.lift(walk, layout="openpose-25", model=posezoo.create("dstformer-lift", head="action", num_classes=3,
                                                                      hidden_dim=8, **TINY))
    folder = posezoo.save(posezoo.create("dstformer-lift", **TINY), tmp_path / "nan_model")
    state = posezoo.create(str(folder)).state_dict()
    state["head.fc.weight"] = torch.full_like(state["head.fc.weight"], float("nan"))
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    with pytest.raises(InputError, match="NaN/inf.*head.fc.weight"):
        posezoo.lift(walk, layout="openpose-25", model=str(folder))


# --- render, convert, create ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lifted(tmp_path_factory, walk) -> Path:
    out = tmp_path_factory.mktemp("lifted") / "poses.npz"
    posezoo.lift(walk, layout="openpose-25", image_size=(720, 720)).save(out)
    return out


RENDER = [(["--step", "-1"], "step"), (["--step", "0"], "step"), (["--fps", "-5"], "fps"),
          (["--fps", "0"], "fps"), (["--track", "5"], "no track 5"), ([], "{poses}")]


@pytest.mark.parametrize("args,mention", RENDER, ids=[" ".join(a) or "NaN poses" for a, _ in RENDER])
def test_render_bad_argument(tmp_path, capsys, lifted, args, mention):
    poses = lifted
    if not args:  # a lift output holding NaN
        with np.load(lifted) as data:
            arrays = dict(data)
        arrays["poses_3d"][0, 3, 2] = np.nan
        np.savez(poses := tmp_path / "nan.npz", **arrays)
    out = tmp_path / "out.gif"
    code, err = cli(capsys, "render", poses, out, *args)
    assert_one_line_error(code, err, mention.format(poses=poses))
    assert not out.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip", None], ids=["empty", "text", "keypoints npz"])
def test_render_not_a_lift_output(tmp_path, capsys, walk, content):
    path = tmp_path / "poses.npz"
    write_npz(path, walk) if content is None else path.write_bytes(content)
    code, err = cli(capsys, "render", path, tmp_path / "out.gif")
    assert_one_line_error(code, err, str(path))


CONVERT = [(["--model", "dstformer-lift", "--set", "depth=abc"], "--set depth=abc"),
           (["--model", "dstformer-lift", "--set", "depth"], "--set depth"), ([], "{src}")]


@pytest.mark.parametrize("args,mention", CONVERT, ids=["bad JSON", "no value", "random bytes"])
def test_convert_bad_input(tmp_path, capsys, args, mention):
    src = tmp_path / "best_epoch.bin"
    src.write_bytes(os.urandom(2000))
    out = tmp_path / "out.safetensors"
    code, err = cli(capsys, "convert", "--family", "dstformer", *args, src, out)
    assert_one_line_error(code, err, mention.format(src=src))
    assert "not safe" not in err and not out.exists()


@pytest.mark.parametrize("data", [b"\x80\x02e.", b"\x80\x02t.", b"\x80\x02}q\x00h\x01."],
                         ids=["pop empty stack (APPENDS)", "pop empty stack (TUPLE)", "missing memo (BINGET)"])
def test_garbage_pickles_are_unreadable_checkpoints(tmp_path, capsys, data):
    """Bytes that break torch's weights-only unpickler in other ways than UnpicklingError (IndexError,
    KeyError): random bytes hit them now and then, and they were reported as internal errors."""
    src = tmp_path / "best_epoch.bin"
    src.write_bytes(data)
    code, err = cli(capsys, "convert", "--family", "dstformer", src, tmp_path / "out.safetensors")
    assert_one_line_error(code, err, str(src))
    assert "not a readable PyTorch checkpoint" in err


def test_convert_wrong_family_and_unwritable_output(tmp_path, capsys):
    src = tmp_path / "videopose3d.bin"
    torch.save({"model_pos": {"expand_conv.weight": torch.ones(1)}, "random_state": np.random.RandomState(0)}, src)
    code, err = cli(capsys, "convert", "--family", "dstformer", src, tmp_path / "o.safetensors")
    assert_one_line_error(code, err, str(src), "is the family (dstformer) right?")
    folder = posezoo.save(posezoo.create("dstformer-lift", **TINY), tmp_path / "m")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # /proc takes no new files even from root; a read-only folder refuses other users
    for target in [Path("/proc/o.safetensors")] + ([locked / "o.safetensors"] if not os.access(locked, os.W_OK) else []):
        code, err = cli(capsys, "convert", "--family", "dstformer", folder / "model.safetensors", target)
        assert_one_line_error(code, err, str(target))
        assert ".tmp" not in err


BAD_CONFIG = [dict(dim_feat=-8), dict(dim_feat=0), dict(depth=-1), dict(depth=2.5), dict(drop_rate=1.0)]


@pytest.mark.parametrize("overrides", BAD_CONFIG, ids=[str(o) for o in BAD_CONFIG])
def test_create_refuses_bad_config_values(overrides):
    name = next(iter(overrides))
    with pytest.raises(InputError, match=f"{name}="):
        posezoo.create("dstformer-lift", **{**TINY, **overrides})


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_tensors_in_safetensors_are_refused(tmp_path, dtype):
    model = posezoo.create("dstformer-lift", **TINY)
    state = {k: v.to(dtype) if k == "head.fc.weight" else v for k, v in model.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    with pytest.raises(InputError, match=f"head.fc.weight is {dtype}"):
        posezoo.create("dstformer-lift", checkpoint=tmp_path / "w.safetensors", **TINY)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_inputs_are_cast(dtype):
    model = posezoo.create("dstformer-lift", **TINY)
    x = model.example_input(batch=1)
    assert torch.allclose(model(x.to(dtype)), model(x), atol=1e-2)


# --- tools/*.py ---------------------------------------------------------------------------------------

def _tiny_config(data_dir: Path, tmp_path: Path) -> Path:
    from posezoo.engine.runner import load_config

    files = [str(data_dir / "bandai1.npz")]
    cfg = load_config("dstformer-lift", {
        "model.model": dict(name="dstformer-lift", **TINY),
        "model.flip_test": False, "test_dataloader.dataset.files": files, "test_dataloader.dataset.clip_len": 9,
        "test_dataloader.dataset.stride": 400, "val_dataloader.dataset.files": files,
        "train_dataloader.dataset.files": files})
    cfg.dump(str(tmp_path / "tiny.py"))
    return tmp_path / "tiny.py"


def test_test_tool_refuses_unsafe_or_unfitting_checkpoints(tmp_path, capsys, data_dir):
    from tools.test import main as test_main

    config = _tiny_config(data_dir, tmp_path)
    marker, evil = tmp_path / "ran", tmp_path / "iter_10.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "meta": Payload(marker)}, evil)
    common = ["--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "results.json")]
    code = run_script("tools/test.py", test_main, [str(config), "--checkpoint", str(evil), *common])
    assert_one_line_error(code, capsys.readouterr().err, str(evil), "--trust-checkpoint")
    assert not marker.exists()
    other = tmp_path / "other.pth"
    torch.save({"state_dict": posezoo.create("dstformer-lift", **{**TINY, "dim_feat": 8}).state_dict()}, other)
    code = run_script("tools/test.py", test_main, [str(config), "--checkpoint", str(other), *common])
    assert_one_line_error(code, capsys.readouterr().err, str(other), "does not fit")
    assert not (tmp_path / "results.json").exists(), "an unfitting checkpoint is not scored"


def test_tool_scripts_exit_2_with_one_line(capsys):
    """What each tools/*.py ``__main__`` runs: its main() through run_script (--debug taken out)."""
    from tools.train import main as train_main

    code = run_script("tools/train.py", train_main, ["no-such-recipe"])
    assert_one_line_error(code, capsys.readouterr().err, "tools/train.py: error:", "no-such-recipe")
    with pytest.raises(FileNotFoundError, match="no-such-recipe"):
        run_script("tools/train.py", train_main, ["no-such-recipe", "--debug"])


def test_benchmark_tools_name_missing_data_in_one_line(tmp_path):
    """tools/lift_curve.py and tools/lift_h36m.py run as users run them, without their data files:
    exit 2, one line naming the file, no traceback."""
    env = dict(os.environ, POSEZOO_DATA=str(tmp_path / "unset"))
    for args, mention in ((["tools/lift_curve.py", "mlp-lift-mocap", "--data", str(tmp_path / "nowhere"),
                            "--out", str(tmp_path / "out")], "nowhere/bandai1.npz"),
                          (["tools/lift_h36m.py", str(tmp_path)], "data_3d_h36m.npz")):
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        prog = args[0]
        assert_one_line_error(proc.returncode, proc.stderr, f"{prog}: error:", mention)


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, err = cli(capsys, "render", tmp_path / "missing.npz", tmp_path / "o.gif")
    assert_one_line_error(code, err, "missing.npz")
    with pytest.raises(FileNotFoundError):
        main(["render", "--debug", str(tmp_path / "missing.npz"), str(tmp_path / "o.gif")])


# --- 4. temp files and resume --------------------------------------------------------------------------

def test_killed_write_leaves_a_temp_file_resume_removes(tmp_path):
    from posezoo.engine.runner import resume_checkpoint

    torch.save({"state_dict": {"w": torch.ones(1)}}, tmp_path / "iter_5.pth")
    torch.save({"state_dict": {"w": torch.ones(1)}}, tmp_path / "iter_8.pth")
    (tmp_path / "iter_10.pth").write_bytes((tmp_path / "iter_8.pth").read_bytes()[:100])  # torn
    (tmp_path / "last_checkpoint").write_text("")  # mmengine's pointer, empty after a kill
    killed = ("import os, sys; from posezoo._atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'x' * 1000); os._exit(9)")
    proc = subprocess.run([sys.executable, "-c", killed, str(tmp_path / "iter_12.pth")], cwd=ROOT, check=False)
    assert proc.returncode == 9
    left = list(tmp_path.glob(".iter_12.pth.*"))
    assert len(left) == 1 and left[0].name.endswith(".tmp")
    assert resume_checkpoint(tmp_path) == str(tmp_path / "iter_8.pth")
    assert not list(tmp_path.glob(".iter_12.pth.*"))


def test_failed_save_keeps_the_existing_output(tmp_path, lifted):
    from posezoo.lifting import LiftResult

    result = LiftResult(poses={0: np.full((2, 17, 3), np.nan, np.float32)}, confidence={0: np.ones((2, 17))},
                        frames=np.arange(2), joint_names=("a",) * 17, layout="h36m-17", units="m", frame="camera",
                        model="m")
    out = tmp_path / "poses.json"
    out.write_text("kept")
    with pytest.raises(InputError, match="NaN/inf"):
        result.save(out)
    assert out.read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["poses.json"]
