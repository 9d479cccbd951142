"""A fake Tushare pro API: the endpoints the project calls, answering Tushare-shaped frames.

The truth is a seeded synthetic market (continuous, i.e. backward-adjusted, prices). The fake
serves raw prices the way Tushare does: after a stock's split its raw prices drop and its
adj_factor rises, so raw * adj_factor is the continuous series. Rows per call are capped like
the real server (`cap`), `limit`/`offset` page through them, and `fail` injects errors.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.data.synthetic import make_synthetic_market

PRICES = ("open", "high", "low", "close")


@dataclass
class Call:
    """One request the fake received."""

    api: str
    params: dict[str, Any]


@dataclass
class FakePro:
    """Tushare pro API look-alike over a synthetic market.

    Attributes:
        daily_truth: continuous bars (the hfq series, with adj_factor) by ts_code, trade_date.
        calls: every request, in order.
        fail: api -> callables run before answering; each may raise (consumed in order).
        cap: the server's maximum rows per call.
    """

    daily_truth: pd.DataFrame
    index: pd.DataFrame
    basic: pd.DataFrame
    calendar: pd.DataFrame
    cap: int = 6000
    names: pd.DataFrame = field(default_factory=pd.DataFrame)
    calls: list[Call] = field(default_factory=list)
    fail: dict[str, list[Callable[[], None]]] = field(default_factory=dict)

    # -- endpoints -------------------------------------------------------------------------
    def trade_cal(self, exchange: str = "", start_date: str = "", end_date: str = "", **kw: Any):
        self._enter("trade_cal", exchange=exchange, start_date=start_date, end_date=end_date, **kw)
        cal = self.calendar[self.calendar["cal_date"].between(start_date, end_date)]
        return self._page(cal.iloc[::-1], kw)  # Tushare lists the newest first

    def daily(self, trade_date: str = "", **kw: Any) -> pd.DataFrame:
        self._enter("daily", trade_date=trade_date, **kw)
        day = self.daily_truth[self.daily_truth["trade_date"] == trade_date]
        raw = day.drop(columns=["adj_factor"]).copy()
        for col in (*PRICES, "pre_close"):
            raw[col] = (day[col] / day["adj_factor"]).round(2)
        raw["change"] = (raw["close"] - raw["pre_close"]).round(2)
        raw["pct_chg"] = (raw["change"] / raw["pre_close"] * 100).round(4)
        return self._page(raw, kw)

    def adj_factor(self, trade_date: str = "", **kw: Any) -> pd.DataFrame:
        self._enter("adj_factor", trade_date=trade_date, **kw)
        day = self.daily_truth[self.daily_truth["trade_date"] == trade_date]
        return self._page(day.loc[:, ["ts_code", "trade_date", "adj_factor"]], kw)

    def index_daily(
        self, ts_code: str = "", start_date: str = "", end_date: str = "", **kw: Any
    ) -> pd.DataFrame:
        self._enter("index_daily", ts_code=ts_code, start_date=start_date, end_date=end_date, **kw)
        rows = self.index[
            (self.index["ts_code"] == ts_code)
            & self.index["trade_date"].between(start_date, end_date)
        ]
        return self._page(rows.iloc[::-1], kw)

    def stock_basic(self, list_status: str = "L", fields: str = "", **kw: Any) -> pd.DataFrame:
        self._enter("stock_basic", list_status=list_status, fields=fields, **kw)
        rows = self.basic[self.basic["list_status"] == list_status]
        return self._page(rows.loc[:, fields.split(",")] if fields else rows, kw)

    def daily_basic(self, trade_date: str = "", fields: str = "", **kw: Any) -> pd.DataFrame:
        """Turnover and valuation per stock and day: Tushare's units (%, times, 10k CNY)."""
        self._enter("daily_basic", trade_date=trade_date, fields=fields, **kw)
        day = self.daily_truth[self.daily_truth["trade_date"] == trade_date]
        raw_close = (day["close"] / day["adj_factor"]).round(2)
        shares = 1e5 + day["ts_code"].str[:6].astype(int) % 997 * 1e3  # 10k shares
        rows = pd.DataFrame(
            {
                "ts_code": day["ts_code"],
                "trade_date": day["trade_date"],
                "close": raw_close,
                "turnover_rate": (day["vol"] / shares).round(4),
                "turnover_rate_f": (day["vol"] / shares * 1.6).round(4),
                "volume_ratio": 1.0,
                "pe": 20.0,
                "pe_ttm": np.where(day["ts_code"].str.startswith("3"), np.nan, 18.5),  # a loss
                "pb": 2.1,
                "ps": 3.0,
                "ps_ttm": 3.1,
                "dv_ratio": 0.5,
                "dv_ttm": 0.6,
                "total_share": shares,
                "float_share": shares * 0.8,
                "free_share": shares * 0.5,
                "total_mv": (raw_close * shares).round(2),
                "circ_mv": (raw_close * shares * 0.8).round(2),
            }
        )
        return self._page(rows.loc[:, fields.split(",")] if fields else rows, kw)

    def namechange(self, ts_code: str = "", fields: str = "", **kw: Any) -> pd.DataFrame:
        """Name history, newest first: the ST stock took its ST name mid-sample."""
        self._enter("namechange", ts_code=ts_code, fields=fields, **kw)
        rows = self.names if not ts_code else self.names[self.names["ts_code"] == ts_code]
        return self._page(rows.loc[:, fields.split(",")] if fields else rows, kw)

    # -- plumbing --------------------------------------------------------------------------
    def _enter(self, api: str, **params: Any) -> None:
        self.calls.append(Call(api, params))
        _share_call(api, params, len(self.calls))
        plan = self.fail.get(api)
        if plan:
            plan.pop(0)()

    def _page(self, frame: pd.DataFrame, kw: dict[str, Any]) -> pd.DataFrame:
        offset = int(kw.get("offset") or 0)
        limit = min(int(kw.get("limit") or self.cap), self.cap)
        return frame.iloc[offset : offset + limit].reset_index(drop=True)

    def api_calls(self, api: str) -> list[Call]:
        """The requests made to one endpoint."""
        return [c for c in self.calls if c.api == api]


def _share_call(api: str, params: dict[str, Any], n_calls: int) -> None:
    """For runs in several processes: append the call to FAKE_CALL_LOG (JSON lines) and, on
    the third call, wait for FAKE_HOLD_FILE to exist (a download stopped midway on request)."""
    log = os.environ.get("FAKE_CALL_LOG")
    if log:
        entry = {"api": api, **{k: str(v) for k, v in params.items()}, "pid": os.getpid()}
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    hold = os.environ.get("FAKE_HOLD_FILE")
    if hold and n_calls == 3:
        deadline = time.monotonic() + 120
        while not os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)


def raise_(exc: BaseException) -> Callable[[], None]:
    """A failure plan entry that raises `exc`."""

    def _raise() -> None:
        raise exc

    return _raise


def make_fake_pro(n_stocks: int = 8, n_days: int = 40, seed: int = 3, cap: int = 6000) -> FakePro:
    """A fake over a seeded synthetic market; stock 0 splits 2-for-1 in the middle, the last
    stock is an ST name, one stock is delisted (list_status D) and one lists on the span's
    quarter day."""
    market = make_synthetic_market(n_stocks=n_stocks, n_days=n_days, seed=seed)
    daily = market.daily.copy()
    daily["ts_code"] = daily["ts_code"].astype(str)
    daily["trade_date"] = daily["trade_date"].dt.strftime("%Y%m%d")
    dates = sorted(daily["trade_date"].unique())
    codes = sorted(daily["ts_code"].unique())
    split_day = dates[len(dates) // 2]
    daily["adj_factor"] = np.where(
        (daily["ts_code"] == codes[0]) & (daily["trade_date"] >= split_day), 2.0, 1.0
    )
    daily["adj_factor"] = np.where(daily["ts_code"] == codes[1], 3.5, daily["adj_factor"])
    for col in (*PRICES, "pre_close", "change", "pct_chg", "vol", "amount"):
        daily[col] = daily[col].astype(np.float64)
    # Continuous prices on the raw tick (0.01 after dividing by the factor), as Tushare's are.
    for col in (*PRICES, "pre_close"):
        daily[col] = (daily[col] / daily["adj_factor"]).round(2) * daily["adj_factor"]
    # Tushare serves every index; here the synthetic one stands for the market index and the
    # default backtest benchmark (CSI 500).
    days = market.index["trade_date"].dt.strftime("%Y%m%d")
    index = pd.concat(
        [
            market.index.assign(ts_code=code, trade_date=days)
            for code in ("000001.SH", "000905.SH")
        ],
        ignore_index=True,
    )
    basic = market.stock_basic.copy()
    basic["symbol"] = basic["ts_code"].str[:6]
    basic["list_status"] = "L"
    basic["delist_date"] = None
    basic.loc[basic["ts_code"] == codes[-1], "name"] = "*ST合成"
    basic.loc[basic["ts_code"] == codes[2], ["list_status", "delist_date"]] = ["D", dates[-1]]
    # one stock lists inside the span (the synthetic market's listings start later)
    listing = dates[len(dates) // 4]
    daily = daily[(daily["ts_code"] != codes[3]) | (daily["trade_date"] >= listing)]
    daily = daily.reset_index(drop=True)
    basic.loc[basic["ts_code"] == codes[3], "list_date"] = listing
    all_days = pd.date_range(dates[0], dates[-1], freq="D").strftime("%Y%m%d")
    calendar = pd.DataFrame(
        {"exchange": "SSE", "cal_date": all_days, "is_open": all_days.isin(dates).astype(int)}
    )
    names = _name_history(basic, dates[len(dates) // 3])
    return FakePro(daily, index, basic, calendar, cap=cap, names=names)


def _name_history(basic: pd.DataFrame, st_day: str) -> pd.DataFrame:
    """Each stock's current name since listing; the ST stock was '合成股份' until `st_day`."""
    rows = []
    for _, r in basic.iterrows():
        if str(r["name"]).upper().find("ST") >= 0:
            before = (pd.Timestamp(st_day) - pd.Timedelta(days=1)).strftime("%Y%m%d")
            rows.append([r["ts_code"], "合成股份", r["list_date"], before, r["list_date"], "新增"])
            rows.append([r["ts_code"], r["name"], st_day, None, st_day, "*ST"])
        else:
            rows.append([r["ts_code"], r["name"], r["list_date"], None, r["list_date"], "新增"])
    cols = ["ts_code", "name", "start_date", "end_date", "ann_date", "change_reason"]
    return pd.DataFrame(rows[::-1], columns=cols)
