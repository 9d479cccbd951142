"""A segment's scored candidates as the threshold and the classification metrics read them, and
the threshold chosen on validation under the precision constraint (`threshold` group)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.evaluation.threshold import ThresholdChoice, pick_threshold, score_grid
from ashare_autotune.modelling.dataset import Dataset


class ScoredRows(NamedTuple):
    """A segment's candidates as the threshold and the classification metrics read them."""

    labels: np.ndarray  # 0/1 (0 where not counted)
    scores: np.ndarray
    days: np.ndarray
    counted: np.ndarray  # fillable and labelled: a pick here is a hit or a miss


def choose_threshold(
    th: ThresholdConfig,
    objective: str,
    y_val: np.ndarray,
    val_proba: np.ndarray,
    val_days: np.ndarray,
    fillable: np.ndarray | None = None,
) -> ThresholdChoice:
    """The threshold under the configured precision constraint, chosen on validation.

    Args:
        th: the `threshold` group.
        objective: the model's objective (`model.objective`): only the binary objective's
            score is a probability; another's threshold is searched over its validation
            quantiles at the levels threshold.low..high (`score_grid`).
        y_val, val_proba: validation labels and scores.
        val_days: each validation row's signal day (the per-day cap and `min_days`).
        fillable: the rows whose order can fill (default: all).
    """
    grid = None
    if objective != "binary":
        grid = score_grid(val_proba, th.low, th.high, th.step)
    return pick_threshold(
        y_val,
        val_proba,
        val_days,
        th.target_precision,
        th.low,
        th.high,
        th.step,
        th.min_picks,
        th.max_picks_per_day,
        th.min_days,
        fillable,
        grid,
    )


def segment_days(ds: Dataset, segment: str, all_rows: bool = False) -> np.ndarray:
    """Each measured row's signal day of a segment, in the row order of `ds.labels(segment)`
    (with `all_rows`, of every candidate, in the order of `ds.labels(segment, all_rows=True)`)."""
    return ds.segment_rows(segment, ["trade_date"], all_rows)["trade_date"].to_numpy()


def candidates(ds: Dataset, segment: str, scores: np.ndarray) -> ScoredRows:
    """Every candidate of a segment with its score, day and whether it counts by label.

    A candidate that cannot fill its entry, or whose label is unknown, takes its slot among
    the day's best scores but is neither a hit nor a miss (`threshold.capped_picks`).

    Args:
        ds: the dataset.
        segment: "val" or "test".
        scores: the model's score of every candidate (`Dataset.predict(..., all_rows=True)`).
    """
    y = ds.labels(segment, all_rows=True).astype(np.float64)
    counted = ds.fillable(segment) & np.isfinite(y)
    return ScoredRows(np.where(counted, y, 0.0), scores, segment_days(ds, segment, True), counted)
