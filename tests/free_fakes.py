"""Fakes of the baostock and akshare libraries, answering in their own shapes.

baostock: module functions returning result sets whose values are all text (`error_code` '0'
when ok, `error_msg`, `fields`, `next()`, `get_row_data()`), volume in shares, amount in CNY,
dates YYYY-MM-DD, suspended days as rows with tradestatus '0'. akshare: `stock_zh_a_hist` with
its Chinese columns (volume in lots, amount in CNY, dates as `datetime.date`), the index from
`stock_zh_index_daily_em`, the stock list from `stock_info_a_code_name`. Both serve the Tushare
fake's market (raw prices x adj_factor is the continuous series), record every call (and append
it to `call_log` when given, for runs in several processes) and fail on request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.tushare_fake import make_fake_pro

PRICES = ("open", "high", "low", "close", "pre_close")
BS_NETWORK_ERROR = ("10002007", "网络接收错误。")


@dataclass
class Market:
    """The served truth: continuous bars with adj_factor, index, stock list, suspended days."""

    bars: pd.DataFrame
    index: pd.DataFrame
    basic: pd.DataFrame
    suspended: list[tuple[str, str]]


def make_market(n_stocks: int = 6, n_days: int = 60, seed: int = 3) -> Market:
    """The Tushare fake's market; the fourth stock is suspended on the sixth day."""
    pro = make_fake_pro(n_stocks=n_stocks, n_days=n_days, seed=seed)
    bars = pro.daily_truth.copy()
    bars["vol"] = bars["vol"].round()  # whole lots, as exchanges report them
    codes = sorted(bars["ts_code"].unique())
    days = sorted(bars["trade_date"].unique())
    gone = (bars["ts_code"] == codes[3]) & (bars["trade_date"] == days[5])
    index = pro.index.loc[pro.index["ts_code"] == "000001.SH"].reset_index(drop=True)
    return Market(bars.loc[~gone].reset_index(drop=True), index, pro.basic, [(codes[3], days[5])])


def adjusted(bars: pd.DataFrame, how: str) -> pd.DataFrame:
    """Prices as the services serve them: none = raw, hfq = raw x factor, qfq = hfq / last."""
    out = bars.copy()
    factor = out["adj_factor"]
    for col in PRICES:
        raw = (out[col] / factor).round(2)
        if how == "none":
            out[col] = raw
        elif how == "hfq":
            out[col] = raw * factor
        else:
            out[col] = raw * factor / out.groupby("ts_code")["adj_factor"].transform("last")
    return out


class Recorder:
    """Records calls in memory and, when `call_log` is set, as JSON lines in that file."""

    def __init__(self, call_log: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.call_log = call_log
        self.fail: dict[str, list[Callable[[], Any]]] = {}
        self.offline = False

    def record(self, api: str, **params: Any) -> Any:
        entry = {"api": api, **{k: str(v) for k, v in params.items()}}
        self.calls.append(entry)
        if self.call_log:
            with open(self.call_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({**entry, "pid": os.getpid()}) + "\n")
        hold = os.environ.get("FAKE_HOLD_FILE")
        if hold and len(self.calls) == 3:  # mid-download: wait until the test lets go
            _wait_for(Path(hold))
        plan = self.fail.get(api)
        return plan.pop(0)() if plan else None


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- baostock ----------------------------------------------------------------------------
class ResultData:
    """baostock's result set: text rows, paged through `next()`."""

    def __init__(self, fields: list[str], rows: list[list[str]], code="0", msg="success"):
        self.error_code, self.error_msg = code, msg
        self.fields, self.data, self._pos = fields, rows, 0

    def next(self) -> bool:
        return self._pos < len(self.data)

    def get_row_data(self) -> list[str]:
        self._pos += 1
        return self.data[self._pos - 1]


def _text(values: pd.Series, digits: int = 10) -> list[str]:
    return [f"{v:.{digits}f}" for v in values]


class FakeBaostock(Recorder):
    """The `baostock` module: login, logout, query_history_k_data_plus, query_stock_basic,
    query_stock_industry."""

    def __init__(self, market: Market, call_log: str | None = None) -> None:
        super().__init__(call_log)
        self.market = market
        self.logged_in = False

    def _failed(self, api: str, **params: Any) -> ResultData | None:
        planned = self.record(api, **params)
        if self.offline:
            return ResultData([], [], *BS_NETWORK_ERROR)
        return planned

    def login(self, user_id: str = "anonymous", password: str = "123456") -> ResultData:
        failed = self._failed("login")
        self.logged_in = failed is None
        return failed or ResultData([], [], "0", "success")

    def logout(self, user_id: str = "anonymous") -> ResultData:
        self.logged_in = False
        return ResultData([], [], "0", "success")

    def query_history_k_data_plus(
        self, code, fields, start_date=None, end_date=None, frequency="d", adjustflag="3"
    ) -> ResultData:
        failed = self._failed(
            "query_history_k_data_plus", code=code, start=start_date, end=end_date, flag=adjustflag
        )
        if failed is not None:
            return failed
        if not self.logged_in:
            return ResultData([], [], "10001001", "you don't login.")
        lo, hi = start_date.replace("-", ""), end_date.replace("-", "")
        ts_code = f"{code[3:]}.{code[:2].upper()}"
        if ts_code in ("000001.SH", "000905.SH"):  # the market index, the default benchmark
            idx = self.market.index
            rows = idx.assign(
                open=idx["close"], high=idx["close"] * 1.01, low=idx["close"] * 0.99,
                pre_close=idx["close"].shift(), vol=1e6, amount=1e7,
            )  # fmt: skip
        else:
            how = {"1": "hfq", "2": "qfq", "3": "none"}[adjustflag]
            rows = adjusted(self.market.bars, how)
            rows = rows[rows["ts_code"] == ts_code]
        rows = rows[rows["trade_date"].between(lo, hi)]
        table = self._k_rows(rows, code, adjustflag)
        table += self._suspended_rows(ts_code, code, lo, hi, adjustflag)
        table.sort(key=lambda r: r["date"])
        names = fields.split(",")
        return ResultData(names, [[row[n] for n in names] for row in table])

    def _k_rows(self, rows: pd.DataFrame, code: str, flag: str) -> list[dict[str, str]]:
        dates = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in rows["trade_date"]]
        pre = rows["pre_close"].fillna(rows["open"])
        cols = {
            "date": dates,
            "code": [code] * len(rows),
            "open": _text(rows["open"]),
            "high": _text(rows["high"]),
            "low": _text(rows["low"]),
            "close": _text(rows["close"]),
            "preclose": _text(pre),
            "volume": [str(int(round(v * 100))) for v in rows["vol"]],  # shares
            "amount": _text(rows["amount"] * 1000, 4),  # CNY
            "adjustflag": [flag] * len(rows),
            # turnover in %; baostock leaves a value it lacks empty
            "turn": [
                "" if int(d[-2:]) % 7 == 0 else f"{v:.6f}"
                for d, v in zip(rows["trade_date"], rows["vol"] / 1e5, strict=True)
            ],
            "tradestatus": ["1"] * len(rows),
            "pctChg": _text((rows["close"] / pre - 1) * 100, 6),
        }
        return [
            dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)
        ]

    def _suspended_rows(self, ts_code, code, lo, hi, flag) -> list[dict[str, str]]:
        """A suspended day: a row with tradestatus 0, zero volume, the previous close."""
        price = "10.0000000000"
        return [
            {
                "date": f"{day[:4]}-{day[4:6]}-{day[6:]}",
                "code": code,
                **dict.fromkeys(("open", "high", "low", "close", "preclose"), price),
                "volume": "0",
                "amount": "0.0000",
                "adjustflag": flag,
                "turn": "",
                "tradestatus": "0",
                "pctChg": "0.000000",
            }
            for stock, day in self.market.suspended
            if stock == ts_code and lo <= day <= hi
        ]

    def query_stock_basic(self, code: str = "", code_name: str = "") -> ResultData:
        failed = self._failed("query_stock_basic")
        if failed is not None:
            return failed
        fields = ["code", "code_name", "ipoDate", "outDate", "type", "status"]
        rows = [["sh.000001", "上证综合指数", "1991-07-15", "", "2", "1"]]
        for _, r in self.market.basic.iterrows():
            number, market = r["ts_code"].split(".")
            listed = f"{r['list_date'][:4]}-{r['list_date'][4:6]}-{r['list_date'][6:]}"
            out = r["delist_date"] if isinstance(r["delist_date"], str) else ""
            out = f"{out[:4]}-{out[4:6]}-{out[6:]}" if out else ""
            status = "0" if out else "1"
            rows.append([f"{market.lower()}.{number}", r["name"], listed, out, "1", status])
        return ResultData(fields, rows)

    def query_stock_industry(self, code: str = "", date: str = "") -> ResultData:
        failed = self._failed("query_stock_industry")
        if failed is not None:
            return failed
        fields = ["updateDate", "code", "code_name", "industry", "industryClassification"]
        rows = []
        for _, r in self.market.basic.iterrows():
            number, market = r["ts_code"].split(".")
            industry = r["industry"] if isinstance(r["industry"], str) else ""
            rows.append(
                ["2024-01-02", f"{market.lower()}.{number}", r["name"], industry, "证监会"]
            )
        return ResultData(fields, rows)


# -- akshare -----------------------------------------------------------------------------
class FakeAkshare(Recorder):
    """The `akshare` module: stock_zh_a_hist, stock_zh_index_daily_em, stock_info_a_code_name."""

    def __init__(self, market: Market, call_log: str | None = None) -> None:
        super().__init__(call_log)
        self.market = market

    def _enter(self, api: str, **params: Any) -> None:
        self.record(api, **params)
        if self.offline:
            import requests

            raise requests.exceptions.ConnectionError(
                "HTTPSConnectionPool(host='push2his.eastmoney.com', port=443): Max retries "
                "exceeded (Caused by NameResolutionError)"
            )

    def stock_zh_a_hist(
        self, symbol="000001", period="daily", start_date="19700101", end_date="20500101",
        adjust="", timeout=None,
    ) -> pd.DataFrame:  # fmt: skip
        self._enter("stock_zh_a_hist", symbol=symbol, start=start_date, end=end_date, adj=adjust)
        rows = adjusted(self.market.bars, {"": "none"}.get(adjust, adjust))
        rows = rows[rows["ts_code"].str[:6] == symbol]
        rows = rows[rows["trade_date"].between(start_date, end_date)]
        if rows.empty:
            return pd.DataFrame()
        pre = rows["pre_close"].fillna(rows["open"])
        out = pd.DataFrame(
            {
                "日期": pd.to_datetime(rows["trade_date"], format="%Y%m%d").dt.date,
                "股票代码": symbol,
                "开盘": rows["open"].round(2),
                "收盘": rows["close"].round(2),
                "最高": rows["high"].round(2),
                "最低": rows["low"].round(2),
                "成交量": rows["vol"].round().astype(np.int64),  # lots
                "成交额": rows["amount"] * 1000,  # CNY
                "振幅": ((rows["high"] - rows["low"]) / pre * 100).round(2),
                "涨跌幅": ((rows["close"] / pre - 1) * 100).round(2),
                "涨跌额": (rows["close"] - pre).round(2),
                "换手率": (rows["vol"] / 1e5).round(2),
            }
        )
        return out.reset_index(drop=True)

    def stock_zh_index_daily_em(
        self, symbol="sh000001", start_date="19900101", end_date="20500101"
    ) -> pd.DataFrame:
        self._enter("stock_zh_index_daily_em", symbol=symbol, start=start_date, end=end_date)
        rows = self.market.index[self.market.index["trade_date"].between(start_date, end_date)]
        dates = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in rows["trade_date"]]
        return pd.DataFrame(
            {
                "date": dates,
                "open": rows["close"].to_numpy(),
                "close": rows["close"].to_numpy(),
                "high": rows["close"].to_numpy() * 1.01,
                "low": rows["close"].to_numpy() * 0.99,
                "volume": 1e8,
                "amount": 1e11,
            }
        )

    def stock_info_a_code_name(self) -> pd.DataFrame:
        self._enter("stock_info_a_code_name")
        listed = self.market.basic[self.market.basic["list_status"] == "L"]
        return pd.DataFrame(
            {"code": listed["ts_code"].str[:6].to_numpy(), "name": listed["name"].to_numpy()}
        )


def from_env(kind: str) -> FakeBaostock | FakeAkshare:
    """The fake a stand-in package serves in a subprocess, set up from FAKE_* variables."""
    market = make_market(
        n_stocks=int(os.environ.get("FAKE_FREE_STOCKS", "6")),
        n_days=int(os.environ.get("FAKE_FREE_DAYS", "60")),
    )
    log = os.environ.get("FAKE_CALL_LOG")
    fake = FakeBaostock(market, log) if kind == "baostock" else FakeAkshare(market, log)
    fake.offline = os.environ.get("FAKE_OFFLINE") == "1"
    return fake


def read_call_log(path: Path) -> list[dict[str, Any]]:
    """The calls the fakes of every process appended to `path`."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
