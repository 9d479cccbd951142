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

from ashare_autotune.config.choices import PicksRule
from ashare_autotune.config.model import ModelConfig
from ashare_autotune.config.schema import AppConfig, ThresholdConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import with_caveat
from ashare_autotune.evaluation.explain import SHAP_ROWS, validation_sample
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.evaluation.trading import TradingView
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


def log_trading_view(view: TradingView, signal: dict[str, float], source: str) -> None:
    """Log the test segment's trading view: its daily table and summary as artifacts
    (`trading/test_daily.csv`, `trading/test_summary.md`, the synthetic market's caveat on top).

    Args:
        view: the test segment's trading view (`trading.trading_view`).
        signal: the test segment's signal metrics (`records.signal_metrics`), for the log line.
        source: the market's source (`data.source`).
    """
    tracking.log_text(view.table.to_csv(index=False), "trading/test_daily.csv")
    tracking.log_text(with_caveat(view.summary, source), "trading/test_summary.md")
    log.info(
        "trading view (test): top-k precision %.4f, picks %.2f/day, fwd return picks %.3f%% vs "
        "universe %.3f%%",
        signal["test_topk_precision_mean"],
        signal["test_picks_per_day"],
        100 * view.metrics["test_mean_fwd_return_picks"],
        100 * view.metrics["test_mean_fwd_return_universe"],
    )


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
    the table, and the plot unless `figure` is false); an ensemble's, each member's (a rank
    blend has no margin to explain)."""
    x = validation_sample(ds, SHAP_ROWS, seed)
    members = getattr(fitted, "members", None) or {"": fitted}
    for name, member in members.items():
        table = shap_report.log_shap(member, x, seed, name, figure)
        log.info("top features by mean |SHAP| %s: %s", name, table.head(5).to_dict("records"))


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
    } | picks_entry(app.model)


def picks_entry(model: ModelConfig) -> dict[str, Any]:
    """meta.json's `picks` of an ensemble picking by `filter_then_rank` (its classifier's and
    ranker's member names: the served model applies the rule, `pyfunc_model.PickModel`);
    none for a model picking by its own score."""
    if model.picks != PicksRule.filter_then_rank:
        return {}
    classifier, ranker = model.rule_members()
    return {"picks": {"rule": str(model.picks), "classifier": classifier, "ranker": ranker}}


def training_profile(ds: Dataset) -> dict[str, dict[str, float | None]]:
    """The input profile (`input_checks.profile_inputs`) of evenly spaced training rows."""
    positions = ds.positions("train")
    return profile_inputs(ds.features("train", positions[sample_rows(len(positions))]))
