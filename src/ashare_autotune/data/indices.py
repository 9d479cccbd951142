"""The bars of one more index than the market's own (e.g. a label's or a backtest's benchmark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ashare_autotune.config.schema import DataConfig, LabelConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.files import read_table
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import normalize_index
from ashare_autotune.errors import ConfigError, DataError


def index_bars(cfg: DataConfig, code: str | None, market: Market, key: str) -> pd.DataFrame:
    """trade_date and close of index `code`, from the same source as the market.

    Args:
        cfg: the `data` group (source, index file or Tushare cache).
        code: the index code; None or `data.index_code`: the market's own index.
        market: the loaded market (its index is reused when it is the one asked for).
        key: the config key that named the index (named in errors).

    Raises:
        ConfigError: naming `key` when the source has no bar of `code`.
    """
    if code is None or code == cfg.index_code:
        return market.index
    missing = ConfigError(f"config key '{key}'={code!r}: not in the index data of {cfg.source}")
    if cfg.source == "files" and cfg.index:
        try:
            return normalize_index(read_table(cfg.index, "data.index"), str(cfg.index), code)
        except DataError as exc:
            raise ConfigError(f"config key '{key}'={code!r}: {exc}") from None
    if cfg.source == "tushare":
        bars = TushareCache(Path(cfg.cache_dir).expanduser()).read_index(code)
        if len(bars):
            return normalize_index(bars, f"{cfg.cache_dir}/index_daily/{code}", code)
    raise missing


def label_benchmark(cfg: DataConfig, label: LabelConfig, market: Market) -> pd.DataFrame | None:
    """The index bars an `excess` label subtracts (`label.benchmark`); None for other kinds."""
    if label.kind != "excess":
        return None
    return index_bars(cfg, label.benchmark, market, "label.benchmark")
