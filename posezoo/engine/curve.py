"""Learning curves: every validation of a run appended to ``<work_dir>/curve.csv``."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path

from mmengine.dist import master_only
from mmengine.hooks import Hook

from posezoo.registry import HOOKS


@HOOKS.register_module()
class LearningCurveHook(Hook):
    """Appends one row per validation to ``curve.csv`` in the work_dir: ``iter``, ``wall_s``
    (seconds of training since the run started, validation time excluded, resumed runs continue
    the count), ``cpu_s`` (CPU seconds of the training process, its data workers excluded) and
    every metric. Error vs time is what a CPU user pays for, so recipes are compared on it
    (tools/lift_curve.py)."""

    priority = "LOW"

    def __init__(self, filename: str = "curve.csv"):
        self.filename = filename
        self._train_s = 0.0
        self._since: float | None = None

    def before_train(self, runner) -> None:
        path = Path(runner.work_dir) / self.filename
        if runner.iter > 0 and path.exists():  # a resumed run: continue its clock
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            self._train_s = float(rows[-1]["wall_s"]) if rows else 0.0
        self._since = time.perf_counter()

    def before_val(self, runner) -> None:
        if self._since is not None:
            self._train_s += time.perf_counter() - self._since
            self._since = None

    def after_val(self, runner) -> None:
        self._since = time.perf_counter()

    @master_only
    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not metrics:
            return
        path = Path(runner.work_dir) / self.filename
        row = {"iter": runner.iter, "wall_s": round(self._train_s, 1), "cpu_s": round(sum(os.times()[:2]), 1),
               **{k: round(float(v), 3) for k, v in metrics.items()}}
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row), lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(row)
