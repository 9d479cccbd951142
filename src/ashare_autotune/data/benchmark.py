"""The benchmark index of a backtest (`backtest.benchmark`), from the configured data source.

- files: `data.index` when it holds a ts_code column (e.g. ../shared/data/index_daily.parquet
  with 000001.SH, 000300.SH, 000905.SH, ...); a file without ts_code is the one index
  `data.index_code`.
- tushare: the index's bars in the local cache, fetched (`index_daily`) for the trading days the
  cache lacks; baostock / akshare: likewise, through the source's own index query.
- synthetic: the market's equal-weight index of all its stocks stands in for each code of
  `SYNTHETIC_INDEX_CODES` (and `data.index_code`): one generated index, not three.
An unknown code is a `ConfigError` naming `backtest.benchmark` and the codes the data has.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.files import read_table
from ashare_autotune.data.free_sources import make_source
from ashare_autotune.data.market import Market
from ashare_autotune.data.per_stock import cache_for, today_in_china
from ashare_autotune.data.per_stock import update_index as update_free_index
from ashare_autotune.data.schema import normalize_index
from ashare_autotune.data.tushare import update_index
from ashare_autotune.data.tushare_client import TushareClient
from ashare_autotune.errors import ConfigError

SYNTHETIC_INDEX_CODES = ("000001.SH", "000300.SH", "000905.SH")
COLUMNS = ["ts_code", "trade_date", "close"]


def _columns(bars: pd.DataFrame) -> list[str]:
    """`COLUMNS` and the open when the bars have it (an excess label's index leg starts there)."""
    return COLUMNS + (["open"] if "open" in bars.columns else [])


def load_benchmark(
    cfg: DataConfig, market: Market, code: str, key: str = "backtest.benchmark"
) -> pd.DataFrame:
    """The daily closes of index `code` from the source of `market`.

    Args:
        cfg: the `data` group the market was loaded with.
        market: the loaded market (its own index and its trading days).
        code: the benchmark, e.g. "000905.SH".
        key: the config key that named it (in errors), e.g. `label.benchmark`.

    Returns:
        ts_code, trade_date (datetime64), close (raw levels) and open when the source has
        it, sorted by date.
    """
    if cfg.source == "synthetic":
        known = sorted({*SYNTHETIC_INDEX_CODES, cfg.index_code})
        _require_known(code, known, "synthetic data", key)
        return market.index.assign(ts_code=code)[_columns(market.index)]
    if cfg.source == "files":
        return _from_file(cfg, code, key)
    if cfg.source == "tushare":
        return _from_tushare(cfg, market, code, key)
    return _from_free_source(cfg, market, code, key)


def _from_file(cfg: DataConfig, code: str, key: str) -> pd.DataFrame:
    raw = read_table(str(cfg.index), "data.index")
    if "ts_code" in raw.columns:
        _require_known(code, sorted(raw["ts_code"].astype(str).unique()), str(cfg.index), key)
    else:  # one index without codes: the market index data.index_code
        where = f"{cfg.index} (no ts_code: data.index_code)"
        _require_known(code, [cfg.index_code], where, key)
    out = normalize_index(raw, str(cfg.index), code).assign(ts_code=code)
    return out[_columns(out)]


def _from_tushare(cfg: DataConfig, market: Market, code: str, key: str) -> pd.DataFrame:
    cache = TushareCache(Path(cfg.cache_dir).expanduser())
    days = sorted(market.index["trade_date"].dt.strftime("%Y%m%d"))
    if code != cfg.index_code:  # the market's own index is already up to date
        update_index(TushareClient.from_config(cfg), cache, code, days)
    bars = cache.read_index(code)
    if bars.empty:
        raise ConfigError(f"config key '{key}'={code!r}: Tushare has no index_daily bars for it")
    where = f"Tushare cache {cache.root}/index_daily/{code}"
    out = normalize_index(bars, where, code).assign(ts_code=code)
    return out[_columns(out)]


def _from_free_source(cfg: DataConfig, market: Market, code: str, key: str) -> pd.DataFrame:
    cache = cache_for(cfg)
    days = market.index["trade_date"]
    if code != cfg.index_code:  # the market's own index is already up to date
        source = make_source(cfg)
        try:
            span = f"{days.min():%Y%m%d}", f"{days.max():%Y%m%d}"
            update_free_index(source, cache, code, *span, today_in_china())
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
    bars = cache.read(cache.index_path(code))
    if bars.empty:
        raise ConfigError(f"config key '{key}'={code!r}: {cfg.source} has no index bars for it")
    where = f"{cfg.source} cache {cache.root}/index/{code}"
    out = normalize_index(bars, where, None).assign(ts_code=code)
    return out[_columns(out)]


def _require_known(code: str, known: list[str], where: str, key: str) -> None:
    if code not in known:
        raise ConfigError(
            f"config key '{key}'={code!r}: not an index of {where} "
            f"(has {', '.join(known) or 'none'})"
        )
