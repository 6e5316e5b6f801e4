"""The sanity floor of lifting: a ridge regression from one frame's 2D to its 3D, fitted in closed form.

A trained lifter that does not beat it has learned nothing a linear map cannot; on Human3.6M it
gives 111 mm MPJPE from ground-truth 2D (shared/reference/data.md §5). ``tools/lift_curve.py``
fits it on the same data as the recipes it compares.
"""
from __future__ import annotations

import numpy as np


class RidgeLifter:
    """``fit(inputs, targets)`` then ``predict(inputs)``: (N, J, C) normalised 2D (+ confidence) ->
    (N, J, 3), one frame at a time; ``alpha`` is the L2 penalty (the bias is not penalised)."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)
        self.weight: np.ndarray | None = None  # (J * C + 1, J * 3)

    @staticmethod
    def _design(inputs: np.ndarray) -> np.ndarray:
        flat = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
        return np.concatenate([flat, np.ones((len(flat), 1))], axis=1)

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> RidgeLifter:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs for {len(targets)} targets")
        x = self._design(inputs)
        y = np.asarray(targets, np.float64).reshape(len(targets), -1)
        penalty = self.alpha * np.eye(x.shape[1])
        penalty[-1, -1] = 0.0
        self.weight = np.linalg.solve(x.T @ x + penalty, x.T @ y)
        self._joints = targets.shape[1]
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        if self.weight is None:
            raise RuntimeError("RidgeLifter.predict before fit")
        if self._design(inputs[:1]).shape[1] != self.weight.shape[0]:
            raise ValueError(f"inputs of shape {inputs.shape[1:]} do not match the fitted shape")
        return (self._design(inputs) @ self.weight).reshape(len(inputs), self._joints, 3).astype(np.float32)
