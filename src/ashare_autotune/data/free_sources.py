"""The free per-stock sources by name: `data=baostock` and `data=akshare`."""

from __future__ import annotations

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.per_stock import PerStockReport, PerStockSource, run_update
from ashare_autotune.data.per_stock import today_in_china as today_in_china
from ashare_autotune.errors import ConfigError


def make_source(cfg: DataConfig) -> PerStockSource:
    """The adapter for data.source (baostock | akshare), over the installed library."""
    if cfg.source == "baostock":
        from ashare_autotune.data.baostock import BaostockSource

        return BaostockSource.from_config(cfg)
    if cfg.source == "akshare":
        from ashare_autotune.data.akshare import AkshareSource

        return AkshareSource.from_config(cfg)
    raise ConfigError(f"config key 'data.source'={cfg.source!r}: not a free per-stock source")


def load_free_source(cfg: DataConfig) -> Market:
    """Update and load a free source's cache (`load_baostock` / `load_akshare`)."""
    if cfg.source == "baostock":
        from ashare_autotune.data.baostock import load_baostock

        return load_baostock(cfg)
    from ashare_autotune.data.akshare import load_akshare

    return load_akshare(cfg, None)


def update_free_source(cfg: DataConfig, source: PerStockSource | None = None) -> PerStockReport:
    """Bring a free source's cache up to date under its lock (fetch_data).

    Args:
        cfg: the `data` group.
        source: the adapter (default: `make_source(cfg)`).
    """
    source = source or make_source(cfg)
    try:
        return run_update(cfg, source, today_in_china())
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
