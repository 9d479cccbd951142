"""A logistic regression behind the model protocol: one round is one gradient step on the
standardised features (mean and scale from the training rows only)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.models.base import Matrices, RowOptions, Rows

WEIGHTS_FILE = "weights.npz"


def _array(x: Any) -> np.ndarray:
    if isinstance(x, tuple):  # the model's own (features, labels)
        x = x[0]
    return np.asarray(x.to_numpy() if isinstance(x, pd.DataFrame) else x, np.float64)


class ToyFitted:
    """Weights on standardised features; the margin is their sum plus the bias."""

    kind: ClassVar[str] = "toy"

    def __init__(
        self, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray, bias: float, **best: Any
    ) -> None:
        self.mean, self.scale, self.weights, self.bias = mean, scale, weights, float(bias)
        self.best_round = int(best.get("best_round", 0))
        self.best_score = float(best.get("best_score", math.nan))

    def _terms(self, x: Any) -> np.ndarray:
        z = np.nan_to_num((_array(x) - self.mean) / self.scale)
        return z * self.weights

    def predict(self, x: Any) -> np.ndarray:
        """The probability of the label."""
        return 1.0 / (1.0 + np.exp(-(self._terms(x).sum(axis=1) + self.bias)))

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """Each feature's term of the margin, then the bias."""
        terms = self._terms(x)
        return np.column_stack([terms, np.full(len(terms), self.bias)])

    def importance(self) -> dict[str, float]:
        """|weight| by feature position."""
        return {f"f{i}": float(abs(w)) for i, w in enumerate(self.weights)}

    def save(self, directory: Path) -> None:
        """The weights as `weights.npz`."""
        np.savez(
            Path(directory) / WEIGHTS_FILE,
            mean=self.mean,
            scale=self.scale,
            weights=self.weights,
            bias=self.bias,
        )

    @classmethod
    def load(cls, directory: Path, n_jobs: int = 1) -> ToyFitted:
        """Saved weights (`save`)."""
        saved = np.load(Path(directory) / WEIGHTS_FILE)
        return cls(saved["mean"], saved["scale"], saved["weights"], float(saved["bias"]))

    def requirements(self) -> list[str]:
        """Nothing beyond numpy."""
        return []


def _read(rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    return _array(rows.read(rows.rows)), np.asarray(rows.label[rows.rows], np.float64)


class ToyModel:
    """The toy model: `learning_rate` searched, `model.num_boost_round` steps at most."""

    kind: ClassVar[str] = "toy"
    objectives: ClassVar[tuple[str, ...]] = ("binary",)

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg

    def build_matrices(self, train: Rows, val: Rows, options: RowOptions) -> Matrices:
        """(features, labels) of train and validation."""
        return Matrices(train=_read(train), val=_read(val))

    def frame_matrices(
        self, x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray
    ) -> Matrices:
        """(features, labels) of the frames."""
        return Matrices(train=(_array(x_train), np.asarray(y_train)), val=(_array(x_val), y_val))

    def scoring_matrix(self, rows: Rows, matrices: Matrices) -> np.ndarray:
        """The rows' features."""
        return _array(rows.read(rows.rows))

    def fit(
        self,
        params: dict[str, Any],
        matrices: Matrices,
        eval_every: int = 1,
        trial: optuna.Trial | None = None,
    ) -> ToyFitted:
        """Gradient steps, early-stopping on validation AUC, reported to `trial`."""
        x_val, y_val = matrices.val
        best: ToyFitted | None = None
        for step, fitted in enumerate(self._steps(params, matrices.train)):
            if (step + 1) % eval_every and step + 1 != self.cfg.num_boost_round:
                continue
            auc = float(roc_auc_score(y_val, fitted.predict(x_val)))
            if trial is not None:
                trial.report(auc, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step}")
            if best is None or auc > best.best_score:
                fitted.best_round, fitted.best_score, best = step + 1, auc, fitted
            elif step + 1 - best.best_round >= self.cfg.early_stopping_rounds:
                break
        assert best is not None
        return best

    def refit(self, params: dict[str, Any], train: Any, rounds: int) -> ToyFitted:
        """`rounds` gradient steps."""
        for step, fitted in enumerate(self._steps(params, train)):
            if step + 1 == rounds:
                return fitted
        return fitted

    def _steps(self, params: dict[str, Any], train: tuple[np.ndarray, np.ndarray]) -> Any:
        x, y = train
        mean, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0) + 1e-9
        z = np.nan_to_num((x - mean) / scale)
        weights, bias = np.zeros(z.shape[1]), 0.0
        rate = float(params.get("learning_rate", 0.5))
        for _ in range(self.cfg.num_boost_round):
            p = 1.0 / (1.0 + np.exp(-(z @ weights + bias)))
            weights = weights - rate * z.T @ (p - y) / len(y)
            bias -= rate * float(np.mean(p - y))
            yield ToyFitted(mean, scale, weights.copy(), bias)
