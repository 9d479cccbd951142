"""The picks rule `filter_then_rank` (`model.picks`), pure: a day's picks are the rows whose
classifier probability clears the threshold, ordered by a ranker's score, the day's best
`max_picks_per_day` of them.

The rule is carried by one score per row (`rule_scores`), so that every consumer of a score
and a threshold (the capped picks, the records, the backtest's `threshold` strategy, the
served model's `pick`) applies it unchanged: a row's rule score is >= the threshold exactly
when its classifier probability is, and among those rows it orders the day by the ranker.
The threshold is chosen on validation as for any model (`threshold.choose_on_frontier`: the
most recall with precision >= target, counted on the capped picks), over the classifier's
probability grid, with the picks at each threshold made by the rule (`rule_frontier`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.evaluation.threshold import ThresholdChoice, choose_on_frontier
from ashare_autotune.modelling.targets import day_rank


def rule_scores(
    probability: np.ndarray, order: np.ndarray, days: np.ndarray | None, threshold: float
) -> np.ndarray:
    """One score per row that is >= `threshold` exactly when the row's probability is, and
    that orders each day's rows by `order` within each side of the threshold.

    A row at or above the threshold scores threshold + (1 - threshold) * r, one below it
    scores (just under the threshold) * r, where r is the row's percentile rank by `order`
    within its day (`targets.day_rank`: 0 the day's lowest, 1 its highest, ties averaged).
    So the scores lie in [0, 1], a day's list is the rows clearing the filter by the ranker,
    then the others by the ranker, and a day's scores depend on that day's rows only.

    Args:
        probability: the classifier's probability of each row (NaN: below any threshold).
        order: the ranker's (or regression's) score of each row (NaN: ranked lowest).
        days: each row's day (None: all rows are one day, as a served call's).
        threshold: the classifier's threshold (chosen on validation).

    Returns:
        float64, one per row.
    """
    probability = np.asarray(probability, np.float64)
    days = np.zeros(len(probability), np.int64) if days is None else np.asarray(days)
    order = np.nan_to_num(np.asarray(order, np.float64), nan=-np.inf)
    r = day_rank(order, days)
    passed = probability >= threshold
    below = np.nextafter(threshold, -np.inf) * r  # < threshold even at r = 1
    return np.where(passed, threshold + (1.0 - threshold) * r, below)


def rule_picks(
    probability: np.ndarray,
    order: np.ndarray,
    days: np.ndarray,
    threshold: float,
    max_picks_per_day: int,
    fillable: np.ndarray | None = None,
) -> np.ndarray:
    """The bought rows of the rule, directly: within each day, the rows with probability >=
    threshold taken in decreasing `order` (ties in row order), the first `max_picks_per_day`;
    an unfillable row takes its slot but is not bought (as `threshold.capped_picks`).

    Returns:
        A boolean mask in row order.
    """
    probability = np.asarray(probability, np.float64)
    fill = np.ones(len(probability), bool) if fillable is None else np.asarray(fillable, bool)
    day, sorted_at = _day_order(order, days)
    sorted_day = day[sorted_at]
    first = np.searchsorted(sorted_day, sorted_day, side="left")
    slot = _slots(probability[sorted_at] >= threshold, sorted_day, first)
    picked = np.zeros(len(probability), bool)
    picked[sorted_at] = (probability[sorted_at] >= threshold) & (slot < max_picks_per_day)
    return picked & fill


def rule_frontier(
    y_true: np.ndarray,
    probability: np.ndarray,
    order: np.ndarray,
    days: np.ndarray,
    thresholds: np.ndarray,
    max_picks_per_day: int,
    fillable: np.ndarray | None = None,
) -> pd.DataFrame:
    """`threshold.threshold_frontier`'s table for the rule: at each threshold t of the
    classifier's probability, the picks are `rule_picks` at t (a day's best by `order` among
    its rows with probability >= t), counted as there (precision on the bought picks, recall
    of the fillable positives, days with a bought pick). One sort; O(rows) per threshold."""
    y = np.asarray(y_true, np.float64)
    fill = np.ones(len(y), bool) if fillable is None else np.asarray(fillable, bool)
    y = np.where(fill, np.nan_to_num(y), 0.0).astype(np.int64)
    day, at = _day_order(order, days)
    proba, y, fill, day = np.asarray(probability, np.float64)[at], y[at], fill[at], day[at]
    first = np.searchsorted(day, day, side="left")  # each row's day's first sorted row
    rows = []
    for t in np.asarray(thresholds, np.float64):
        passed = proba >= t
        bought = passed & (_slots(passed, day, first) < max_picks_per_day) & fill
        days_bought = day[bought]  # sorted: a new day wherever it changes
        n_days = int(np.count_nonzero(np.diff(days_bought))) + 1 if len(days_bought) else 0
        rows.append((int((y & bought).sum()), int(bought.sum()), n_days))
    hits, picks, n_days = (np.array(c, np.int64).reshape(-1) for c in zip(*rows, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(picks > 0, hits / np.maximum(picks, 1), 0.0)
    recall = hits / max(int(y.sum()), 1)
    return pd.DataFrame(
        {
            "threshold": np.asarray(thresholds, np.float64),
            "precision": precision,
            "recall": recall,
            "n_picks": picks,
            "n_days": n_days,
        }
    )


def pick_rule_threshold(
    y_true: np.ndarray,
    probability: np.ndarray,
    order: np.ndarray,
    days: np.ndarray,
    grid: np.ndarray,
    target_precision: float,
    min_picks: int,
    max_picks_per_day: int,
    min_days: int,
    fillable: np.ndarray | None = None,
) -> ThresholdChoice:
    """The classifier's threshold under the precision constraint with the rule's picks: most
    recall with precision >= target over >= `min_picks` picks and `min_days` days, else the
    most precise (`threshold.choose_on_frontier`), with its frontier."""
    frontier = rule_frontier(y_true, probability, order, days, grid, max_picks_per_day, fillable)
    return choose_on_frontier(frontier, target_precision, min_picks, min_days)


def _day_order(order: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's day number, and the rows sorted by day, then by decreasing `order` (NaN
    last; ties in row order)."""
    day, _ = pd.factorize(np.asarray(days), sort=True)
    key = np.nan_to_num(np.asarray(order, np.float64), nan=-np.inf)
    return day, np.lexsort((-key, day))


def _slots(passed: np.ndarray, day: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For rows sorted by `day` (`first`: each row's day's first row): how many earlier rows
    of the same day passed (a passing row's slot, 0 the first)."""
    before = np.cumsum(passed) - passed  # passing rows before each row, all days
    return before - before[first]
