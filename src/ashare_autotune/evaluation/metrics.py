"""Classification metrics of a model's picks at a threshold."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from ashare_autotune.evaluation.threshold import ThresholdChoice, capped_picks

log = logging.getLogger(__name__)


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    prefix: str,
    days: np.ndarray | None = None,
    max_picks_per_day: int | None = None,
    counted: np.ndarray | None = None,
) -> dict[str, float]:
    """AUC, precision, recall, F1, pick rate, base rate and number of picks.

    Args:
        y_true: 0/1 labels.
        proba: predicted probabilities.
        threshold: a row is picked when proba >= threshold.
        prefix: segment name put before each metric (``test`` -> ``test_auc``).
        days, max_picks_per_day: each row's signal day and the picks a day that count (the
            day's best scores, `threshold.capped_picks`), with `n_pick_days` (days with a
            pick); both None: every row >= threshold is a pick.
        counted: the rows measured by label (fillable and labelled; default all): the others
            take their slot among the day's best scores but are neither hits nor misses, and
            AUC, precision and recall are over the counted rows.
    """
    proba = np.asarray(proba, dtype=np.float64)
    counted = np.ones(len(proba), bool) if counted is None else np.asarray(counted, bool)
    if days is None or max_picks_per_day is None:
        pick = (proba >= threshold) & counted
        per_day: dict[str, float] = {}
    else:
        pick = capped_picks(proba, days, threshold, max_picks_per_day, counted)
        per_day = {"n_pick_days": float(pd.unique(np.asarray(days)[pick]).size)}
    y_true = np.asarray(y_true)[counted].astype(np.int64)
    proba, pick = proba[counted], pick[counted]
    both_classes = 0 < y_true.sum() < len(y_true)
    metrics = {
        "auc": float(roc_auc_score(y_true, proba)) if both_classes else float("nan"),
        "precision": float(precision_score(y_true, pick, zero_division=0)),
        "recall": float(recall_score(y_true, pick, zero_division=0)),
        "f1": float(f1_score(y_true, pick, zero_division=0)),
        "pick_rate": float(pick.mean()) if len(pick) else 0.0,
        "base_rate": float(y_true.mean()) if len(y_true) else 0.0,
        "n_picks": float(pick.sum()),
        "n_rows": float(len(y_true)),
    } | per_day
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


def segment_metrics(
    val: tuple[np.ndarray, ...],
    test: tuple[np.ndarray, ...],
    choice: ThresholdChoice,
    max_picks_per_day: int,
) -> dict[str, float]:
    """The final model's metrics: the threshold, and the `classification_metrics` of
    validation and test at that threshold, counted on at most `max_picks_per_day` picks a day
    (as the threshold was chosen). The best trial's metrics are `scoring.best_trial_metrics`.

    Args:
        val, test: (labels, probabilities, signal days[, counted rows]) of validation and
            test (`candidates.candidates`).
        choice: the threshold chosen on validation.
        max_picks_per_day: the picks a day that count (`threshold.max_picks_per_day`).
    """
    metrics = {
        "threshold": choice.threshold,
        "val_best_precision": choice.best_precision,
    }
    for name, (y, proba, days, *counted) in (("val", val), ("test", test)):
        metrics |= classification_metrics(
            y, proba, choice.threshold, name, days, max_picks_per_day, *counted
        )
    log.info(
        "test at threshold %.3f: AUC %.4f precision %.4f recall %.4f picks %d",
        choice.threshold,
        metrics["test_auc"],
        metrics["test_precision"],
        metrics["test_recall"],
        metrics["test_n_picks"],
    )
    return metrics
