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
