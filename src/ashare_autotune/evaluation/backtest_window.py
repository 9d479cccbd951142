"""The backtest of one scored window (the test segment, an `evaluate` window, a `backtest` run):
its bars with their limit flags, its benchmark, the simulation and the statistics, as values.

Pure: the benchmark's bars come loaded (`data.benchmark`); logging is `tracking.backtest_log`.
The window traded: from the first signal day to `max_days` market days after the last one (so
the last signals can reach their exit), or the last bar before that; the account's and the
benchmark's daily returns start the day after the first signal day (orders fill at T+1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError
from ashare_autotune.evaluation.backtest import BacktestResult, run_backtest
from ashare_autotune.evaluation.backtest_report import backtest_stats, benchmark_returns
from ashare_autotune.evaluation.threshold import signal_picks
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.modelling.limits import limit_flags, st_days

log = logging.getLogger(__name__)

# vol and amount: the volume cap (`backtest.max_volume_share`) and the baselines' amount_20
# (evaluation.baselines)
BAR_COLUMNS = ["ts_code", "trade_date", "open", "close", "pre_close", "vol", "amount"]
FLAG_COLUMNS = ["open_limit_up", "open_limit_down", "one_price_down"]


@dataclass
class BacktestInputs:
    """What a backtest needs besides the scores: the bars from the window's first day on with
    their limit flags, the benchmark index's closes and the configuration."""

    bars: pd.DataFrame  # BAR_COLUMNS (those present) + FLAG_COLUMNS
    index_bars: pd.DataFrame  # ts_code, trade_date, close of the benchmark
    cfg: BacktestConfig


@dataclass
class BacktestReport:
    """A finished backtest: the account, the benchmark's returns and `<prefix>_bt_*` metrics."""

    result: BacktestResult
    benchmark: pd.Series
    metrics: dict[str, float]
    prefix: str


def backtest_bars(
    daily: pd.DataFrame,
    stock_basic: pd.DataFrame,
    start: str,
    namechange: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The bars from `start` (YYYYMMDD) on, slim, with the flags the simulation reads.

    Flags are computed on those rows only: a stock listed before `start` has no IPO day in
    them, one listed after has its first rows there, as in the full panel. Without pre_close
    the first row of each stock has no limit flag. ST names have their ST limits
    (`limits.st_days`: point-in-time with `namechange`, else the stock_basic names).

    Args:
        daily: bars sorted by (ts_code, trade_date) with open, high, low, close (pre_close,
            vol, amount).
        stock_basic: ts_code and list_date (and name).
        start: the first day kept.
        namechange: the market's name history (Tushare `namechange`), None when unknown.

    Returns:
        ts_code, trade_date, open, close, pre_close, vol, amount (those present),
        open_limit_up, open_limit_down, one_price_down.
    """
    rows = daily.loc[daily["trade_date"] >= pd.Timestamp(start)]
    flags = limit_flags(rows, stock_basic, st_days(rows, stock_basic, namechange))
    columns = [c for c in BAR_COLUMNS if c in rows.columns]
    bars = rows[columns].reset_index(drop=True)
    for name in FLAG_COLUMNS:
        bars[name] = flags[name].to_numpy()
    return bars


def window_inputs(
    cfg: BacktestConfig, index_bars: pd.DataFrame, market: Market, start: str
) -> BacktestInputs:
    """The bars from `start` on with their flags, the benchmark's closes and `cfg`.

    Args:
        cfg: the `backtest` group, horizon set (`BacktestConfig.with_label`).
        index_bars: the benchmark's closes (`data.benchmark.load_benchmark`).
        market: the market with its bars.
        start: the first signal day, YYYYMMDD.
    """
    cfg.check_complete()
    bars = backtest_bars(market.daily, market.stock_basic, start, market.namechange)
    log.info("backtest bars from %s: %d rows (benchmark %s)", start, len(bars), cfg.benchmark)
    return BacktestInputs(bars, index_bars, cfg)


def signal_scores(
    rows: pd.DataFrame,
    probability: np.ndarray,
    threshold: float,
    max_picks_per_day: int | None = None,
) -> pd.DataFrame:
    """ts_code, trade_date, score (the probability) and pick per row: score >= threshold and,
    with `max_picks_per_day` (the cap the threshold was chosen under), among the day's best
    (`threshold.signal_picks`), which the `threshold` strategy buys."""
    days = rows["trade_date"].to_numpy()
    return pd.DataFrame(
        {
            "ts_code": rows["ts_code"].astype(str).to_numpy(),
            "trade_date": days,
            "score": np.asarray(probability, dtype=np.float64),
            "pick": signal_picks(probability, days, threshold, max_picks_per_day),
        }
    )


def run_window_backtest(
    inputs: BacktestInputs, scores: pd.DataFrame, prefix: str
) -> BacktestReport:
    """Simulate the account on the scores' window and measure it against the benchmark.

    Args:
        inputs: bars, benchmark and configuration (`window_inputs`).
        scores: `signal_scores` of every scored row of the window.
        prefix: the metrics' segment, e.g. "test" -> test_bt_information_ratio ("": bt_*).

    Returns:
        The `BacktestReport`.
    """
    if scores.empty:
        raise DataError(f"{prefix}: no scored rows to backtest")
    start, end = trading_window(inputs, scores["trade_date"])
    result = run_backtest(scores, inputs.bars, inputs.cfg, start, end)
    bench = benchmark_returns(inputs.index_bars, inputs.cfg.benchmark, result.daily["trade_date"])
    stats = backtest_stats(result, bench)
    metrics = {f"{prefix}_{k}" if prefix else k: v for k, v in stats.items()}
    log.info(
        "backtest %s %s..%s (%s, benchmark %s): annual return %.2f%% vs %.2f%%, IR %.2f, "
        "max drawdown %.2f%%, %d trades",
        prefix or "window",
        f"{result.daily['trade_date'].iloc[0]:%Y-%m-%d}",
        f"{end:%Y-%m-%d}",
        inputs.cfg.strategy,
        inputs.cfg.benchmark,
        100 * stats["bt_annual_return"],
        100 * stats["bt_benchmark_annual_return"],
        stats["bt_information_ratio"],
        100 * stats["bt_max_drawdown"],
        int(stats["bt_trades"]),
    )
    return BacktestReport(result, bench, metrics, prefix)


def segment_backtest(
    ds: Dataset,
    segment: str,
    inputs: BacktestInputs | None,
    probability: np.ndarray,
    threshold: float,
    max_picks_per_day: int | None = None,
) -> BacktestReport | None:
    """The backtest of one scored segment of the dataset (None without inputs:
    `backtest.enabled=false`).

    Every row of the segment is a signal, also one whose next-open entry will not fill: the
    signal at T cannot know that; the simulation decides the fills.

    Args:
        ds: the dataset.
        segment: "test" (or "val").
        inputs: bars, benchmark and configuration (`window_inputs`), or None.
        probability: the model's score of every row of the segment, unfillable ones
            included, in row order (`Dataset.predict(..., all_rows=True)`).
        threshold: the pick threshold (strategy `threshold`).
        max_picks_per_day: the strategy's picks a day (`threshold.max_picks_per_day`).
    """
    if inputs is None:
        return None
    rows = ds.segment_rows(segment, ["ts_code", "trade_date"], all_rows=True)
    scores = signal_scores(rows, probability, threshold, max_picks_per_day)
    return run_window_backtest(inputs, scores, segment)


def trading_window(
    inputs: BacktestInputs, trade_dates: pd.Series
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First signal day .. `max_days` market days of the bars after the last signal (or the
    last bar), for signals on `trade_dates`."""
    signal_days = pd.to_datetime(trade_dates)
    first, last = signal_days.min(), signal_days.max()
    days = np.unique(inputs.bars["trade_date"].to_numpy("datetime64[ns]"))
    after = days[days > last.to_datetime64()]
    horizon = int(inputs.cfg.max_days or 0)
    end = after[min(horizon, len(after)) - 1] if len(after) and horizon else last.to_datetime64()
    return first, pd.Timestamp(end)


def stats_markdown(report: BacktestReport) -> str:
    """The report's statistics as a two-column markdown table (README, run artifacts)."""
    daily = report.result.daily
    span = f"{daily['trade_date'].min():%Y-%m-%d}..{daily['trade_date'].max():%Y-%m-%d}"
    cfg = report.result.config
    rules = f"n_drop={cfg.n_drop}" if cfg.strategy == "topk_dropout" else ""
    rules = rules or f"max_holdings={cfg.max_holdings}, exit={cfg.exit}"
    lines = [
        f"Backtest {report.prefix or 'window'} {span}: {cfg.strategy} (top_k={cfg.top_k}, "
        f"{rules}), benchmark {cfg.benchmark}",
        "",
        "| statistic | value |",
        "|---|---:|",
    ]
    for key, value in report.metrics.items():
        name = key.removeprefix(f"{report.prefix}_" if report.prefix else "").removeprefix("bt_")
        counted = name in ("trades", "open_trades", "total_costs", "final_equity")
        text = f"{value:,.0f}" if counted else f"{value:.4f}"
        lines.append(f"| {name} | {text} |")
    return "\n".join(lines) + "\n"
