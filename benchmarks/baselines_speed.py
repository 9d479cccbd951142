"""How long the baselines add to a whole-market report (issue 24: at most 30 s).

Candidates: every bar of 2021-07-01..2023-03-16 (the test window); the model's score is random
and its label the 5-day forward return > 2% (the point is the time, not the numbers). Times the
model's own account once, then `baseline_compare.compare_baselines`: the factors on the panel,
the four baselines' Rank IC and top-k precision, their four accounts and the model's signal
metrics (the whole addition to a report).

    python -m benchmarks.baselines_speed
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.schema import LabelConfig
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    backtest_bars,
    run_window_backtest,
    signal_scores,
)
from ashare_autotune.evaluation.baseline_compare import compare_baselines, comparison_markdown
from benchmarks.common import SHARED_DATA

START = "2021-07-01"


def main() -> None:
    """Load the whole market, time the model's account and the baselines, print the table."""
    daily = pd.read_parquet(SHARED_DATA / "market_daily.parquet")
    daily["trade_date"] = pd.to_datetime(daily["trade_date"])
    basic = pd.read_csv(SHARED_DATA / "market_stock_basic.csv", dtype=str)
    basic["list_date"] = pd.to_datetime(basic["list_date"])
    index = pd.read_parquet(SHARED_DATA / "index_daily.parquet")
    index["trade_date"] = pd.to_datetime(index["trade_date"])
    bars = backtest_bars(daily, basic, "20210501")  # the factors' 20 days before the window
    inside = (bars["trade_date"] >= START).to_numpy()
    rows = bars.loc[inside, ["ts_code", "trade_date"]].reset_index(drop=True)
    close = bars.groupby("ts_code")["close"]
    fwd = (close.shift(-5) / close.shift(-1) - 1).to_numpy()[inside]
    score = np.random.default_rng(0).random(len(rows))
    inputs = BacktestInputs(bars, index, BacktestConfig().with_label(LabelConfig()))
    print(f"{len(rows):,} candidate rows, {rows['trade_date'].nunique()} days")
    began = time.perf_counter()
    model = run_window_backtest(inputs, signal_scores(rows, score, 0.99), "test")
    print(f"model account: {time.perf_counter() - began:.1f} s")
    labelled = rows.assign(label=(fwd > 0.02).astype(float), fwd_return=fwd, score=score)
    began = time.perf_counter()
    comparison = compare_baselines(inputs, model, rows, labelled[np.isfinite(fwd)], 10)
    print(f"baselines (factors, signal metrics, 4 accounts): {time.perf_counter() - began:.1f} s")
    print(comparison_markdown(comparison))


if __name__ == "__main__":
    main()
