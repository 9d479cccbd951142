"""Load a whole-market Tushare cache (5,000 stocks x 2,000 trading days) with no API call.

    python benchmarks/tushare_cache_load.py [CACHE_DIR]

Writes a synthetic cache in the real layout once (raw prices + adj_factor, one file per day),
then times `load_tushare` (adjust=qfq, validation included) and reports the peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.tushare import load_tushare
from ashare_autotune.data.tushare_client import TushareClient

N_STOCKS, N_DAYS = 5000, 2000


def write_cache(cache: TushareCache, days: pd.Index, codes: np.ndarray) -> None:
    """A random-walk market in the cache layout `update_cache` writes."""
    rng = np.random.default_rng(0)
    close = rng.uniform(5, 50, len(codes))
    for day in days:
        prev, close = close, close * (1 + rng.normal(0, 0.02, len(codes))).clip(0.9, 1.1)
        bars = {
            "ts_code": codes,
            "trade_date": day,
            "open": prev,
            "high": np.maximum(prev, close) * 1.01,
            "low": np.minimum(prev, close) * 0.99,
            "close": close,
            "pre_close": prev,
            "change": close - prev,
            "pct_chg": (close / prev - 1) * 100,
            "vol": rng.uniform(1e3, 1e6, len(codes)),
            "amount": rng.uniform(1e3, 1e6, len(codes)),
            "adj_factor": 1.0 + (rng.random(len(codes)) < 0.001),
        }
        cache.write_day(day, pd.DataFrame(bars))
    every_day = pd.date_range(days[0], days[-1]).strftime("%Y%m%d")
    cal = pd.DataFrame({"cal_date": every_day, "is_open": every_day.isin(days).astype(float)})
    cache.write_calendar(cal)
    index = pd.DataFrame({"ts_code": "000001.SH", "trade_date": days, "close": 3000.0})
    cache.write_index("000001.SH", days[0], days[-1], index)
    basic = {"ts_code": codes, "name": "x", "industry": "银行", "list_date": "20100101"}
    cache.write_basic(pd.DataFrame(basic).astype("string"))


def main() -> None:
    """Build the cache when absent, then time one cache-hit load."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ashare-tushare-bench")
    days = pd.bdate_range("20150105", periods=N_DAYS).strftime("%Y%m%d")
    codes = np.array([f"{600000 + i:06d}.SH" for i in range(N_STOCKS)])
    cache = TushareCache(root)
    if not (root / "stock_basic.parquet").exists():
        t0 = time.perf_counter()
        write_cache(cache, days, codes)
        print(f"wrote {N_DAYS} day files in {time.perf_counter() - t0:.1f} s")

    def no_network() -> None:
        raise AssertionError("a cache hit must not call the API")

    cfg = DataConfig(source="tushare", start=days[0], end=days[-1], cache_dir=str(root))
    cfg.progress = False
    t0 = time.perf_counter()
    market = load_tushare(cfg, TushareClient(no_network), today="20300101")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"load_tushare cache hit: {time.perf_counter() - t0:.1f} s, {len(market.daily):,} bars, "
        f"{market.daily.memory_usage(deep=True).sum() / 1e9:.2f} GB frame, peak RSS {peak:.2f} GB"
    )


if __name__ == "__main__":
    main()
