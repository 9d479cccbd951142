"""`load_market`: the dispatch from `data.source` to a source, then the stocks and window."""

from __future__ import annotations

import logging
from dataclasses import replace

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.files import load_files
from ashare_autotune.data.free_sources import load_free_source
from ashare_autotune.data.market import Market
from ashare_autotune.data.sanity import check_market
from ashare_autotune.data.schema import select_universe, select_window
from ashare_autotune.data.synthetic import DEFAULT_STOCKS, make_synthetic_market, training_end
from ashare_autotune.data.tushare import load_tushare
from ashare_autotune.errors import ConfigError

log = logging.getLogger(__name__)


def load_market(cfg: DataConfig) -> Market:
    """Load bars from the configured source, then select the stocks and the date window.

    Args:
        cfg: the `data` config group.

    Returns:
        A validated `Market`.
    """
    if cfg.source == "synthetic":
        market = make_synthetic_market(
            n_stocks=cfg.n_stocks or DEFAULT_STOCKS,
            n_days=cfg.n_days,
            seed=cfg.seed,
            first_date=cfg.first_date,
            index_code=cfg.index_code,
            signal_strength=cfg.signal_strength,
        )
    elif cfg.source == "files":
        market = load_files(cfg)
    elif cfg.source == "tushare":
        market = load_tushare(cfg)
    elif cfg.source in ("baostock", "akshare"):
        market = load_free_source(cfg)
    else:
        raise ConfigError(f"config key 'data.source'={cfg.source!r}: unknown source")
    market = select_universe(market, ts_codes=cfg.ts_codes, n_stocks=cfg.n_stocks, seed=cfg.seed)
    market = select_window(market, start=cfg.start, end=cfg.end)
    # what is used: a broken bar outside data.start..end does not matter; a split that the
    # bars' adjustment factors explain is repaired (logged), and the factors dropped
    market = check_market(market)
    log.info("market data: %s", market.describe())
    return market


def training_data(cfg: DataConfig) -> DataConfig:
    """The data a training job uses: on the synthetic market without `data.end`, all but its
    last `data.holdout_days` days (predict and evaluate, on the whole market, find them).

    Args:
        cfg: the `data` config group.

    Returns:
        `cfg`, with `end` set for the synthetic market when it was not.
    """
    if cfg.source != "synthetic" or cfg.end is not None or cfg.holdout_days == 0:
        return cfg
    return replace(cfg, end=training_end(cfg.first_date, cfg.n_days, cfg.holdout_days))
