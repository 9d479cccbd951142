"""What a study's parent run shows besides its headline metrics: the training data as dataset
inputs, the trading view of the test segment and the plots."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from mlflow.entities import DatasetInput

from ashare_autotune.config.schema import AppConfig, ThresholdConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import with_caveat
from ashare_autotune.evaluation import trading
from ashare_autotune.evaluation.explain import SHAP_ROWS, validation_sample
from ashare_autotune.evaluation.records import segment_records
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import FittedModel
from ashare_autotune.tracking import plots, shap_report
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.input_checks import profile_inputs, sample_rows

log = logging.getLogger(__name__)


def dataset_inputs(market: Market, ds: Dataset) -> list[DatasetInput]:
    """The three segments' labelled rows as MLflow dataset inputs with their date ranges (to log
    with `runs.log_inputs`), described from each segment's first rows and its counts.

    Args:
        market: the loaded market (its source and range).
        ds: the dataset (segment date ranges and rows).
    """
    data = market.describe()
    inputs = []
    masks = ds.masks()
    for seg, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        start, end = ds.date_range(seg)
        n_rows = int(masks[seg].sum())
        dataset = tracking.dataset_input(
            ds.head(seg, tracking.SCHEMA_SAMPLE_ROWS),
            name=f"{seg} {start}..{end}",
            source=str(data["source"]),
            context=context,
            tags={
                "start": start,
                "end": end,
                "n_stocks": ds.frame.loc[masks[seg], "ts_code"].nunique(),
                "n_rows": n_rows,
                "data_source": data["source"],
                "data_range": f"{data['start']}..{data['end']}",
            },
            n_rows=n_rows,
        )
        inputs.append(dataset)
    return inputs


def input_example(ds: Dataset, n_rows: int = 5) -> pd.DataFrame:
    """The model's input example: the first validation rows with no missing feature."""
    positions = ds.positions("val")
    for start in range(0, len(positions), tracking.SCHEMA_SAMPLE_ROWS):
        batch = positions[start : start + tracking.SCHEMA_SAMPLE_ROWS]
        complete = ds.features("val", batch).dropna()
        if len(complete) >= n_rows or start + len(batch) >= len(positions):
            return complete.head(n_rows)
    return pd.DataFrame(columns=ds.feature_names, dtype=np.float32)


def trading_view(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    test_proba: np.ndarray,
    threshold: float,
    signal: dict[str, float],
) -> dict[str, float]:
    """The trading view of the test segment; logs its daily table and summary as artifacts.

    Args:
        app: the configuration (trading.top_k, threshold.max_picks_per_day).
        market: the market index (its regime per day).
        ds: the dataset whose test segment was scored.
        test_proba: the final model's probability per test candidate (every row, as
            `Dataset.predict(..., all_rows=True)`).
        threshold: the chosen pick threshold.
        signal: the test segment's signal metrics (`records.signal_metrics`), for the summary.

    Returns:
        The `test_*` trading metrics (see `trading.trading_metrics`).
    """
    rows = ds.segment_rows("test", ["trade_date", "label", "fwd_return", "fillable"], True)
    regime = trading.market_regime(market.index)
    cap = app.threshold.max_picks_per_day
    table = trading.daily_table(rows, test_proba, threshold, app.trading.top_k, regime, cap)
    metrics = trading.trading_metrics(rows, test_proba, threshold, table, "test", cap)
    summary = with_caveat(trading.summary_markdown(metrics | signal, table, "test"), market.source)
    tracking.log_text(table.to_csv(index=False), "trading/test_daily.csv")
    tracking.log_text(summary, "trading/test_summary.md")
    log.info(
        "trading view (test): top-%d precision %.4f, picks %.2f/day, fwd return picks %.3f%% vs "
        "universe %.3f%%",
        app.trading.top_k,
        signal["test_topk_precision_mean"],
        signal["test_picks_per_day"],
        100 * metrics["test_mean_fwd_return_picks"],
        100 * metrics["test_mean_fwd_return_universe"],
    )
    return metrics


def log_scored(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    threshold: float,
    val_proba: np.ndarray,
    test_proba: np.ndarray,
) -> dict[str, float]:
    """The scored validation and test candidates: their records logged as
    `predictions/<segment>.parquet` (every candidate, with `fillable`), their signal metrics,
    and the trading view of test.

    Args:
        app: the configuration (trading.top_k).
        market: the market index (the trading view's regimes).
        ds: the dataset whose val/test candidates were scored, in row order.
        threshold: the pick threshold.
        val_proba, test_proba: the final model's probabilities of every candidate
            (`Dataset.predict(..., all_rows=True)`).

    Returns:
        The `val_*` / `test_*` signal metrics and the `test_*` trading-view metrics.
    """
    scores = {"val": val_proba, "test": test_proba}
    records, signal = segment_records(
        ds, scores, threshold, app.trading.top_k, app.threshold.max_picks_per_day
    )
    log_predictions(records)
    return signal | trading_view(app, market, ds, test_proba, threshold, signal)


def log_predictions(records: dict[str, pd.DataFrame]) -> None:
    """Log each segment's scored rows as `predictions/<segment>.parquet` (see
    `records.prediction_record`), so every metric can be recomputed from the run."""
    with tempfile.TemporaryDirectory() as tmp:
        for segment, record in records.items():
            record.to_parquet(Path(tmp) / f"{segment}.parquet", index=False)
        tracking.log_artifacts(tmp, "predictions")


def log_plots(
    study: optuna.Study,
    fitted: FittedModel,
    choice: ThresholdChoice,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    rule: ThresholdConfig,
    probabilities: bool = True,
) -> None:
    """Write the study and model plots and log them under the run's `plots/` artifacts.

    Args:
        study: the finished study.
        fitted: the final model (feature importance: total gain).
        choice: the chosen threshold and its frontier.
        val, test: (labels, probabilities, signal days) of validation and test.
        rule: the `threshold` group (picks a day that count).
        probabilities: the scores are probabilities (binary objective: a calibration plot).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plots.write_study_plots(study, out)
        gain = fitted.importance()
        cap = rule.max_picks_per_day
        plots.write_model_plots(val, test, choice, gain, out, cap, probabilities)
        tracking.log_artifacts(out, "plots")


def log_shap(fitted: FittedModel, ds: Dataset, seed: int, figure: bool = True) -> None:
    """The final model's SHAP summary on a seeded sample of validation rows (`shap_report`;
    the table, and the plot unless `figure` is false)."""
    table = shap_report.log_shap(fitted, validation_sample(ds, SHAP_ROWS, seed), seed, figure)
    log.info("top features by mean |SHAP|: %s", table.head(5).to_dict("records"))


def log_threshold_status(choice: ThresholdChoice, rule: ThresholdConfig) -> None:
    """Log and tag whether the threshold met the precision target on validation, and log the
    frontier it was chosen on as `threshold/val_frontier.csv`.

    Args:
        choice: the threshold chosen on validation.
        rule: the `threshold` group (how picks were counted, for the status text).
    """
    target = f"precision >= {choice.target_precision:.2f} {rule.describe()}"
    status = (
        f"threshold {choice.threshold:.3f} meets {target} on validation (precision "
        f"{choice.precision:.4f}, recall {choice.recall:.4f}, {choice.n_picks} picks over "
        f"{choice.n_days} days)"
        if choice.feasible
        else f"NO threshold reaches {target} on validation; best precision reachable with "
        f"enough picks and days {choice.best_precision:.4f}. The model is registered as a "
        "challenger, not champion"
    )
    (log.info if choice.feasible else log.warning)("%s", status)
    tracking.set_tags(
        {"threshold_feasible": str(choice.feasible).lower(), "threshold_status": status}
    )
    if choice.frontier is not None:
        tracking.log_text(choice.frontier.to_csv(index=False), "threshold/val_frontier.csv")


def model_meta(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    params: dict[str, Any],
    choice: ThresholdChoice,
    metrics: dict[str, float],
) -> dict[str, Any]:
    """The facts stored with the model as meta.json (the pyfunc model and `predict` read them).

    Args:
        app: the configuration (label, universe, trading.top_k, threshold.max_picks_per_day).
        market: the market (its description: source, range, stocks).
        ds: the dataset (feature names, segment date ranges).
        params: the best trial's parameters.
        choice: the threshold chosen on validation.
        metrics: the run's metrics (its val_/test_ ones are kept).
    """
    return {
        "features": ds.feature_names,
        "threshold": choice.threshold,
        # binary: `probability` is the label's probability; another objective's is a score
        "objective": app.model.objective,
        "threshold_feasible": choice.feasible,
        "target_precision": choice.target_precision,
        "max_picks_per_day": app.threshold.max_picks_per_day,  # picks a day the precision counts
        "label": asdict(app.label),
        "universe": asdict(app.universe),
        "universe_text": app.universe.describe(),
        "top_k": app.trading.top_k,
        "data": market.describe(),
        "segments": {name: ds.date_range(name) for name in ("train", "val", "test")},
        "params": params,
        "metrics": {k: v for k, v in metrics.items() if k.startswith(("val_", "test_"))},
        # what served rows are checked against (`input_checks`): training rows' quartiles
        "input_profile": training_profile(ds),
    }


def training_profile(ds: Dataset) -> dict[str, dict[str, float | None]]:
    """The input profile (`input_checks.profile_inputs`) of evenly spaced training rows."""
    positions = ds.positions("train")
    return profile_inputs(ds.features("train", positions[sample_rows(len(positions))]))
