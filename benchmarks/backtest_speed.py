"""How long the backtest takes on the whole market: two years of days, top-50 a day.

The score is 5-day momentum (close / close five market days earlier): deterministic and cheap;
the point is the engine's speed, not the strategy. Limit flags are a simple board-aware
approximation made here (main board 10%, ChiNext 20% from 2020-08-24, STAR 20%, Beijing 30%;
no ST names, no IPO exemptions; the ratio to pre_close within 0.2 percentage points), since
the project's limits module is not on this branch yet.

    python -m benchmarks.backtest_speed --out benchmarks/results/backtest_speed.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import SHARED_DATA, Phases, load, peak_rss_gb, write_result

LIMIT_TOLERANCE = 0.002  # limits act on raw prices rounded to 0.01; these are adjusted


def approximate_limit_flags(bars: pd.DataFrame) -> pd.DataFrame:
    """open_limit_up, open_limit_down and one_price_down from the ratio to pre_close, by board
    (see module)."""
    code = bars["ts_code"].astype(str)
    reformed = bars["trade_date"] >= pd.Timestamp("2020-08-24")
    pct = np.where(code.str.startswith(("300", "301")) & reformed, 0.20, 0.10)
    pct = np.where(code.str.startswith("688"), 0.20, pct)
    pct = np.where(code.str.endswith(".BJ"), 0.30, pct)
    pre = bars["pre_close"].to_numpy(np.float64)
    o, h, lo = (bars[c].to_numpy(np.float64) for c in ("open", "high", "low"))
    return pd.DataFrame(
        {
            "open_limit_up": (o / pre - 1 >= pct - LIMIT_TOLERANCE) & (o == h),
            "open_limit_down": (o / pre - 1 <= -(pct - LIMIT_TOLERANCE)) & (o == lo),
            "one_price_down": (lo / pre - 1 <= -(pct - LIMIT_TOLERANCE)) & (h == lo),
        },
        index=bars.index,
    )


def momentum_scores(bars: pd.DataFrame, days: int = 5) -> pd.DataFrame:
    """close / close `days` rows earlier, per stock (bars sorted by ts_code, trade_date)."""
    before = bars.groupby("ts_code", observed=True, sort=False)["close"].shift(days)
    scores = bars[["ts_code", "trade_date"]].copy()
    scores["score"] = (bars["close"] / before - 1).to_numpy(np.float64)
    return scores.loc[scores["score"].notna()]


def prepare(data_dir: Path, years: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Bars with flags and momentum scores for the last `years` of the market, and the index."""
    path = data_dir / "market_daily.parquet"
    last = pd.to_datetime(pd.read_parquet(path, columns=["trade_date"])["trade_date"].max())
    start = last - pd.DateOffset(years=years)
    lookback = f"{start - pd.Timedelta(days=30):%Y%m%d}"  # weeks for the 5-day momentum
    columns = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close"]
    bars = pd.read_parquet(path, columns=columns, filters=[("trade_date", ">=", lookback)])
    bars["trade_date"] = pd.to_datetime(bars["trade_date"], format="%Y%m%d")
    bars = pd.concat([bars, approximate_limit_flags(bars)], axis=1)
    scores = momentum_scores(bars)
    scores = scores.loc[scores["trade_date"] >= start]
    index = pd.read_parquet(data_dir / "index_daily.parquet")
    index["trade_date"] = pd.to_datetime(index["trade_date"], format="%Y%m%d")
    return bars.loc[bars["trade_date"] >= start], scores, index


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time loading, the backtest (repeated), the statistics, the plots and the tear sheet."""
    from ashare_autotune.config.schema import LabelConfig
    from ashare_autotune.evaluation import backtest_report as report
    from ashare_autotune.evaluation.backtest import BacktestConfig, run_backtest

    phases = Phases()
    with phases.timed("load_and_prepare"):
        bars, scores, index = prepare(args.data_dir, args.years)
    cfg = BacktestConfig(strategy=args.strategy, top_k=args.top_k, max_holdings=args.max_holdings)
    cfg = cfg.with_label(LabelConfig())  # the default label's horizon
    backtest_seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        with phases.timed("run_backtest"):
            result = run_backtest(scores, bars, cfg)
        backtest_seconds.append(round(time.perf_counter() - start, 3))
    with phases.timed("statistics"):
        bench = report.benchmark_returns(index, cfg.benchmark, result.daily["trade_date"])
        stats = report.backtest_stats(result, bench)
    with tempfile.TemporaryDirectory() as tmp, phases.timed("plots_and_tearsheet"):
        report.write_backtest_plots(result, bench, Path(tmp))
        report.write_tearsheet(result, bench, Path(tmp) / "tearsheet.html")
    return {
        "what": "run_backtest on the whole market, top-k by 5-day momentum",
        "data": {
            "bars": len(bars),
            "stocks": int(bars["ts_code"].nunique()),
            "days": int(result.daily.shape[0]),
            "first_day": f"{result.daily['trade_date'].iloc[0]:%Y-%m-%d}",
            "last_day": f"{result.daily['trade_date'].iloc[-1]:%Y-%m-%d}",
            "score_rows": len(scores),
            "open_limit_up_rows": int(bars["open_limit_up"].sum()),
            "one_price_down_rows": int(bars["one_price_down"].sum()),
        },
        "config": {
            "strategy": cfg.strategy,
            "top_k": cfg.top_k,
            "n_drop": cfg.n_drop,
            "max_holdings": cfg.max_holdings,
            "exit": cfg.exit,
        },
        "run_backtest_seconds": backtest_seconds,
        "run_backtest_median_s": float(np.median(backtest_seconds)),
        "phase_seconds": phases.rounded(),
        "phase_peak_rss_gb": phases.peaks(),
        "rss_before_backtest_gb": phases.end_gb["load_and_prepare"],
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "load_average": load(),
        "trades": int(len(result.trades)),
        "skipped": result.skipped,
        "stats": {k: round(v, 4) for k, v in stats.items()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    """Parse the options, run the benchmark, print and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--strategy", default="top_k", help="backtest.strategy (README: top_k)")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--max-holdings", type=int, default=250, help="top-k x 5-day horizon")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    write_result(run(args), args.out)


if __name__ == "__main__":
    main()
