"""The walk-forward check: the best parameters refitted in every window, each window's threshold
and its validation and test metrics (the threshold and the metrics: `evaluation`)."""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd

from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.evaluation.candidates import choose_threshold, segment_days
from ashare_autotune.evaluation.metrics import classification_metrics
from ashare_autotune.evaluation.records import SOURCE_COLUMNS, prediction_record, signal_metrics
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import Matrices, ScoreModel

log = logging.getLogger(__name__)
# The signal metrics kept per window (`records.signal_metrics`) and averaged over windows.
SIGNAL_METRICS = ("rank_ic_mean", "topk_precision_mean")


def walk_forward_matrices(ds: Dataset, model: ScoreModel) -> list[Matrices]:
    """The model's matrices of every walk-forward window but the last (the split's own, which
    the caller builds), oldest first; [] for a single split. Built once per study.

    Args:
        ds: the dataset and its windows (with its train rows still in `ds.frame`).
        model: the configured model.
    """
    windows = []
    for k in range(len(ds.windows) - 1):
        window = ds.window(k)
        windows.append(model.frame_matrices(*window.segment("train"), *window.segment("val")))
    return windows


def walk_forward_report(
    ds: Dataset,
    windows: list[Matrices],
    study: optuna.Study,
    model: ScoreModel,
    rule: ThresholdConfig,
    top_k: int,
) -> tuple[dict[str, float], dict[str, str]]:
    """Refit the best parameters in every window, choose its threshold, measure val and test.

    Args:
        ds: the dataset and its windows.
        windows: the windows' matrices (`walk_forward_matrices`).
        study: the finished study (best parameters, per-window best iterations).
        model: the configured model (its objective: how the threshold is searched).
        rule: the `threshold` group (each window's threshold, the picks a day that count).
        top_k: the signal metrics' top-k (`trading.top_k`).

    Returns:
        (`val_w<k>_<metric>` / `test_w<k>_<metric>` (k from 1, oldest first),
        `val_w<k>_threshold` and the means over windows `val_wf_<metric>` / `test_wf_<metric>`;
        the per-window table as text by artifact path, `walk_forward/windows.csv` and `.md`).
    """
    table = pd.DataFrame(
        [
            _window_row(ds, k, matrices, study, model, rule, top_k)
            for k, matrices in enumerate(windows, start=1)
        ]
    )
    files = {
        "walk_forward/windows.csv": table.to_csv(index=False),
        "walk_forward/windows.md": _windows_markdown(table),
    }
    metrics: dict[str, float] = {}
    for row in table.to_dict("records"):
        k = int(row["window"])
        metrics[f"val_w{k}_threshold"] = float(row["threshold"])
        for seg in ("val", "test"):
            for m in ("auc", "precision", "recall", "n_picks", "base_rate", *SIGNAL_METRICS):
                metrics[f"{seg}_w{k}_{m}"] = float(row[f"{seg}_{m}"])
    for seg in ("val", "test"):
        for m in ("auc", "precision", "recall", *SIGNAL_METRICS):
            metrics[f"{seg}_wf_{m}"] = float(table[f"{seg}_{m}"].mean())
    metrics["val_wf_feasible_windows"] = float(table["feasible"].sum())
    return metrics, files


def _window_row(
    ds: Dataset,
    k: int,
    matrices: Matrices,
    study: optuna.Study,
    model: ScoreModel,
    rule: ThresholdConfig,
    top_k: int,
) -> dict[str, Any]:
    """One window's refit model: its threshold, dates and val/test metrics."""
    window = ds.window(k - 1)
    rounds = int(study.best_trial.user_attrs.get(f"best_iteration_w{k}", 0)) + 1
    fitted = model.refit(study.best_params, matrices.train, rounds)
    x_val, y_val = window.segment("val")
    val_proba = fitted.predict(x_val)
    val_days = segment_days(window, "val")
    choice = choose_threshold(rule, model.cfg.objective, y_val, val_proba, val_days)
    x_test, y_test = window.segment("test")
    row: dict[str, Any] = {"window": k, "threshold": choice.threshold, "feasible": choice.feasible}
    for seg, y, proba in (
        ("val", y_val, val_proba),
        ("test", y_test, fitted.predict(x_test)),
    ):
        row[f"{seg}_start"], row[f"{seg}_end"] = window.date_range(seg)
        row |= classification_metrics(
            y,
            proba,
            choice.threshold,
            seg,
            segment_days(window, seg),
            rule.max_picks_per_day,
        )
        # the signal metrics rank every candidate, as the split's own records do
        rows = window.segment_rows(seg, SOURCE_COLUMNS, all_rows=True)
        every = window.predict(seg, fitted.predict, all_rows=True)
        signal = signal_metrics(prediction_record(rows, every, choice.threshold), top_k, seg)
        row |= {f"{seg}_{k}": signal[f"{seg}_{k}"] for k in SIGNAL_METRICS}
    return row


def _windows_markdown(table: pd.DataFrame) -> str:
    lines = [
        "| window | val dates | val AUC | test dates | test rows | test base rate | threshold "
        "| test AUC | test precision | test recall | test picks |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {int(r['window'])} | {r['val_start']}..{r['val_end']} | {r['val_auc']:.3f} | "
            f"{r['test_start']}..{r['test_end']} | {int(r['test_n_rows']):,} | "
            f"{r['test_base_rate']:.3f} | {r['threshold']:.3f}"
            f"{'' if r['feasible'] else ' (target not met)'} | {r['test_auc']:.3f} | "
            f"{r['test_precision']:.3f} | {r['test_recall']:.4f} | {int(r['test_n_picks'])} |"
        )
    return "\n".join(lines) + "\n"
