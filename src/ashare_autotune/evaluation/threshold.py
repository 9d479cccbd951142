"""Pick a decision threshold under a hard precision constraint, counted on what a trader buys:
at most `max_picks_per_day` picks a day (the day's best scores), over enough distinct days."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it achieves on the data it was chosen on.

    `feasible` is False when no threshold in the grid reaches the target precision with at
    least `min_picks` picks over `min_days` days; `threshold` then holds the one with the best
    precision among those with enough picks and days (`best_precision`, 0 when none has).
    `frontier` is the grid's table (`threshold_frontier`), None when read back from a run.
    """

    threshold: float
    precision: float
    recall: float
    n_picks: int
    n_days: int
    feasible: bool
    target_precision: float
    best_precision: float
    frontier: pd.DataFrame | None = field(default=None, compare=False, repr=False)


def precision_recall_at(
    y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and number of picks (proba >= t) for each threshold t, vectorised,
    pooled over all rows (no per-day cap: the model's ranking, not an account's buys)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    hits, picks = _counts_above(y_true, np.asarray(proba, dtype=np.float64), thresholds)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(picks > 0, hits / np.maximum(picks, 1), 0.0)
    return precision, hits / max(int(y_true.sum()), 1), picks


def _counts_above(
    y: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positives and rows with proba >= t, for each threshold t (one sort, one search)."""
    order = np.argsort(proba, kind="stable")
    positives_above = np.concatenate([np.cumsum(y[order][::-1])[::-1], [0]])
    first = np.searchsorted(proba[order], thresholds, side="left")
    return positives_above[first], len(proba) - first


def _day_ranks(proba: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's day number (0..n_days-1) and its rank within its day by score, best first
    (ties in row order)."""
    day, _ = pd.factorize(np.asarray(days), sort=True)
    order = np.lexsort((-proba, day))  # stable: equal scores keep their row order
    sorted_day = day[order]
    first = np.searchsorted(sorted_day, sorted_day, side="left")
    rank = np.empty(len(proba), np.int64)
    rank[order] = np.arange(len(proba)) - first
    return day, rank


def _inputs(
    y_true: np.ndarray, proba: np.ndarray, days: np.ndarray, fillable: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """0/1 labels (0 where unfillable: a NaN label of a row that cannot fill), float scores and
    the fillable flags, all checked to be of one length."""
    proba = np.asarray(proba, dtype=np.float64)
    n = len(proba)
    fill = np.ones(n, bool) if fillable is None else np.asarray(fillable, dtype=bool)
    y = np.asarray(y_true, dtype=np.float64)
    if not len(y) == len(days) == len(fill) == n:
        raise ValueError(
            f"labels, scores, days and fillable differ in length: {len(y)}, {n}, "
            f"{len(days)}, {len(fill)}"
        )
    return np.where(fill, np.nan_to_num(y), 0.0).astype(np.int64), proba, fill


def capped_picks(
    proba: np.ndarray,
    days: np.ndarray,
    threshold: float,
    max_picks_per_day: int,
    fillable: np.ndarray | None = None,
) -> np.ndarray:
    """Which rows a trader buys at `threshold`: score >= threshold and among the day's
    `max_picks_per_day` best scores; an unfillable row takes its slot but is not bought.

    Args:
        proba: the score of each row.
        days: each row's day (any sortable values: dates, day numbers).
        threshold: a row is a candidate when its score >= threshold.
        max_picks_per_day: slots a day.
        fillable: rows whose order can fill (default: all).

    Returns:
        A boolean mask of the bought rows, in row order.
    """
    proba = np.asarray(proba, dtype=np.float64)
    fill = np.ones(len(proba), bool) if fillable is None else np.asarray(fillable, dtype=bool)
    _, rank = _day_ranks(proba, days)
    return (proba >= threshold) & (rank < max_picks_per_day) & fill


def signal_picks(
    proba: np.ndarray,
    days: np.ndarray,
    threshold: float,
    max_picks_per_day: int | None,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """The signal at T of scored rows: score >= threshold and, with a cap, among the day's
    `max_picks_per_day` best scores (the cap the threshold was chosen under: `capped_picks`).

    Args:
        proba: the score of each row.
        days: each row's day.
        threshold: the model's threshold.
        max_picks_per_day: slots a day (`threshold.max_picks_per_day`, meta.json's
            `max_picks_per_day`); None (a model from before it was recorded): no cap.
        candidates: rows that may be picked (default: all); the others take no slot.

    Returns:
        A boolean mask of the picked rows, in row order.
    """
    proba = np.asarray(proba, dtype=np.float64)
    allowed = np.ones(len(proba), bool) if candidates is None else np.asarray(candidates, bool)
    if max_picks_per_day is None:
        return (proba >= threshold) & allowed
    ranked = np.where(allowed, proba, -np.inf)  # a row that may not be picked takes no slot
    return capped_picks(ranked, days, threshold, max_picks_per_day) & allowed


def threshold_frontier(
    y_true: np.ndarray,
    proba: np.ndarray,
    days: np.ndarray,
    thresholds: np.ndarray,
    max_picks_per_day: int,
    fillable: np.ndarray | None = None,
) -> pd.DataFrame:
    """Precision, recall, picks and days with picks at each threshold, under the per-day cap.

    Within a day the picks at t are the first min(cap, #score >= t) rows by score, so they are
    the rows ranked below the cap with score >= t: pooled counts over those rows (one sort and
    one `searchsorted` per quantity, no loop over thresholds).

    Args:
        y_true: 0/1 labels (NaN allowed where not fillable).
        proba: scores.
        days: each row's day.
        thresholds: the grid, increasing.
        max_picks_per_day: slots a day.
        fillable: rows whose order can fill (default: all); an unfillable pick takes a slot
            and is neither a hit nor a miss.

    Returns:
        One row per threshold: threshold, precision (hits / bought picks, 0 without picks),
        recall (hits / fillable positives), n_picks (bought), n_days (days with a bought pick).
    """
    y, proba, fill = _inputs(y_true, proba, days, fillable)
    day, rank = _day_ranks(proba, days)
    bought = (rank < max_picks_per_day) & fill
    grid = np.asarray(thresholds, dtype=np.float64)
    hits, picks = _counts_above(y[bought], proba[bought], grid)
    best_of_day = np.full(int(day.max()) + 1 if len(day) else 0, -np.inf)
    np.maximum.at(best_of_day, day[bought], proba[bought])
    best_of_day = np.sort(best_of_day[np.isfinite(best_of_day)])
    n_days = len(best_of_day) - np.searchsorted(best_of_day, grid, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(picks > 0, hits / np.maximum(picks, 1), 0.0)
    recall = hits / max(int(y.sum()), 1)
    return pd.DataFrame(
        {
            "threshold": grid,
            "precision": precision,
            "recall": recall,
            "n_picks": picks.astype(np.int64),
            "n_days": n_days.astype(np.int64),
        }
    )


def pick_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    days: np.ndarray,
    target_precision: float,
    low: float = 0.05,
    high: float = 0.95,
    step: float = 0.005,
    min_picks: int = 20,
    max_picks_per_day: int = 10,
    min_days: int = 20,
    fillable: np.ndarray | None = None,
    grid: np.ndarray | None = None,
) -> ThresholdChoice:
    """Choose the threshold that maximises recall subject to precision >= target_precision,
    counted on at most `max_picks_per_day` picks a day over at least `min_days` days.

    Args:
        y_true: 0/1 labels (NaN allowed where not fillable).
        proba: predicted probabilities.
        days: each row's day (the signal day T).
        target_precision: the hard constraint, e.g. 0.60.
        low, high, step: the grid of thresholds searched.
        min_picks: fewest bought picks for a threshold to count (a handful of lucky picks
            cannot satisfy the constraint).
        max_picks_per_day: picks a day that count, the day's best scores (a trader buys no
            more; one crowded day cannot carry the pooled precision).
        min_days: fewest distinct days with a bought pick for a threshold to count.
        fillable: rows whose order can fill (default: all); an unfillable pick takes its slot
            and counts as neither hit nor miss.
        grid: the thresholds searched, increasing (a score's: `score_grid`); None: low to
            high by step.

    Returns:
        The `ThresholdChoice` with its `frontier` (the grid's table, plus `enough`: picks and
        days suffice, and `meets`: enough and on target); ties in recall go to the higher
        threshold (higher precision).
    """
    if grid is None:
        grid = probability_grid(low, high, step)
    frontier = threshold_frontier(y_true, proba, days, grid, max_picks_per_day, fillable)
    return choose_on_frontier(frontier, target_precision, min_picks, min_days)


def probability_grid(low: float, high: float, step: float) -> np.ndarray:
    """Thresholds for a probability: low, low + step, ..., high."""
    return np.round(np.arange(low, high + step / 2, step), 10)


def choose_on_frontier(
    frontier: pd.DataFrame, target_precision: float, min_picks: int, min_days: int
) -> ThresholdChoice:
    """The threshold of a frontier (`threshold_frontier`'s columns) with the highest recall
    among those with precision >= target_precision, `min_picks` picks and `min_days` days;
    when none reaches the target, the most precise of those with enough picks and days (the
    first row when none has). Adds `enough` and `meets` to the frontier; ties in recall go to
    the higher threshold."""
    grid = frontier["threshold"].to_numpy()
    precision = frontier["precision"].to_numpy()
    recall = frontier["recall"].to_numpy()
    enough = (frontier["n_picks"] >= min_picks).to_numpy() & (
        frontier["n_days"] >= min_days
    ).to_numpy()
    feasible = enough & (precision >= target_precision)
    frontier["enough"], frontier["meets"] = enough, feasible
    best_precision = float(precision[enough].max()) if enough.any() else 0.0
    if feasible.any():
        candidates = np.flatnonzero(feasible)
        i = candidates[np.flatnonzero(recall[candidates] == recall[candidates].max())[-1]]
    elif enough.any():
        candidates = np.flatnonzero(enough)
        i = candidates[int(np.argmax(precision[candidates]))]
    else:
        i = 0
    return ThresholdChoice(
        threshold=float(grid[i]),
        precision=float(precision[i]),
        recall=float(recall[i]),
        n_picks=int(frontier["n_picks"].iat[i]),
        n_days=int(frontier["n_days"].iat[i]),
        feasible=bool(feasible.any()),
        target_precision=target_precision,
        best_precision=best_precision,
        frontier=frontier,
    )


def score_grid(scores: np.ndarray, low: float, high: float, step: float) -> np.ndarray:
    """Thresholds for a score that is not a probability (a ranker's, a regression's): its
    quantiles at levels low, low + step, ..., high, distinct and increasing.

    Args:
        scores: the validation scores the threshold is chosen on (NaN ignored).
        low, high, step: the levels (`threshold.low`, `high`, `step`), as shares of the
            scores below the threshold.
    """
    finite = np.asarray(scores, np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return np.array([np.inf])  # nothing scored: a threshold nothing reaches
    levels = np.clip(np.arange(low, high + step / 2, step), 0.0, 1.0)
    return np.unique(np.quantile(finite, levels))
