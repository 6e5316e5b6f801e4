"""Learning curves and the ridge floor: tools/lift_curve.py's parts, on a real Runner."""
import csv

import numpy as np
import pytest

from posezoo.evaluation.baselines import RidgeLifter


def test_ridge_recovers_a_linear_lifter():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(500, 17, 3))
    true = rng.normal(size=(17 * 3 + 1, 17 * 3))
    targets = (np.concatenate([inputs.reshape(500, -1), np.ones((500, 1))], 1) @ true).reshape(500, 17, 3)
    ridge = RidgeLifter(alpha=1e-9).fit(inputs, targets)
    assert np.allclose(ridge.predict(inputs), targets, atol=1e-3)
    shrunk = RidgeLifter(alpha=1e4).fit(inputs, targets)
    assert np.abs(shrunk.weight[:-1]).sum() < np.abs(ridge.weight[:-1]).sum()  # the penalty shrinks
    with pytest.raises(ValueError, match="do not match"):
        ridge.predict(inputs[:, :10])
    with pytest.raises(RuntimeError, match="before fit"):
        RidgeLifter().predict(inputs)


def test_mlp_recipe_writes_a_learning_curve(tmp_path, data_dir):
    """mlp-lift-mocap for 4 iterations under mmengine's Runner: curve.csv holds one row per
    validation, with the training time growing and the metrics of that validation."""
    from mmengine.runner import Runner

    from posezoo.engine.runner import load_config, prepare

    files = [str(data_dir / "deepmimic.npz")]
    options = {"train_cfg.max_iters": 4, "train_cfg.val_interval": 2, "train_dataloader.batch_size": 32,
               "train_dataloader.num_workers": 0, "train_dataloader.persistent_workers": False,
               "train_dataloader.dataset.files": files, "train_dataloader.dataset.file_weights": None,
               "val_dataloader.dataset.files": files, "val_dataloader.dataset.file_weights": None,
               "val_dataloader.dataset.test_windows": 32, "val_dataloader.dataset.split_rule": "index",
               "test_dataloader.dataset.files": files, "test_dataloader.dataset.file_weights": None,
               "test_dataloader.dataset.split_rule": "index",
               "train_dataloader.dataset.split_rule": "index", "model.model.channels": 32}
    cfg = prepare(load_config("mlp-lift-mocap", options), str(tmp_path / "mlp"), "none")
    Runner.from_cfg(cfg).train()
    with open(tmp_path / "mlp" / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iter"]) for r in rows] == [2, 4]
    assert 0 < float(rows[0]["wall_s"]) <= float(rows[1]["wall_s"])
    assert all(0 < float(r["pose/mpjpe"]) < 5000 for r in rows)
