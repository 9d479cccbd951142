"""The ensemble's blend, pure: the members' scores ranked within each day, then averaged."""

from __future__ import annotations

import numpy as np

from ashare_autotune.modelling.targets import day_rank


def day_rank_blend(scores: np.ndarray, days: np.ndarray | None = None) -> np.ndarray:
    """The mean over members of each row's percentile rank within its day.

    A member's scores are ranked among the day's rows only (`targets.day_rank`: 0 the day's
    lowest, 1 its highest, ties averaged, 0.5 for a day of one row), so members on other
    scales (a probability, a ranker's margin, a regression's normalised return) weigh alike
    and no day's blend depends on another day's rows.

    Args:
        scores: one column per member, one row per scored row (NaN: the member abstains).
        days: each row's day (None: all rows are one day).

    Returns:
        float64 in [0, 1], one per row (NaN where every member abstains).
    """
    scores = np.asarray(scores, np.float64).reshape(len(scores), -1)
    days = np.zeros(len(scores), np.int64) if days is None else np.asarray(days)
    ranks = np.column_stack([day_rank(scores[:, j], days) for j in range(scores.shape[1])])
    known = np.isfinite(ranks)
    total = np.where(known, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known.any(axis=1), total / known.sum(axis=1), np.nan)
