"""Pick a decision threshold under a hard precision constraint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it achieves on the data it was chosen on.

    `feasible` is False when no threshold in the grid reaches the target precision with at
    least `min_picks` picks; `threshold` then holds the one with the best precision reached.
    """

    threshold: float
    precision: float
    recall: float
    n_picks: int
    feasible: bool
    target_precision: float
    best_precision: float


def precision_recall_at(
    y_true: np.ndarray, proba: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and number of picks (proba >= t) for each threshold t, vectorised."""
    order = np.argsort(proba, kind="stable")
    sorted_proba = proba[order]
    positives_above = np.cumsum(y_true[order][::-1])[::-1]  # positives with proba >= p[i]
    first = np.searchsorted(sorted_proba, thresholds, side="left")
    n = len(proba)
    picks = n - first
    tp = np.where(first < n, positives_above[np.minimum(first, n - 1)], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(picks > 0, tp / np.maximum(picks, 1), 0.0)
    total_pos = max(int(y_true.sum()), 1)
    return precision, tp / total_pos, picks


def pick_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    target_precision: float,
    low: float = 0.05,
    high: float = 0.95,
    step: float = 0.005,
    min_picks: int = 20,
) -> ThresholdChoice:
    """Choose the threshold that maximises recall subject to precision >= target_precision.

    Args:
        y_true: 0/1 labels.
        proba: predicted probabilities.
        target_precision: the hard constraint, e.g. 0.60.
        low, high, step: the grid of thresholds searched.
        min_picks: fewest picks for a threshold to count (a handful of lucky picks cannot
            satisfy the constraint).

    Returns:
        The `ThresholdChoice`; ties in recall go to the higher threshold (higher precision).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    grid = np.round(np.arange(low, high + step / 2, step), 10)
    precision, recall, picks = precision_recall_at(y_true, proba, grid)
    enough = picks >= min_picks
    feasible = enough & (precision >= target_precision)
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
        n_picks=int(picks[i]),
        feasible=bool(feasible.any()),
        target_precision=target_precision,
        best_precision=best_precision,
    )
