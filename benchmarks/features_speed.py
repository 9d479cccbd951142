"""Wall time and memory of the feature sets on the whole market (issue 17: features=full).

Loads `market_daily.parquet` with the columns the features need, as the project's loader types
them (ts_code categorical, trade_date datetime, float32 prices), then times each feature set on
all rows: basic (`features.build_features`), alpha158, ashare (with limit flags), and per-day
cross-sectional ranks of a few columns. The limit flags come from a stand-in written here (close
to previous close within 0.1% of the board's limit ratio; no ST names, no IPO-day exemptions):
the limits module is written elsewhere, and the flags only feed the counts being timed.
Peak RSS is sampled per phase by `common.Phases` and read from `ru_maxrss` at the end.

    python -m benchmarks.features_speed --data-dir ../shared/data --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.modelling.alpha158 import alpha158_features
from ashare_autotune.modelling.ashare_features import ashare_features, cross_sectional_ranks
from ashare_autotune.modelling.features import build_features
from benchmarks.common import SHARED_DATA, Phases, load, peak_rss_gb, write_result

COLUMNS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "vol", "amount"]
RANKED = ["STD20", "ROC20", "CORR20", "log_amount_20", "amount_ratio_5_20", "ind_rel_ret_20"]


def load_market(data_dir: Path, n_stocks: int | None) -> tuple[pd.DataFrame, ...]:
    """Daily bars (optionally the first n stocks by code), index bars and stock_basic."""
    daily = pd.read_parquet(data_dir / "market_daily.parquet", columns=COLUMNS)
    if n_stocks:
        daily = daily[daily["ts_code"].isin(sorted(daily["ts_code"].unique())[:n_stocks])]
    daily = daily.sort_values(["ts_code", "trade_date"], ignore_index=True)
    daily["ts_code"] = daily["ts_code"].astype("category")
    days, uniques = pd.factorize(daily["trade_date"])
    daily["trade_date"] = pd.to_datetime(pd.Index(uniques), format="%Y%m%d")[days]
    index = pd.read_parquet(data_dir / "index_daily.parquet")
    index = index[index["ts_code"] == "000905.SH"].copy()
    index["trade_date"] = pd.to_datetime(index["trade_date"], format="%Y%m%d")
    basic = pd.read_csv(data_dir / "market_stock_basic.csv", dtype=str)
    return daily, index, basic


def stand_in_flags(daily: pd.DataFrame) -> pd.DataFrame:
    """Limit flags by board ratio from close / pre_close (a timing stand-in, see docstring)."""
    code = daily["ts_code"].astype(str).str
    wide = code.startswith(("688",)) | (
        code.startswith(("300", "301")) & (daily["trade_date"] >= "2020-08-24")
    )
    limit = np.where(code.endswith(".BJ"), 0.30, np.where(wide, 0.20, 0.10))
    ratio = daily["close"].to_numpy(np.float64) / daily["pre_close"].to_numpy(np.float64) - 1
    up, down = ratio >= limit - 1e-3, ratio <= -limit + 1e-3
    flat = (daily["high"] == daily["low"]).to_numpy()
    return pd.DataFrame(
        {"close_limit_up": up, "close_limit_down": down, "one_price_up": up & flat,
         "one_price_down": down & flat}
    )  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time each phase; keep every feature frame alive, as a features=full job would."""
    phases = Phases()
    with phases.timed("load"):
        daily, index, basic = load_market(args.data_dir, args.n_stocks)
    with phases.timed("flags_stand_in"):
        flags = stand_in_flags(daily)
    frames: dict[str, pd.DataFrame] = {}
    start = time.perf_counter()
    with phases.timed("basic"):
        frames["basic"] = build_features(daily, index, basic)
    with phases.timed("alpha158"):
        frames["alpha158"] = alpha158_features(daily)
    with phases.timed("ashare"):
        frames["ashare"] = ashare_features(daily, flags, basic)
    with phases.timed("cs_ranks"):
        ranked = pd.concat([frames["alpha158"][RANKED[:3]], frames["ashare"][RANKED[3:]]], axis=1)
        frames["cs_ranks"] = cross_sectional_ranks(ranked, RANKED, daily["trade_date"])
    features_s = time.perf_counter() - start
    columns = {k: int(f.select_dtypes("number").shape[1]) for k, f in frames.items()}
    return {
        "script": "benchmarks.features_speed",
        "when_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": platform.node(),
        "rows": len(daily),
        "stocks": int(daily["ts_code"].nunique()),
        "feature_columns": columns | {"total": sum(columns.values())},
        "features_wall_s": round(features_s, 1),
        "phase_wall_s": phases.rounded(),
        "phase_peak_rss_gb": {k: round(v, 2) for k, v in phases.peak_gb.items()},
        "feature_frames_gb": {
            k: round(f.memory_usage(deep=True).sum() / 1e9, 2) for k, f in frames.items()
        },  # fmt: skip
        "input_daily_gb": round(daily.memory_usage(deep=True).sum() / 1e9, 2),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "load_avg_end": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--n-stocks", type=int, help="first n stocks by code (default: all)")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    start_load = load()
    result = {"load_avg_start": start_load} | run(args)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
