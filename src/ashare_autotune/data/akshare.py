"""akshare source (`data=akshare`): free, no account; Eastmoney's history, one call per stock.

`stock_zh_a_hist` answers Chinese columns: 日期 (date), 开盘 收盘 最高 最低 (open close high low),
成交量 (volume, in lots of 100 shares), 成交额 (amount, CNY), 涨跌幅 (% change), 涨跌额 (change),
换手率 (turnover, %). They become Tushare's columns and units: amount /1000 (thousand CNY),
pre_close = close - change (the service gives no previous close). The index comes from
`stock_zh_index_daily_em` (date, open, close, high, low, volume, amount), the stock list from
`stock_info_a_code_name` (code, name: listed stocks only, no industry, no listing date).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.client import RetryingClient
from ashare_autotune.data.market import Market
from ashare_autotune.data.per_stock import load_per_stock, today_in_china
from ashare_autotune.data.source_frames import parse_numbers, require_source_columns
from ashare_autotune.errors import ConfigError

ADJUST = {"qfq": "qfq", "hfq": "hfq", "none": ""}
HIST_COLUMNS = {
    "开盘": "open",
    "收盘": "close",
    "最高": "high",
    "最低": "low",
    "成交量": "vol",
    "成交额": "amount",
    "涨跌幅": "pct_chg",
    "涨跌额": "change",
    "换手率": "turnover_rate",
}


def to_ts_code(symbol: str) -> str:
    """A six-digit symbol as a Tushare code: 6/9 -> SH, 4/8/92 -> BJ, others -> SZ."""
    if symbol.startswith(("4", "8", "92")):
        return f"{symbol}.BJ"
    if symbol.startswith(("6", "9")):
        return f"{symbol}.SH"
    return f"{symbol}.SZ"


def _text_dates(dates: pd.Series) -> np.ndarray:
    return dates.astype(str).str.replace("-", "", regex=False).str.slice(0, 8).to_numpy()


def convert_hist(raw: pd.DataFrame, ts_code: str, where: str) -> pd.DataFrame:
    """stock_zh_a_hist rows -> Tushare-style bars of `ts_code`.

    Args:
        raw: the answer (Chinese columns; an empty frame when there are no bars).
        ts_code: the stock.
        where: the call, named in errors.
    """
    if raw.empty:
        return pd.DataFrame()
    require_source_columns(raw, ("日期", *HIST_COLUMNS), where)
    nums = parse_numbers(raw, tuple(HIST_COLUMNS), where).rename(columns=HIST_COLUMNS)
    out = pd.DataFrame({"ts_code": ts_code, "trade_date": _text_dates(raw["日期"])})
    for col in ("open", "high", "low", "close", "change", "pct_chg", "vol", "turnover_rate"):
        out[col] = nums[col].to_numpy()
    out["pre_close"] = out["close"] - out["change"]
    out["amount"] = nums["amount"].to_numpy() / 1000.0  # CNY -> thousand CNY
    return out


def convert_index(raw: pd.DataFrame, ts_code: str, where: str) -> pd.DataFrame:
    """stock_zh_index_daily_em rows -> Tushare-style index bars."""
    if raw.empty:
        return pd.DataFrame()
    cols = ("open", "close", "high", "low", "volume", "amount")
    require_source_columns(raw, ("date", *cols), where)
    nums = parse_numbers(raw, cols, where)
    out = pd.DataFrame({"ts_code": ts_code, "trade_date": _text_dates(raw["date"])})
    for col in ("open", "high", "low", "close"):
        out[col] = nums[col].to_numpy()
    out["pre_close"] = out["close"].shift()
    out["vol"] = nums["volume"].to_numpy()
    out["amount"] = nums["amount"].to_numpy() / 1000.0
    return out


def convert_list(raw: pd.DataFrame) -> pd.DataFrame:
    """stock_info_a_code_name rows (code, name) -> the stock list."""
    require_source_columns(raw, ("code", "name"), "akshare stock_info_a_code_name()")
    codes = raw["code"].astype(str).str.zfill(6)
    return pd.DataFrame(
        {
            "ts_code": [to_ts_code(c) for c in codes],
            "name": raw["name"].astype(str).to_numpy(),
            "industry": None,
            "list_date": None,
            "delist_date": None,
        }
    )


def import_akshare() -> Any:
    """The akshare package, or a ConfigError saying how to install it."""
    try:
        import akshare
    except ImportError:
        raise ConfigError("data=akshare needs the akshare package: pip install akshare") from None
    return akshare


class AkshareSource:
    """The akshare library as a per-stock source (see `per_stock.PerStockSource`)."""

    name = "akshare"

    def __init__(self, client: RetryingClient) -> None:
        self.client = client

    @classmethod
    def from_config(
        cls, cfg: DataConfig, import_api: Callable[[], Any] = import_akshare, **kw: Any
    ) -> AkshareSource:
        """A source that imports akshare on its first call."""
        client = RetryingClient(
            "akshare", import_api, max_retries=cfg.max_retries, retry_wait=cfg.retry_wait, **kw
        )
        return cls(client)

    def stock_bars(self, ts_code: str, start: str, end: str, adjust: str) -> pd.DataFrame:
        """One stock's daily bars from stock_zh_a_hist."""
        symbol = ts_code.split(".")[0]
        params = {"symbol": symbol, "start_date": start, "end_date": end, "adjust": ADJUST[adjust]}
        raw = self.client.call(
            lambda ak: ak.stock_zh_a_hist(period="daily", **params), "stock_zh_a_hist", **params
        )
        return convert_hist(raw, ts_code, f"akshare stock_zh_a_hist(symbol={symbol})")

    def index_bars(self, ts_code: str, start: str, end: str) -> pd.DataFrame:
        """One index's daily bars from stock_zh_index_daily_em (sh000001 for 000001.SH)."""
        number, _, market = ts_code.partition(".")
        params = {"symbol": f"{market.lower()}{number}", "start_date": start, "end_date": end}
        raw = self.client.call(
            lambda ak: ak.stock_zh_index_daily_em(**params), "stock_zh_index_daily_em", **params
        )
        return convert_index(raw, ts_code, f"akshare stock_zh_index_daily_em({params['symbol']})")

    def stock_list(self, day: str) -> pd.DataFrame:
        """The stocks listed now (akshare has no delisted stocks in this list)."""
        raw = self.client.call(lambda ak: ak.stock_info_a_code_name(), "stock_info_a_code_name")
        return convert_list(raw)


def load_akshare(cfg: DataConfig, source: AkshareSource | None = None) -> Market:
    """Update the akshare cache for the configured window and load it as a `Market`.

    Args:
        cfg: the `data` group.
        source: the adapter (default: the installed akshare package).
    """
    return load_per_stock(cfg, source or AkshareSource.from_config(cfg), today_in_china())
