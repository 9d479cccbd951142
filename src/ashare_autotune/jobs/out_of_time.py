"""Out-of-time evaluation of a registered model, logged as an MLflow run linked to the version."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import EvaluateConfig, LabelConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import caveat_tags, with_caveat
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation.backtest_window import (
    BacktestReport,
    run_window_backtest,
    signal_scores,
    window_inputs,
)
from ashare_autotune.evaluation.baseline_compare import Comparison, window_comparison
from ashare_autotune.evaluation.baselines import history_start
from ashare_autotune.evaluation.metrics import classification_metrics
from ashare_autotune.evaluation.records import prediction_record, signal_metrics
from ashare_autotune.evaluation.trading import pick_returns
from ashare_autotune.modelling.dataset import labelled_rows
from ashare_autotune.tracking import registry, reports
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.backtest_log import log_backtest_artifacts
from ashare_autotune.tracking.data_match import check_same_data
from ashare_autotune.tracking.loaded_model import LoadedModel, load_model

log = logging.getLogger(__name__)

SEGMENT = "oot"
TABLE_METRICS = (
    "auc",
    "precision",
    "recall",
    "n_picks",
    "base_rate",
    "rank_ic_mean",
    "rank_ic_ir",
    "topk_precision_mean",
    "topk_excess_return_mean",
)
BACKTEST_ROWS = ("annual_return", "excess_return", "information_ratio", "max_drawdown")


@dataclass
class EvaluationResult:
    """The evaluation run, its window and metrics (named `oot_<metric>`)."""

    run_id: str
    start: str
    end: str
    metrics: dict[str, float]
    table: str


def window_rows(
    market: Market,
    model: LoadedModel,
    label: LabelConfig,
    start: str,
    end: str | None,
    benchmark: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The window's candidates (the model's universe at T) with the model's features, label,
    fillable and forward return (label metrics read the labelled ones; the record, the signal
    metrics and the backtest all).

    Raises `DataError` when the window holds no row with a fully observed label.
    """
    rules = model.universe.rules()
    frame, _, _ = labelled_rows(market, model.features, label, rules, benchmark)
    inside = frame["trade_date"] >= pd.Timestamp(start)
    if end:
        inside &= frame["trade_date"] <= pd.Timestamp(end)
    rows = frame.loc[inside]
    if rows.empty:
        have = market.describe()
        raise DataError(
            f"no labelled rows in the window {start}..{end or 'end of data'}: the data covers "
            f"{have['start']}..{have['end']} and a label needs {label.max_days} later trading "
            f"days; load later data (data.end) or set start=/end="
        )
    return rows


def window_metrics(
    every: pd.DataFrame,
    scores: pd.DataFrame,
    threshold: float,
    top_k: int = 10,
    max_picks_per_day: int | None = None,
) -> dict[str, float]:
    """Classification metrics at the threshold (picks capped at `max_picks_per_day` a day, the
    day's best, as the threshold was chosen) and mean forward returns of picks vs universe on
    the labelled rows, and the signal metrics of every candidate (`records.signal_metrics`:
    Rank IC, top-k precision, ...)."""
    labelled = every["label"].notna().to_numpy()
    rows, proba = every.loc[labelled], scores["probability"].to_numpy()
    days, cap = every["trade_date"].to_numpy(), max_picks_per_day
    y = every["label"].to_numpy(np.float64)
    metrics = classification_metrics(y, proba, threshold, SEGMENT, days, cap, labelled)
    picks = scores["pick"].to_numpy(bool)[labelled]
    returns = pick_returns(rows["fwd_return"].to_numpy(np.float64), picks)
    metrics |= {f"{SEGMENT}_{k}": v for k, v in returns.items()}
    record = prediction_record(every, proba, threshold, cap)
    metrics |= signal_metrics(record, top_k, SEGMENT)
    metrics |= {
        f"{SEGMENT}_n_days": float(rows["trade_date"].nunique()),
        f"{SEGMENT}_n_stocks": float(rows["ts_code"].nunique()),
    }
    return metrics


def resolve_window(model: LoadedModel, start: str | None, allow_overlap: bool) -> str:
    """The first day to score: the day after the model's data unless given; refuses overlap."""
    train_start, train_end = model.data_range
    if start is None:
        return (pd.Timestamp(train_end) + pd.Timedelta(days=1)).strftime("%Y%m%d")
    if start <= train_end and not allow_overlap:
        raise ConfigError(
            f"config key 'start'={start!r}: inside the data {model.display} was trained on "
            f"({train_start}..{train_end}), so it is not out-of-time; choose a start after "
            f"{train_end} or set allow_overlap=true"
        )
    return start


def run_evaluation(cfg: EvaluateConfig) -> EvaluationResult:
    """Score a window the model was not trained on and log a run linked to the model version.

    Args:
        cfg: the validated evaluate configuration.

    Returns:
        The `EvaluationResult`.
    """
    tracking.set_tracking_uri(cfg.mlflow.tracking_uri)
    model = load_model(cfg.model_uri)
    label = cfg.label or model.label
    if label != model.label:
        log.warning("label %s differs from the model's %s", asdict(label), asdict(model.label))
    start = resolve_window(model, cfg.start, cfg.allow_overlap)
    market = load_market(cfg.data)
    check_same_data(model.meta, market, model.display, cfg.allow_other_data)
    bt_cfg = cfg.backtest.with_label(label)
    bench = load_benchmark(cfg.data, market, bt_cfg.benchmark) if bt_cfg.enabled else None
    label_bench = label_benchmark(cfg.data, label, market)  # an excess label's index
    every = window_rows(market, model, label, start, cfg.end, label_bench)
    every_scores = model.predict(every)
    cap = model.max_picks_per_day  # the picks a day the threshold was chosen under
    metrics = window_metrics(every, every_scores, model.threshold, model.top_k, cap)
    first, last = f"{every['trade_date'].min():%Y%m%d}", f"{every['trade_date'].max():%Y%m%d}"
    report, comparison = None, None
    if bench is not None:  # every scored row is a signal; the simulation decides the fills
        history = history_start(market.daily["trade_date"], first)  # the baselines' 20 days
        inputs = window_inputs(bt_cfg, bench, market, history)
        signals = signal_scores(
            every, every_scores["probability"].to_numpy(), model.threshold, cap
        )
        report = run_window_backtest(inputs, signals, SEGMENT)
        columns = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
        scored = every[[c for c in columns if c in every.columns]]
        scored = scored.assign(score=every_scores["probability"].to_numpy())
        comparison = window_comparison(inputs, report, every, scored, model.top_k)
        metrics |= report.metrics | (comparison.metrics if comparison else {})
    table = format_table(model, metrics, first, last)
    table += f"\nbaselines: {comparison.verdict}" if comparison else ""
    table = with_caveat(table, market.source)
    record = prediction_record(every, every_scores["probability"].to_numpy(), model.threshold, cap)
    reported = (report, comparison)
    run_id = _log_run(cfg, model, label, metrics, (first, last, table), record, reported)
    return EvaluationResult(run_id=run_id, start=first, end=last, metrics=metrics, table=table)


def _log_run(
    cfg: EvaluateConfig,
    model: LoadedModel,
    label: LabelConfig,
    metrics: dict[str, float],
    window: tuple[str, str, str],
    record: pd.DataFrame,
    reported: tuple[BacktestReport | None, Comparison | None],
) -> str:
    """Log the evaluation run (params, metrics, table, `predictions/oot_<first>_<last>.parquet`)
    and tag the model version with it."""
    first, last, table = window
    report, comparison = reported
    experiment_id = tracking.setup(
        cfg.mlflow.tracking_uri, cfg.mlflow.experiment_name, cfg.mlflow.sqlite_wal
    )
    name = cfg.mlflow.run_name or f"evaluate-{model.display.replace(' ', '-')}-{first}-{last}"
    with tracking.parent_run(experiment_id, name) as run:
        in_sample = first <= model.data_range[1]  # only with allow_overlap=true
        tracking.set_tags(
            model.tags()
            | {
                "run_kind": "out_of_time_evaluation",
                "window": f"{first}..{last}",
                "overlaps_training_data": str(in_sample).lower(),
            }
            | caveat_tags(cfg.data.source)
        )
        tracking.log_params(
            {
                "model_uri": model.uri,
                "start": first,
                "end": last,
                "threshold": model.threshold,
                "data.source": cfg.data.source,
                **{f"label.{k}": v for k, v in asdict(label).items()},
                **{f"universe.{k}": v for k, v in asdict(model.universe).items()},
            }
        )
        tracking.log_metrics(metrics)
        tracking.log_text(table, "evaluation/summary.txt")
        reports.log_predictions({f"{SEGMENT}_{first}_{last}": record})
        if report is not None:
            title = f"{model.display}, out of time {first}..{last}"
            log_backtest_artifacts(report, title, comparison)
        if model.model_id:  # the metrics also show on the logged model's page
            tracking.log_metrics(metrics, model_id=model.model_id)
    if model.version:
        registry.set_version_tags(
            model.name or "",
            model.version,
            {
                "last_evaluation_run_id": run.info.run_id,
                "last_evaluation_window": f"{first}..{last}",
                f"{SEGMENT}_precision": round(metrics[f"{SEGMENT}_precision"], 4),
            },
        )
    return run.info.run_id


def format_table(model: LoadedModel, metrics: dict[str, float], first: str, last: str) -> str:
    """A short text table: out-of-time metrics next to the model's test metrics at training."""
    test = model.meta.get("metrics", {})
    lines = [
        f"{model.display} ({model.uri}), threshold {model.threshold:.3f}",
        f"out-of-time window {first}..{last}: {int(metrics['oot_n_rows'])} rows, "
        f"{int(metrics['oot_n_days'])} days, {int(metrics['oot_n_stocks'])} stocks",
        f"{'metric':<24}{'out-of-time':>12}{'test@train':>12}",
    ]
    for key in TABLE_METRICS:
        digits = 0 if key == "n_picks" else 4
        new, old = metrics[f"oot_{key}"], test.get(f"test_{key}")
        lines.append(f"{key:<24}{_fmt(new, digits):>12}{_fmt(old, digits):>12}")
    for key in ("mean_fwd_return_picks", "mean_fwd_return_universe", "excess_fwd_return"):
        lines.append(f"{key:<24}{metrics[f'oot_{key}']:>12.4%}{'-':>12}")
    for key in BACKTEST_ROWS:  # the account after costs (backtest.* settings)
        new, old = metrics.get(f"oot_bt_{key}"), test.get(f"test_bt_{key}")
        if new is not None:
            lines.append(f"{'bt_' + key:<24}{_fmt(new, 4):>12}{_fmt(old, 4):>12}")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
