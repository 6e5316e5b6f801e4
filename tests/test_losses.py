"""Losses: parity with MotionBERT's lib/model/loss.py on the official fixture, and known answers."""
from __future__ import annotations

import math

import pytest
import torch

from posezoo import losses as L
from tests.conftest import load_fixture

PARITY = {
    "loss_mpjpe": L.mpjpe,
    "n_mpjpe": L.n_mpjpe,
    "loss_velocity": L.velocity,
    "loss_limb_var": L.limb_var,
    "loss_limb_gt": L.limb_gt,
    "loss_angle": L.angle,
    "loss_angle_velocity": L.angle_velocity,
}


@pytest.fixture(scope="module")
def official(fixtures_dir):
    _, io, sidecar = load_fixture(fixtures_dir, "motionbert", "losses")
    assert io["pred"].dtype == torch.float64
    return io, sidecar


@pytest.mark.parametrize("name", sorted(PARITY))
def test_official_parity(official, name):
    io, _ = official
    value = PARITY[name](io["pred"], io["gt"])
    assert value.dtype == torch.float64
    assert abs(float(value) - float(io[name])) < 1e-10, (name, float(value), float(io[name]))


def test_official_2d_weighted_and_total(official):
    io, sidecar = official
    assert abs(float(L.weighted_2d(io["pred"], io["gt"], io["conf"])) - float(io["loss_2d_weighted"])) < 1e-10
    w = sidecar["weights"]
    total = sum(L.weighted_pose_loss(io["pred"], io["gt"], {
        "mpjpe": 1.0, "n_mpjpe": w["lambda_scale"], "velocity": w["lambda_3d_velocity"],
        "limb_var": w["lambda_lv"], "limb_gt": w["lambda_lg"], "angle": w["lambda_a"],
        "angle_velocity": w["lambda_av"]}).values())
    assert abs(float(total) - float(io["train_py_total_pose3d_cfg"])) < 1e-10


def test_known_answers():
    g = torch.randn(2, 5, 17, 3, dtype=torch.float64)
    shift = torch.tensor([0.3, -0.4, 0.0], dtype=torch.float64)  # |shift| = 0.5 at every joint
    assert float(L.mpjpe(g + shift, g)) == pytest.approx(0.5, abs=1e-12)
    assert float(L.velocity(g + shift, g)) == pytest.approx(0.0, abs=1e-12)  # constant offset: no motion error
    assert float(L.n_mpjpe(2.5 * g, g)) == pytest.approx(0.0, abs=1e-12)  # scale-only error vanishes
    assert float(L.limb_gt(g + shift, g)) == pytest.approx(0.0, abs=1e-12)
    assert float(L.angle(3.0 * g + shift, g)) == pytest.approx(0.0, abs=1e-6)  # angles ignore scale/shift
    static = g[:, :1].expand(2, 5, 17, 3)
    assert float(L.limb_var(static)) == pytest.approx(0.0, abs=1e-12)
    # one frame: the temporal terms are 0, as officially
    assert float(L.velocity(g[:, :1], g[:, :1] + 1)) == 0.0 and float(L.limb_var(g[:, :1])) == 0.0
    # 2D loss weighs the difference vector: confidence 0 removes a joint entirely
    conf = torch.zeros(2, 5, 17, 1, dtype=torch.float64)
    assert float(L.weighted_2d(g + 1, g, conf)) == 0.0
    assert float(L.weighted_2d(g + shift, g, conf + 1)) == pytest.approx(0.5, abs=1e-12)


def test_classification_and_vq():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    assert float(L.cross_entropy(logits, torch.tensor([0, 2]))) < 1e-3
    assert float(L.cross_entropy(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))) == pytest.approx(math.log(5))
    z = torch.randn(8, 4, requires_grad=True)
    q = torch.randn(8, 4, requires_grad=True)
    loss = L.vq_commitment(z, q, beta=0.25)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.25 * float(((z - q) ** 2).mean().detach()), rel=1e-6)
    assert q.grad is None and z.grad is not None  # codes are not pulled by the commitment term
    assert float(L.smooth_l1(torch.zeros(1, 2, 3), torch.full((1, 2, 3), 0.5))) == pytest.approx(0.125)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="same shape"):
        L.mpjpe(torch.zeros(1, 2, 17, 3), torch.zeros(1, 2, 16, 3))
    with pytest.raises(ValueError, match="h36m-17"):
        L.limb_gt(torch.zeros(1, 2, 16, 3), torch.zeros(1, 2, 16, 3))
    with pytest.raises(KeyError, match="known"):
        L.weighted_pose_loss(torch.zeros(1, 2, 17, 3), torch.zeros(1, 2, 17, 3), {"mpjep": 1.0})
    with pytest.raises(ValueError, match="logits"):
        L.cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2))
