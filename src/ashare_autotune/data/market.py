"""The `Market` container and the dispatch from `data.source` to a loader."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import pandas as pd

from ashare_autotune.config import DataConfig
from ashare_autotune.data.schema import apply_universe_rules, select_universe, select_window
from ashare_autotune.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Market:
    """Daily bars of a stock universe plus the market index and static stock info.

    Attributes:
        daily: one row per (ts_code, trade_date), sorted by ts_code then trade_date;
            trade_date is datetime64, ts_code categorical, prices/volumes float32.
        index: the market index bars (trade_date, close, pct_chg), sorted by date.
        stock_basic: ts_code, name, industry (industry may be missing), list_date.
        source: a short human description of where the data came from.
    """

    daily: pd.DataFrame
    index: pd.DataFrame
    stock_basic: pd.DataFrame
    source: str
    summary: dict[str, str | int] | None = None  # set by `without_bars`
    # Point-in-time names (Tushare namechange: ts_code, name, start_date, end_date), or None.
    namechange: pd.DataFrame | None = None

    @property
    def n_stocks(self) -> int:
        if self.summary is not None:
            return int(self.summary["n_stocks"])
        return int(self.daily["ts_code"].nunique())

    def without_bars(self) -> Market:
        """This market with its description but no daily bars (free the panel once the
        features are built: 0.4 GB at whole-market scale)."""
        return replace(self, daily=self.daily.iloc[:0].copy(), summary=self.describe())

    def describe(self) -> dict[str, str | int]:
        """Summary used in logs and MLflow: source, date range, stocks and rows."""
        if self.summary is not None:
            return dict(self.summary)
        dates = self.daily["trade_date"]
        return {
            "source": self.source,
            "start": dates.min().strftime("%Y%m%d"),
            "end": dates.max().strftime("%Y%m%d"),
            "n_stocks": self.n_stocks,
            "n_rows": len(self.daily),
        }


def load_market(cfg: DataConfig) -> Market:
    """Load bars from the configured source, then apply the universe and date window.

    Args:
        cfg: the `data` config group.

    Returns:
        A validated `Market`.
    """
    if cfg.source == "synthetic":
        from ashare_autotune.data.synthetic import make_synthetic_market

        market = make_synthetic_market(
            n_stocks=cfg.n_stocks or 300,
            n_days=cfg.n_days,
            seed=cfg.seed,
            first_date=cfg.first_date,
            index_code=cfg.index_code,
        )
    elif cfg.source == "files":
        from ashare_autotune.data.files import load_files

        market = load_files(cfg)
    elif cfg.source == "tushare":
        from ashare_autotune.data.tushare import load_tushare

        market = load_tushare(cfg)
    elif cfg.source in ("baostock", "akshare"):
        from ashare_autotune.data.free_sources import load_free_source

        market = load_free_source(cfg)
    else:
        raise ConfigError(f"config key 'data.source'={cfg.source!r}: unknown source")
    market = apply_universe_rules(market, cfg.exclude_st, cfg.min_list_days)
    market = select_universe(market, ts_codes=cfg.ts_codes, n_stocks=cfg.n_stocks, seed=cfg.seed)
    market = select_window(market, start=cfg.start, end=cfg.end)
    log.info("market data: %s", market.describe())
    return market
