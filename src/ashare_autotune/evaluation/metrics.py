"""Classification metrics of a model's picks at a threshold."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from ashare_autotune.evaluation.threshold import ThresholdChoice

log = logging.getLogger(__name__)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float, prefix: str
) -> dict[str, float]:
    """AUC, precision, recall, F1, pick rate, base rate and number of picks.

    Args:
        y_true: 0/1 labels.
        proba: predicted probabilities.
        threshold: a row is picked when proba >= threshold.
        prefix: segment name put before each metric (``test`` -> ``test_auc``).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    pick = np.asarray(proba) >= threshold
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
    }
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


def segment_metrics(
    best_val_auc: float,
    y_val: np.ndarray,
    val_proba: np.ndarray,
    y_test: np.ndarray,
    test_proba: np.ndarray,
    choice: ThresholdChoice,
) -> dict[str, float]:
    """The final model's metrics: the best trial's validation AUC, the threshold, and the
    `classification_metrics` of validation and test at that threshold.

    Args:
        best_val_auc: the study's best value.
        y_val, val_proba: validation labels and probabilities.
        y_test, test_proba: test labels and probabilities.
        choice: the threshold chosen on validation.
    """
    metrics = {
        "best_trial_val_auc": float(best_val_auc),
        "threshold": choice.threshold,
        "val_best_precision": choice.best_precision,
    }
    metrics |= classification_metrics(y_val, val_proba, choice.threshold, "val")
    metrics |= classification_metrics(y_test, test_proba, choice.threshold, "test")
    log.info(
        "test at threshold %.3f: AUC %.4f precision %.4f recall %.4f picks %d",
        choice.threshold,
        metrics["test_auc"],
        metrics["test_precision"],
        metrics["test_recall"],
        metrics["test_n_picks"],
    )
    return metrics
