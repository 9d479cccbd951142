"""What a study's parent run shows besides its headline metrics: the walk-forward windows, the
training data as dataset inputs, the trading view of the test segment and the plots.

Computation lives in the pure modules (`trading`, `plots`, `evaluate`); this module wires it to
the run through `tracking`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

from ashare_autotune import plots, tracking, trading
from ashare_autotune.config import AppConfig
from ashare_autotune.data import Market
from ashare_autotune.dataset import Dataset
from ashare_autotune.evaluate import classification_metrics
from ashare_autotune.threshold import ThresholdChoice, pick_threshold
from ashare_autotune.tuning import Matrices, build_matrices, fit_final, window_rounds

log = logging.getLogger(__name__)


def choose_threshold(app: AppConfig, y_val: np.ndarray, val_proba: np.ndarray) -> ThresholdChoice:
    """The threshold under the configured precision constraint, chosen on validation.

    Args:
        app: the configuration (its `threshold` group).
        y_val, val_proba: validation labels and probabilities.
    """
    th = app.threshold
    return pick_threshold(
        y_val, val_proba, th.target_precision, th.low, th.high, th.step, th.min_picks
    )


def walk_forward_matrices(ds: Dataset, app: AppConfig) -> list[Matrices]:
    """Quantised matrices of every walk-forward window but the last (the split's own, which
    the caller builds), oldest first; [] for a single split. Built once per study.

    Args:
        ds: the dataset and its windows (with its train rows still in `ds.frame`).
        app: the configuration (model.max_bin, model.n_jobs).
    """
    windows = []
    for k in range(len(ds.windows) - 1):
        window = ds.window(k)
        windows.append(
            build_matrices(
                *window.segment("train"),
                *window.segment("val"),
                app.model.max_bin,
                app.model.n_jobs,
            )
        )
    return windows


def walk_forward_report(
    ds: Dataset, windows: list[Matrices], app: AppConfig, study: optuna.Study
) -> dict[str, float]:
    """Refit the best parameters in every window, choose its threshold, measure val and test.

    Logs the per-window table as `walk_forward/windows.csv` and `.md`.

    Args:
        ds: the dataset and its windows.
        windows: the windows' matrices (`walk_forward_matrices`).
        app: the configuration.
        study: the finished study (best parameters, per-window best iterations).

    Returns:
        `val_w<k>_<metric>` / `test_w<k>_<metric>` (k from 1, oldest first), `val_w<k>_threshold`
        and the means over windows `val_wf_<metric>` / `test_wf_<metric>`.
    """
    table = pd.DataFrame(
        [_window_row(ds, k, matrices, app, study) for k, matrices in enumerate(windows, start=1)]
    )
    tracking.log_text(table.to_csv(index=False), "walk_forward/windows.csv")
    tracking.log_text(_windows_markdown(table), "walk_forward/windows.md")
    metrics: dict[str, float] = {}
    for row in table.to_dict("records"):
        k = int(row["window"])
        metrics[f"val_w{k}_threshold"] = float(row["threshold"])
        for seg in ("val", "test"):
            for m in ("auc", "precision", "recall", "n_picks", "base_rate"):
                metrics[f"{seg}_w{k}_{m}"] = float(row[f"{seg}_{m}"])
    for seg in ("val", "test"):
        for m in ("auc", "precision", "recall"):
            metrics[f"{seg}_wf_{m}"] = float(table[f"{seg}_{m}"].mean())
    metrics["val_wf_feasible_windows"] = float(table["feasible"].sum())
    return metrics


def _window_row(
    ds: Dataset, k: int, matrices: Matrices, app: AppConfig, study: optuna.Study
) -> dict[str, Any]:
    """One window's refit model: its threshold, dates and val/test metrics."""
    window = ds.window(k - 1)
    booster = fit_final(matrices, app.model, study.best_params, window_rounds(study, k))
    x_val, y_val = window.segment("val")
    val_proba = booster.inplace_predict(x_val)
    choice = choose_threshold(app, y_val, val_proba)
    x_test, y_test = window.segment("test")
    row: dict[str, Any] = {"window": k, "threshold": choice.threshold, "feasible": choice.feasible}
    for seg, y, proba in (
        ("val", y_val, val_proba),
        ("test", y_test, booster.inplace_predict(x_test)),
    ):
        row[f"{seg}_start"], row[f"{seg}_end"] = window.date_range(seg)
        row |= classification_metrics(y, proba, choice.threshold, seg)
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


def log_datasets(market: Market, ds: Dataset, train: pd.DataFrame) -> None:
    """Log the three segments' labelled rows as MLflow dataset inputs with their date ranges.

    Args:
        market: the loaded market (its source and range).
        ds: the dataset (segment date ranges; its validation and test rows).
        train: the training rows, already split off `ds` (`Dataset.split_off`).
    """
    data = market.describe()
    for seg, context, frame in (  # the labelled rows as they are: no copy of the train rows
        ("train", "training", train),
        ("val", "validation", ds.segment_rows("val")),
        ("test", "testing", ds.segment_rows("test")),
    ):
        start, end = ds.date_range(seg)
        tracking.log_dataset(
            frame,
            name=f"{seg} {start}..{end}",
            source=str(data["source"]),
            context=context,
            tags={
                "start": start,
                "end": end,
                "n_stocks": frame["ts_code"].nunique(),
                "n_rows": len(frame),
                "data_source": data["source"],
                "data_range": f"{data['start']}..{data['end']}",
            },
        )


def trading_view(
    app: AppConfig, market: Market, ds: Dataset, test_proba: np.ndarray, threshold: float
) -> dict[str, float]:
    """The trading view of the test segment; logs its daily table and summary as artifacts.

    Args:
        app: the configuration (trading.top_k, label.max_days).
        market: the market index (its regime per day).
        ds: the dataset whose test segment was scored.
        test_proba: the final model's probability per test row.
        threshold: the chosen pick threshold.

    Returns:
        The `test_*` trading metrics (see `trading.trading_metrics`).
    """
    rows = ds.segment_rows("test", ["ts_code", "trade_date", "label", "fwd_return"])
    regime = trading.market_regime(market.index)
    table = trading.daily_table(rows, test_proba, threshold, app.trading.top_k, regime)
    metrics = trading.trading_metrics(rows, test_proba, threshold, table, "test")
    tracking.log_text(table.to_csv(index=False), "trading/test_daily.csv")
    tracking.log_text(trading.summary_markdown(metrics, table, "test"), "trading/test_summary.md")
    log.info(
        "trading view (test): top-%d precision %.4f, picks %.2f/day, fwd return picks %.3f%% vs "
        "universe %.3f%%",
        app.trading.top_k,
        metrics["test_topk_precision"],
        metrics["test_picks_per_day"],
        100 * metrics["test_mean_fwd_return_picks"],
        100 * metrics["test_mean_fwd_return_universe"],
    )
    return metrics


def log_plots(
    study: optuna.Study,
    booster: xgb.Booster,
    choice: ThresholdChoice,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> None:
    """Write the study and model plots and log them under the run's `plots/` artifacts.

    Args:
        study: the finished study.
        booster: the final model (feature gain).
        choice: the chosen threshold.
        val, test: (labels, probabilities) of validation and test.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plots.write_study_plots(study, out)
        gain = booster.get_score(importance_type="gain")
        plots.write_model_plots(*val, *test, choice, gain, out)
        tracking.log_artifacts(out, "plots")
