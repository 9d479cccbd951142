"""Sanity check of the price-limit flags and the next-open entry on the whole market.

Prints the share of stock-days closing at limit-up (per year and board), how many of those
open at limit-up on the next market day (an entry that cannot fill), and the rows whose
next-open entry is unfillable, with the time each step takes.

    python -m benchmarks.limit_sanity --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ashare_autotune.data.boards import board_of
from ashare_autotune.modelling.labels import make_labels, trading_calendar, unfillable_entries
from ashare_autotune.modelling.limits import limit_flags
from benchmarks.common import SHARED_DATA

COLUMNS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close"]


def load_market(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """market_daily.parquet (the columns the flags need) and market_stock_basic.csv."""
    daily = pd.read_parquet(data_dir / "market_daily.parquet", columns=COLUMNS)
    daily["trade_date"] = pd.to_datetime(daily["trade_date"], format="%Y%m%d")
    daily["ts_code"] = daily["ts_code"].astype(str).astype("category")
    return daily, pd.read_csv(data_dir / "market_stock_basic.csv", dtype=str)


def next_day_flags(daily: pd.DataFrame, flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each row's stock has a bar on the next market day, and that bar's flag."""
    day = trading_calendar(daily).get_indexer(daily["trade_date"])
    codes = daily["ts_code"].cat.codes.to_numpy()
    has_next = np.zeros(len(daily), dtype=bool)
    has_next[:-1] = (codes[1:] == codes[:-1]) & (day[1:] == day[:-1] + 1)
    nxt = np.zeros(len(daily), dtype=bool)
    nxt[:-1] = flag[1:]
    return has_next, nxt & has_next


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    daily, basic = load_market(args.data_dir)
    start = time.perf_counter()
    flags = limit_flags(daily, basic)
    print(f"limit_flags: {len(daily):,} rows in {time.perf_counter() - start:.1f} s")
    up = flags["close_limit_up"].to_numpy()
    shares = {c: f"{flags[c].mean():.4f}" for c in flags.columns}
    print(f"share of rows: {shares}")
    has_next, next_open_up = next_day_flags(daily, flags["open_limit_up"].to_numpy())
    followed = up & has_next
    print(
        f"limit-up closes {up.sum():,}; with a bar on the next market day {followed.sum():,}, "
        f"of which open at limit-up: {(up & next_open_up).sum() / followed.sum():.4f}"
    )
    year = daily["trade_date"].dt.year.to_numpy()
    table = pd.DataFrame(
        {
            "limit_up_closes": pd.Series(up).groupby(year).sum(),
            "share_of_rows": pd.Series(up).groupby(year).mean().round(4),
            "next_open_at_limit_up": pd.Series(next_open_up[followed])
            .groupby(year[followed])
            .mean()
            .round(3),
        }
    )
    print(table.to_string())
    by_board = pd.Series(up).groupby(board_of(daily["ts_code"])).agg(["sum", "mean"])
    print(by_board.round(4).to_string())
    calendar = trading_calendar(daily)
    start = time.perf_counter()
    blocked = flags["open_limit_up"].to_numpy()
    unfillable = unfillable_entries(daily, calendar, blocked)
    y_open = make_labels(daily, calendar, 3, 5, 0.04, entry="next_open", open_limit_up=blocked)
    y_close = make_labels(daily, calendar, 3, 5, 0.04)
    print(f"labels (both entries): {time.perf_counter() - start:.1f} s")
    print(
        f"unfillable next-open entries: {unfillable.sum():,} ({unfillable.mean():.4f} of rows); "
        f"labelled rows: close entry {y_close.notna().sum():,}, next open {y_open.notna().sum():,}"
    )
    print(
        f"label base rate (3..5 days, +4%): close entry {y_close.mean():.4f}, next open "
        f"{y_open.mean():.4f}; on limit-up-close rows: {y_close[up].mean():.3f} vs "
        f"{y_open[up].mean():.3f}"
    )


if __name__ == "__main__":
    main()
