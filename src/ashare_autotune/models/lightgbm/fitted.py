"""A trained LightGBM booster behind the `FittedModel` protocol (the pyfunc model loads it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd

MODEL_FILE = "model.txt"


@dataclass
class Validation:
    """Validation rows as LightGBM reads them: the features (float32, model column order) and
    labels. Each training call bins them on its training set (`lgb.Dataset(reference=...)`).
    A ranker's rows are in day order; `predict` hands their scores back in the rows' order."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    group: np.ndarray | None = None  # rows per day, in order (a ranking objective)
    # x's row i is the watched rows' row order[i] (a ranker's day order); None: their order
    order: np.ndarray | None = None


class LightGBMFitted:
    """A LightGBM booster scored up to `best_round` iterations (all of them when 0)."""

    kind: ClassVar[str] = "lightgbm"

    def __init__(
        self,
        booster: lgb.Booster,
        best_round: int = 0,
        best_score: float = math.nan,
        n_jobs: int = 1,
    ) -> None:
        self.booster, self.best_round, self.best_score = booster, best_round, best_score
        self.n_jobs = n_jobs

    def _predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        if isinstance(x, Validation) and x.order is not None:
            scores = np.empty(len(x.order), np.float64)
            scores[x.order] = self._predict(x.x, **kwargs)  # back in the watched rows' order
            return scores
        if isinstance(x, Validation):
            x = x.x
        elif isinstance(x, pd.DataFrame):
            x = x.to_numpy(np.float32)
        rounds = self.best_round or None
        return self.booster.predict(x, num_iteration=rounds, num_threads=self.n_jobs, **kwargs)

    def predict(self, x: Any) -> np.ndarray:
        """Scores of a frame, an array or `Validation` rows: probabilities for the binary
        objective, the raw score (the margin) for regression and ranking."""
        return np.asarray(self._predict(x))

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """LightGBM's tree SHAP (`pred_contrib`): features then the bias, sums to the margin."""
        return np.asarray(self._predict(x, pred_contrib=True))

    def importance(self) -> dict[str, float]:
        """Total gain by feature (features never split on left out)."""
        gain = self.booster.feature_importance(importance_type="gain", iteration=self.best_round)
        names = self.booster.feature_name()
        return {n: float(g) for n, g in zip(names, gain, strict=True) if g > 0}

    def save(self, directory: Path) -> None:
        """The booster, cut at its best round, as LightGBM's text model `model.txt`."""
        text = self.booster.model_to_string(num_iteration=self.best_round or -1)
        (Path(directory) / MODEL_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, n_jobs: int = 1) -> LightGBMFitted:
        """A saved model (`save`), predicting on `n_jobs` threads."""
        text = (Path(directory) / MODEL_FILE).read_text(encoding="utf-8")
        return cls(lgb.Booster(model_str=text), n_jobs=n_jobs)

    def requirements(self) -> list[str]:
        """lightgbm pinned to this version."""
        return [f"lightgbm=={lgb.__version__}"]
