"""What each objective learns (`model.objective`): the label, a forward return normalised per
day, or a day's forward-return quantile as a ranker's relevance.

Everything here is per day (a cross-section of one signal day's candidates): a target at T
reads only day T's rows, so no day's target moves when another day's returns change. A row is
trained on when its label and its forward return are known (NaN target otherwise).

The forward return is the dataset's `fwd_return`: the label's entry (T+1's open or T's close)
to the last close of the label horizon, the same for every `label.kind` (also `excess`: the
dataset holds no benchmark return over the same days). Per day, normalising it by rank or
z-score removes the day's market move, so a regression on it is a regression on the excess
over the day's candidates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# model.target_norm -> per-day transform of the forward return (regression)
TARGET_NORMS = ("none", "rank", "zscore")


def trainable(label: np.ndarray, fwd_return: np.ndarray) -> np.ndarray:
    """Rows an objective may train on: the label and the forward return both known."""
    return np.isfinite(np.asarray(label, np.float64)) & np.isfinite(
        np.asarray(fwd_return, np.float64)
    )


def day_rank(values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Each value's percentile rank within its day in [0, 1] (ties averaged; 0.5 for a day of
    one row; NaN stays NaN and is not counted).

    Args:
        values: one value per row (NaN: not ranked).
        days: each row's day.

    Returns:
        (rank - 1) / (n - 1) of the day's n known values, float64.
    """
    s = pd.Series(np.asarray(values, np.float64))
    by_day = s.groupby(np.asarray(days), sort=False)
    rank, n = by_day.rank(method="average"), by_day.transform("count")
    out = ((rank - 1) / (n - 1)).where(n > 1, 0.5)
    return out.where(s.notna()).to_numpy(np.float64)


def day_zscore(values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Each value minus its day's mean, over the day's standard deviation (ddof 0; 0 on a day
    whose values are all equal)."""
    s = pd.Series(np.asarray(values, np.float64))
    by_day = s.groupby(np.asarray(days), sort=False)
    centred = s - by_day.transform("mean")
    std = by_day.transform("std", ddof=0)
    return (centred / std.where(std > 0)).fillna(0.0).where(s.notna()).to_numpy(np.float64)


def day_relevance(values: np.ndarray, days: np.ndarray, bins: int) -> np.ndarray:
    """A ranker's relevance: each value's quantile bin within its day, 0 (lowest) to bins - 1.

    Args:
        values: one value per row (NaN: no relevance).
        days: each row's day.
        bins: the number of quantile bins (>= 2).

    Returns:
        floor(percentile rank * bins), capped at bins - 1, as float64 (NaN where unknown).
    """
    rank = day_rank(values, days)
    return np.minimum(np.floor(rank * bins), bins - 1)


def make_target(
    frame: pd.DataFrame, objective: str, norm: str = "rank", bins: int = 5
) -> np.ndarray:
    """The objective's target of every row of a dataset's frame, NaN where not trained on.

    Args:
        frame: the dataset's rows: day, label (NaN where unknown) and fwd_return.
        objective: "binary" (the label), "regression" (the forward return, normalised per
            day by `norm`), "lambdarank" or "rank:pairwise" (the day's quantile bin).
        norm: "none", "rank" or "zscore" (`TARGET_NORMS`; regression only).
        bins: relevance levels of a ranking objective.

    Returns:
        float64, one per row.
    """
    label = frame["label"].to_numpy(np.float64)
    if objective == "binary":
        return label
    ret = frame["fwd_return"].to_numpy(np.float64)
    ret = np.where(trainable(label, ret), ret, np.nan)
    days = frame["day"].to_numpy()
    if objective == "regression":
        transform = {"none": lambda v, d: v, "rank": day_rank, "zscore": day_zscore}[norm]
        return transform(ret, days)
    return day_relevance(ret, days, bins)


def group_order(days: np.ndarray) -> np.ndarray:
    """The permutation that puts rows in day order (a ranker's queries contiguous), rows of
    one day kept in their order."""
    return np.argsort(np.asarray(days), kind="stable")


def group_sizes(days: np.ndarray) -> np.ndarray:
    """Rows of each run of equal days, in order (a ranker's query sizes)."""
    days = np.asarray(days)
    if not len(days):
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    return np.diff(np.r_[starts, len(days)])
