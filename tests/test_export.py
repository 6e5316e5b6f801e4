"""Export: ONNX run in onnxruntime and torch.export programs match PyTorch, with a dynamic frame axis."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import posezoo
from posezoo.export import export_model

TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=27)


@pytest.mark.slow
def test_onnx_matches_pytorch_on_other_lengths(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = posezoo.create("dstformer-lift", **TINY)
    path = export_model(model, tmp_path / "m.onnx", "onnx")
    session = ort.InferenceSession(str(path))
    for batch, frames in ((2, 27), (1, 11), (3, 5)):
        x = torch.randn(batch, frames, 17, 3)
        (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            ref = model(x).numpy()
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4


def test_torch_export_program_round_trip(tmp_path):
    model = posezoo.create("tcn-27f-lift", channels=32)
    path = export_model(model, tmp_path / "m.pt2", "torch-export")
    program = torch.export.load(str(path))
    x = torch.randn(1, 40, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_cli_export_refuses_random_weights(tmp_path):
    result = subprocess.run([sys.executable, "-m", "posezoo.cli", "export", "mixste-243f-lift", "--out",
                             str(tmp_path / "x.onnx")], capture_output=True, text=True)
    assert result.returncode == 2 and "no published weights" in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def _run_moved(ort, path, model, x):
    """The ONNX file's output on x, run by onnxruntime, against PyTorch's."""
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), atol=1e-4, rtol=0)


def test_cli_onnx_is_one_file_that_runs_after_a_move(tmp_path, monkeypatch):
    """Issue 14: the weights used to go to a hidden temp-named .onnx.data in the current folder."""
    import shutil

    from posezoo.cli import main

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = posezoo.create("tcn-27f-lift", channels=32).eval()
    folder = posezoo.save(model, tmp_path / "tcn")
    (work := tmp_path / "work").mkdir()
    monkeypatch.chdir(work)
    assert main(["export", str(folder), "--format", "onnx"]) == 0
    assert [p.name for p in work.iterdir()] == ["tcn.onnx"]  # no .data, no temp file left anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tcn", "work"]
    moved = tmp_path / "elsewhere" / "lifter.onnx"
    moved.parent.mkdir()
    shutil.move(work / "tcn.onnx", moved)
    _run_moved(ort, moved, model, torch.randn(1, 40, 17, 2))


def test_onnx_external_weights_are_named_for_the_file_and_move_with_it(tmp_path):
    """Above 2 GB the weights go beside the .onnx as <name>.onnx.data (forced here on a small model)."""
    import shutil

    from posezoo.export import save_onnx

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = posezoo.create("tcn-27f-lift", channels=32).eval()
    x = model.example_input(batch=1)
    program = torch.onnx.export(model, (x,), None, dynamo=True, verbose=False)
    save_onnx(program, tmp_path / "a" / "m.onnx", external_data=True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["m.onnx", "m.onnx.data"]
    shutil.move(tmp_path / "a", tmp_path / "b")
    _run_moved(ort, tmp_path / "b" / "m.onnx", model, x)
    save_onnx(program, tmp_path / "b" / "m.onnx")  # small enough to embed: the stale .data goes
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["m.onnx"]
    _run_moved(ort, tmp_path / "b" / "m.onnx", model, x)
