"""A model's backtest on any window of days (`python -m ashare_autotune.backtest`), logged as a
new MLflow run linked to the model: `bt_*` metrics and the `backtest/` report."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ashare_autotune.config.backtest_cli import BacktestCliConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import caveat_tags
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation.backtest_window import (
    BacktestReport,
    run_window_backtest,
    signal_scores,
    stats_markdown,
    window_inputs,
)
from ashare_autotune.evaluation.baseline_compare import (
    Comparison,
    comparison_markdown,
    window_comparison,
)
from ashare_autotune.evaluation.baselines import history_start
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.modelling.labels import trading_calendar
from ashare_autotune.modelling.tradable import universe_mask
from ashare_autotune.modelling.universe import UniverseRules
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.backtest_log import log_backtest
from ashare_autotune.tracking.data_match import check_same_data
from ashare_autotune.tracking.loaded_model import LoadedModel, load_model

log = logging.getLogger(__name__)


@dataclass
class ModelBacktestResult:
    """The backtest run, its window, its `bt_*` metrics and the statistics as markdown."""

    run_id: str
    start: str
    end: str
    metrics: dict[str, float]
    table: str


def window_mask(market: Market, start: str | None, end: str | None) -> pd.Series:
    """The bars of the window [start, end]; a window without bars is a `ConfigError`."""
    dates = market.daily["trade_date"]
    inside = pd.Series(True, index=dates.index)
    if start:
        inside &= dates >= pd.Timestamp(start)
    if end:
        inside &= dates <= pd.Timestamp(end)
    if not inside.any():
        have = market.describe()
        key = "start" if start and pd.Timestamp(start) > dates.max() else "end"
        value = start if key == "start" else end
        raise ConfigError(
            f"config key '{key}'={value!r}: the window "
            f"{start or 'first day'}..{end or 'last day'} has no bars "
            f"(the data covers {have['start']}..{have['end']})"
        )
    return inside


def window_candidates(
    market: Market, rules: UniverseRules, start: str | None, end: str | None
) -> np.ndarray:
    """The bars of the window [start, end] in the model's universe at T (the rules recorded
    with the model: ST, listing age, liquidity, boards; data up to T only), the rows a
    backtest scores and trades, as `predict` and `evaluate` do.

    Args:
        market: the bars, stock_basic (and optionally namechange).
        rules: the model's universe (`LoadedModel.universe.rules()`).
        start, end: the window (YYYYMMDD; None: the data's first / last day).

    Returns:
        A bool array aligned with `market.daily`.
    """
    calendar = trading_calendar(market.daily, market.index)
    inside = window_mask(market, start, end).to_numpy()
    return inside & universe_mask(market, rules, calendar)


def run_model_backtest(cfg: BacktestCliConfig) -> ModelBacktestResult:
    """Score every stock-day of the window in the model's universe, simulate the account,
    log the run.

    Args:
        cfg: the validated configuration.

    Returns:
        The `ModelBacktestResult`.
    """
    tracking.set_tracking_uri(cfg.mlflow.tracking_uri)
    market = load_market(cfg.data)
    index_bars = load_benchmark(cfg.data, market, cfg.backtest.benchmark)  # before the model
    window_mask(market, cfg.start, cfg.end)
    model = load_model(cfg.model_uri)
    check_same_data(model.meta, market, model.display, cfg.allow_other_data)
    start = cfg.start or _day_after(model.data_range[1])
    if start <= model.data_range[1]:
        log.warning("window starts inside the data %s was trained on", model.display)
    inside = window_candidates(market, model.universe.rules(), start, cfg.end)
    if not inside.any():
        raise DataError(
            f"no bar of the window {start}..{cfg.end or 'end of data'} is in the model's "
            f"universe ({model.universe.describe()})"
        )
    rows = build_feature_set(market, None, list(model.features), rows=inside)
    scores = model.predict(rows)
    bt_cfg = cfg.backtest.with_label(cfg.label or model.label)
    first = f"{rows['trade_date'].min():%Y%m%d}"
    history = history_start(market.daily["trade_date"], first)  # the baselines' 20 days
    inputs = window_inputs(bt_cfg, index_bars, market, history)
    proba, cap = scores["probability"].to_numpy(), model.max_picks_per_day
    signals = signal_scores(rows, proba, model.threshold, cap)
    report = run_window_backtest(inputs, signals, "")
    comparison = window_comparison(inputs, report, rows, _labelled(rows), model.top_k)
    last = f"{rows['trade_date'].max():%Y%m%d}"
    run_id = _log_run(cfg, model, report, comparison, first, last)
    table = stats_markdown(report) + (f"\n{comparison_markdown(comparison)}" if comparison else "")
    metrics = report.metrics | (comparison.metrics if comparison else {})
    return ModelBacktestResult(run_id, first, last, metrics, table)


def _labelled(rows: pd.DataFrame) -> pd.DataFrame:
    """The scored rows for the comparison's signal metrics: a window without labels here, so
    its Rank IC and top-k precision are NaN (the accounts are compared)."""
    return rows[["ts_code", "trade_date"]].assign(label=np.nan, fwd_return=np.nan, score=np.nan)


def _day_after(day: str) -> str:
    return (pd.Timestamp(day) + pd.Timedelta(days=1)).strftime("%Y%m%d")


def _log_run(
    cfg: BacktestCliConfig,
    model: LoadedModel,
    report: BacktestReport,
    comparison: Comparison | None,
    first: str,
    last: str,
) -> str:
    experiment_id = tracking.setup(
        cfg.mlflow.tracking_uri, cfg.mlflow.experiment_name, cfg.mlflow.sqlite_wal
    )
    name = cfg.mlflow.run_name or f"backtest-{model.display.replace(' ', '-')}-{first}-{last}"
    with tracking.parent_run(experiment_id, name) as run:
        tracking.set_tags(
            model.tags()
            | {
                "run_kind": "backtest",
                "window": f"{first}..{last}",
                "overlaps_training_data": str(first <= model.data_range[1]).lower(),
            }
            | caveat_tags(cfg.data.source)
        )
        params = {f"backtest.{k}": v for k, v in asdict(report.result.config).items()}
        tracking.log_params(
            params
            | {"model_uri": model.uri, "start": first, "end": last, "threshold": model.threshold}
        )
        log_backtest(report, f"{model.display}, {first}..{last}", comparison)
    return run.info.run_id
