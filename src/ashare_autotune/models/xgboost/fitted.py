"""A trained XGBoost booster behind the `FittedModel` protocol (the pyfunc model loads it)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb

from ashare_autotune.models.xgboost.matrices import filled

BOOSTER_FILE = "booster.ubj"
# The booster attribute naming the value its NaN features were trained as (`model.missing=fill`);
# a booster without it (native missing values, or saved before) is handed NaN as it is.
FILL_ATTR = "ashare_autotune_missing_fill"


def mark_fill(booster: xgb.Booster, fill: float | None) -> xgb.Booster:
    """`booster`, noting the value its NaN features were trained as (`FILL_ATTR`; kept by its
    slices and its saved file)."""
    if fill is not None:
        booster.set_attr(**{FILL_ATTR: repr(float(fill))})
    return booster


class XGBoostFitted:
    """An XGBoost booster scored up to `best_round` rounds (all of them when 0), its inputs'
    NaN features as the value it was trained with (`mark_fill`; none: missing)."""

    kind: ClassVar[str] = "xgboost"

    def __init__(self, booster: xgb.Booster, best_round: int = 0, best_score: float = math.nan):
        self.booster, self.best_round, self.best_score = booster, best_round, best_score
        fill = booster.attr(FILL_ATTR)
        self.fill = None if fill is None else float(fill)

    def _input(self, x: Any) -> Any:
        """A frame or array with its NaN as the training matrices had them."""
        return filled(x, self.fill)

    @property
    def _range(self) -> tuple[int, int]:
        return (0, self.best_round)

    def predict(self, x: Any) -> np.ndarray:
        """Scores (probabilities for the binary objective, the margin for a ranker) of a frame,
        an array, or a (Quantile)DMatrix; a ranker's validation matrix, in day order, scored
        back in its rows' order (its `row_order`, `matrices.build_matrices_from_rows`)."""
        if isinstance(x, xgb.DMatrix):
            scores = self.booster.predict(x, iteration_range=self._range)
            order = getattr(x, "row_order", None)
            if order is None:
                return scores
            out = np.empty_like(scores)
            out[order] = scores
            return out
        return self.booster.inplace_predict(self._input(x), iteration_range=self._range)

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """XGBoost's tree SHAP (`pred_contribs`): features then the bias, sums to the margin."""
        return self.booster.predict(
            xgb.DMatrix(self._input(x)), pred_contribs=True, iteration_range=self._range
        )

    def importance(self) -> dict[str, float]:
        """Total gain by feature."""
        gain = self.booster.get_score(importance_type="total_gain")
        return {k: float(v) for k, v in gain.items()}

    def save(self, directory: Path) -> None:
        """The booster, cut at its best round, as `booster.ubj`."""
        booster = self.booster[: self.best_round] if self.best_round else self.booster
        booster.save_model(Path(directory) / BOOSTER_FILE)

    @classmethod
    def load(cls, directory: Path, n_jobs: int = 1) -> XGBoostFitted:
        """A saved model (`save`), predicting on `n_jobs` threads."""
        return cls.load_file(Path(directory) / BOOSTER_FILE, n_jobs)

    @classmethod
    def load_file(cls, path: Path, n_jobs: int = 1) -> XGBoostFitted:
        """A booster file (also one logged before the model protocol)."""
        booster = xgb.Booster()
        booster.load_model(path)
        booster.set_param({"nthread": n_jobs})
        return cls(booster)

    def requirements(self) -> list[str]:
        """xgboost pinned to this version."""
        return [f"xgboost=={xgb.__version__}"]
