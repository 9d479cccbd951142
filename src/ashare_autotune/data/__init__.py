"""Market data sources. Every source returns the same validated `Market`."""

from ashare_autotune.data.market import Market, load_market

__all__ = ["Market", "load_market"]
