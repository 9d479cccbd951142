"""baostock source (`data=baostock`): free, no account; one history query per stock.

baostock answers result sets of text (`error_code` '0' when ok, `fields`, `next()`,
`get_row_data()`); they are converted to Tushare's columns and units: `sh.600000` -> 600000.SH,
volume in shares -> lots (/100), amount in CNY -> thousand CNY (/1000), `preclose` -> pre_close,
`pctChg` -> pct_chg (%), `turn` -> turnover_rate (%), suspended rows (tradestatus 0) dropped.
The library prints to stdout on every login; that output is swallowed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.client import (
    OTHER,
    RECONNECT,
    REFUSED,
    UNREACHABLE,
    RetryingClient,
    ServiceError,
)
from ashare_autotune.data.market import Market
from ashare_autotune.data.per_stock import load_per_stock, today_in_china
from ashare_autotune.data.source_frames import parse_numbers, require_source_columns
from ashare_autotune.errors import ConfigError

# adjustflag: 1 = hfq (backward), 2 = qfq (forward), 3 = none
ADJUST_FLAG = {"hfq": "1", "qfq": "2", "none": "3"}
STOCK_FIELDS = "date,code,open,high,low,close,preclose,volume,amount,turn,tradestatus,pctChg"
INDEX_FIELDS = "date,code,open,high,low,close,preclose,volume,amount,pctChg"
NUMBERS = ("open", "high", "low", "close", "preclose", "volume", "amount", "pctChg")
NO_LOGIN = "10001001"


def error_kind(code: str) -> str:
    """The kind of a baostock error code: 10002xxx network, 10004xxx parameters."""
    if code.startswith("10002"):
        return UNREACHABLE
    if code == NO_LOGIN:
        return RECONNECT
    if code.startswith("10004"):
        return REFUSED
    return OTHER


def result_frame(result: Any) -> pd.DataFrame:
    """All rows of a baostock result set as text columns; a failed set raises `ServiceError`."""
    if result.error_code != "0":
        raise ServiceError(error_kind(result.error_code), _error_text(result))
    rows = []
    with contextlib.redirect_stdout(io.StringIO()):
        while result.next():  # fetches further pages itself
            rows.append(result.get_row_data())
    if result.error_code != "0":
        raise ServiceError(error_kind(result.error_code), _error_text(result))
    return pd.DataFrame(rows, columns=list(result.fields))


def _error_text(result: Any) -> str:
    return f"{result.error_msg} (error_code {result.error_code})"


def to_ts_code(code: pd.Series) -> pd.Series:
    """baostock codes (sh.600000) as Tushare codes (600000.SH)."""
    text = code.astype(str)
    return text.str[3:] + "." + text.str[:2].str.upper()


def to_baostock_code(ts_code: str) -> str:
    """A Tushare code (600000.SH) as baostock's (sh.600000)."""
    number, _, market = ts_code.partition(".")
    return f"{market.lower()}.{number}"


def _dash(day: str) -> str:
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def convert_bars(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    """baostock k-data rows (text) -> Tushare-style bars; suspended rows dropped.

    Args:
        raw: rows of query_history_k_data_plus with STOCK_FIELDS or INDEX_FIELDS.
        where: the call, named in errors.
    """
    require_source_columns(raw, ("date", "code", *NUMBERS), where)
    if "tradestatus" in raw.columns:
        raw = raw[raw["tradestatus"].astype(str) != "0"]
    nums = parse_numbers(raw, (*NUMBERS, "turn"), where)
    out = pd.DataFrame(
        {
            "ts_code": to_ts_code(raw["code"]).to_numpy(),
            "trade_date": raw["date"].astype(str).str.replace("-", "", regex=False).to_numpy(),
        }
    )
    for col in ("open", "high", "low", "close"):
        out[col] = nums[col].to_numpy()
    out["pre_close"] = nums["preclose"].to_numpy()
    out["change"] = out["close"] - out["pre_close"]
    out["pct_chg"] = nums["pctChg"].to_numpy()
    out["vol"] = nums["volume"].to_numpy() / 100.0  # shares -> lots of 100
    out["amount"] = nums["amount"].to_numpy() / 1000.0  # CNY -> thousand CNY
    if "turn" in nums.columns:
        out["turnover_rate"] = nums["turn"].to_numpy()
    return out


def convert_list(basic: pd.DataFrame, industry: pd.DataFrame) -> pd.DataFrame:
    """query_stock_basic + query_stock_industry rows -> the stock list (stocks only, type 1)."""
    require_source_columns(
        basic, ("code", "code_name", "ipoDate", "outDate", "type"), "baostock query_stock_basic()"
    )
    stocks = basic[basic["type"].astype(str) == "1"]
    names = dict(zip(industry.get("code", []), industry.get("industry", []), strict=True))
    out = pd.DataFrame({"ts_code": to_ts_code(stocks["code"]).to_numpy()})
    out["name"] = stocks["code_name"].to_numpy()
    sector = stocks["code"].map(names)
    out["industry"] = sector.where(sector.astype(str).str.len() > 0).to_numpy()  # "" = none
    out["list_date"] = _yyyymmdd(stocks["ipoDate"])
    out["delist_date"] = _yyyymmdd(stocks["outDate"])
    return out


def _yyyymmdd(dates: pd.Series) -> np.ndarray:
    text = dates.astype(str).str.replace("-", "", regex=False)
    return np.where(text.str.fullmatch(r"\d{8}"), text, None)


def login(import_api: Callable[[], Any]) -> Any:
    """Import baostock and log in anonymously; a refused login raises `ServiceError`."""
    api = import_api()
    with contextlib.redirect_stdout(io.StringIO()):
        result = api.login()
    if result.error_code != "0":
        raise ServiceError(error_kind(result.error_code), f"login: {_error_text(result)}")
    return api


def import_baostock() -> Any:
    """The baostock package, or a ConfigError saying how to install it."""
    try:
        import baostock
    except ImportError:
        raise ConfigError(
            "data=baostock needs the baostock package: pip install baostock"
        ) from None
    return baostock


class BaostockSource:
    """The baostock service as a per-stock source (see `per_stock.PerStockSource`)."""

    name = "baostock"

    def __init__(self, client: RetryingClient) -> None:
        self.client = client

    @classmethod
    def from_config(
        cls, cfg: DataConfig, import_api: Callable[[], Any] = import_baostock, **kw: Any
    ) -> BaostockSource:
        """A source that logs in on its first call (a cache hit needs no network)."""
        client = RetryingClient(
            "baostock",
            lambda: login(import_api),
            max_retries=cfg.max_retries,
            retry_wait=cfg.retry_wait,
            **kw,
        )
        return cls(client)

    def _k_data(self, code: str, fields: str, start: str, end: str, flag: str) -> pd.DataFrame:
        params = {"code": code, "start_date": _dash(start), "end_date": _dash(end)}
        return self.client.call(
            lambda bs: result_frame(
                bs.query_history_k_data_plus(
                    code, fields, params["start_date"], params["end_date"], "d", flag
                )
            ),
            "query_history_k_data_plus",
            **params,
            adjustflag=flag,
        )

    def stock_bars(self, ts_code: str, start: str, end: str, adjust: str) -> pd.DataFrame:
        """One stock's bars; adjustflag from data.adjust."""
        code = to_baostock_code(ts_code)
        raw = self._k_data(code, STOCK_FIELDS, start, end, ADJUST_FLAG[adjust])
        return convert_bars(raw, f"baostock query_history_k_data_plus(code={code})")

    def index_bars(self, ts_code: str, start: str, end: str) -> pd.DataFrame:
        """One index's bars through the same history query, unadjusted."""
        code = to_baostock_code(ts_code)
        raw = self._k_data(code, INDEX_FIELDS, start, end, ADJUST_FLAG["none"])
        return convert_bars(raw, f"baostock query_history_k_data_plus(code={code})")

    def stock_list(self, day: str) -> pd.DataFrame:
        """Every stock baostock knows (listed and delisted) with its industry."""
        basic = self.client.call(
            lambda bs: result_frame(bs.query_stock_basic()), "query_stock_basic"
        )
        industry = self.client.call(
            lambda bs: result_frame(bs.query_stock_industry()), "query_stock_industry"
        )
        return convert_list(basic, industry)

    def close(self) -> None:
        """Log out when a session was opened."""
        if self.client.api is not None:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
                self.client.api.logout()


def load_baostock(cfg: DataConfig, source: BaostockSource | None = None) -> Market:
    """Update the baostock cache for the configured window and load it as a `Market`.

    Args:
        cfg: the `data` group.
        source: the adapter (default: the installed baostock package).
    """
    source = source or BaostockSource.from_config(cfg)
    try:
        return load_per_stock(cfg, source, today_in_china())
    finally:
        source.close()
