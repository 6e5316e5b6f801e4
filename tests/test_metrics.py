"""Metrics: per-frame errors against MotionBERT's numpy metrics, known answers, and the
mmengine metric classes (averaging, units, protocols)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from posezoo.evaluation import functional as E
from posezoo.evaluation.metrics import AccuracyMetric, CodebookMetric, MeshMetric, PoseErrorMetric
from posezoo.registry import METRICS
from tests.conftest import load_fixture


def test_official_per_frame_parity(fixtures_dir):
    _, io, _ = load_fixture(fixtures_dir, "motionbert", "losses")
    pred, gt = io["pred"].reshape(-1, 17, 3).numpy(), io["gt"].reshape(-1, 17, 3).numpy()
    np.testing.assert_allclose(E.mpjpe(pred, gt), io["mpjpe_per_frame"].numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(E.p_mpjpe(pred, gt), io["p_mpjpe_per_frame"].numpy(), rtol=0, atol=1e-10)


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_alignment_known_answers():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(6, 17, 3))
    similar = 1.7 * gt @ _rotation(0.8).T + np.array([0.1, 2.0, -0.5])
    assert E.p_mpjpe(similar, gt).max() < 1e-10  # rotation + scale + translation is aligned away
    assert E.mpjpe(similar, gt).min() > 0.1
    assert E.n_mpjpe(0.5 * gt, gt).max() < 1e-12  # N-MPJPE removes scale only
    assert E.n_mpjpe(gt @ _rotation(0.8).T, gt).min() > 0.1
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection is not a rotation: official handling keeps it an error
    assert E.p_mpjpe(mirrored, gt).min() > 1e-3
    moving = gt + np.arange(6)[:, None, None] * np.array([0.0, 0.0, 0.01])  # constant velocity drift
    np.testing.assert_allclose(E.mpjve(moving, gt), 0.01, atol=1e-12)
    np.testing.assert_allclose(E.acceleration_error(moving, gt), 0.0, atol=1e-12)
    assert E.mpjve(gt, gt).shape == (5,) and E.acceleration_error(gt, gt).shape == (4,)
    with pytest.raises(ValueError, match="same shape"):
        E.mpjpe(gt, gt[:, :16])


def test_pose_metric_frame_and_action_averaging():
    assert METRICS.get("PoseErrorMetric") is PoseErrorMetric
    metric = PoseErrorMetric(errors=["mpjpe", "p_mpjpe"], average=["frame", "action"], scale=1000.0,
                             dataset="toy", per_action=True)
    target = torch.zeros(4, 17, 3)
    target[:, 1:, 0] = torch.arange(1, 17) * 0.01
    off = torch.zeros(17, 3)
    off[1:, 1] = 0.001  # every non-root joint 1 mm off -> 16/17 mm per frame
    samples = [{"pred": target + off, "target": target, "meta": {"action": "walk"}},
               {"pred": target + off, "target": target, "meta": {"action": "walk"}},
               {"pred": target + 3 * off, "target": target, "meta": {"action": "run"}}]
    metric.process(None, samples)
    out = metric.compute_metrics(metric.results)
    unit = 16 / 17
    assert out["mpjpe"] == pytest.approx(unit * (1 + 1 + 3) / 3)      # every frame counts once
    assert out["mpjpe_action_avg"] == pytest.approx(unit * (1 + 3) / 2)  # each action counts once
    assert out["mpjpe/run"] == pytest.approx(3 * unit) and out["mpjpe/walk"] == pytest.approx(unit)
    described = metric.describe()
    assert described["pose/mpjpe"] == {"unit": "mm", "protocol": "h36m-p1", "dataset": "toy", "averaging": "frame"}
    assert described["pose/p_mpjpe_action_avg"]["protocol"] == "h36m-p2"
    assert described["pose/mpjpe_action_avg"]["averaging"] == "action"


def test_pose_metric_root_relative():
    target = torch.randn(3, 17, 3)
    metric = PoseErrorMetric(errors=["mpjpe"], scale=1.0)
    metric.process(None, [{"pred": target + 5.0, "target": target, "meta": {}}])  # global offset only
    assert metric.compute_metrics(metric.results)["mpjpe"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(KeyError, match="known"):
        PoseErrorMetric(errors=["mpjpe", "pck"])


def test_velocity_errors_refuse_single_frames():
    """A centre-frame model scores one frame per sample: MPJVE would be an empty mean (nan)."""
    one = {"pred": torch.randn(1, 17, 3), "target": torch.randn(1, 17, 3), "meta": {}}
    with pytest.raises(ValueError, match="mpjve need.*at least 2 frames.*got 1"):
        PoseErrorMetric(errors=["mpjpe", "mpjve"]).process(None, [one])
    metric = PoseErrorMetric(errors=["mpjpe"])
    metric.process(None, [one])
    assert math.isfinite(metric.compute_metrics(metric.results)["mpjpe"])


def test_accuracy_topk():
    metric = AccuracyMetric(topk=(1, 2), dataset="toy")
    logits = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    labels = [0, 1, 2, 0]
    metric.process(None, [{"logits": lg, "label": lb} for lg, lb in zip(logits, labels)])
    out = metric.compute_metrics(metric.results)
    assert out == {"top1": 50.0, "top2": 75.0}
    assert metric.describe()["action/top1"]["unit"] == "%"


def test_mesh_mpve():
    metric = MeshMetric(scale=1.0)
    verts = torch.randn(2, 30, 3)
    kp = torch.randn(2, 17, 3)
    shift = torch.tensor([0.0, 0.0, 2.0])
    # a global translation cancels (root-aligned); a vertex-only offset of 2 does not
    metric.process(None, [{"pred": {"verts": verts + shift, "kp_3d": kp + shift}, "target": {"verts": verts, "kp_3d": kp}},
                          {"pred": {"verts": verts + shift, "kp_3d": kp}, "target": {"verts": verts, "kp_3d": kp}}])
    out = metric.compute_metrics(metric.results)
    assert out["mpve"] == pytest.approx(1.0, abs=1e-5) and out["mpjpe"] == pytest.approx(0.0, abs=1e-5)


def test_codebook_perplexity_and_usage():
    metric = CodebookMetric(num_tokens=8)
    metric.process(None, [{"tokens": torch.tensor([0, 1, 2, 3])}, {"tokens": torch.tensor([0, 1, 2, 3])}])
    out = metric.compute_metrics(metric.results)
    assert out["perplexity"] == pytest.approx(4.0) and out["usage"] == pytest.approx(50.0)
    collapsed = CodebookMetric(num_tokens=8)
    collapsed.process(None, [{"tokens": torch.zeros(16, dtype=torch.long)}])
    assert collapsed.compute_metrics(collapsed.results) == {"perplexity": 1.0, "usage": 12.5}
