"""The `Market` container: daily bars, the index and static stock info of a universe."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd


@dataclass
class Market:
    """Daily bars of a stock universe plus the market index and static stock info.

    Attributes:
        daily: one row per (ts_code, trade_date), sorted by ts_code then trade_date;
            trade_date is datetime64, ts_code categorical, prices/volumes float32.
        index: the market index bars (trade_date, close, pct_chg), sorted by date.
        stock_basic: ts_code, name, industry (industry may be missing), list_date.
        source: a short human description of where the data came from.
        namechange: point-in-time names (Tushare `namechange`: ts_code, name, start_date,
            end_date), or None when the source has none.
    """

    daily: pd.DataFrame
    index: pd.DataFrame
    stock_basic: pd.DataFrame
    source: str
    summary: dict[str, str | int | float] | None = None  # set by `without_bars`
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

    def describe(self) -> dict[str, str | int | float]:
        """Summary used in logs and MLflow: source, date range, stocks and rows, and the stocks
        and median close of the last day (what tells one market from another of the same
        source and span: `tracking.data_match`)."""
        if self.summary is not None:
            return dict(self.summary)
        dates = self.daily["trade_date"]
        last = self.daily.loc[dates == dates.max()]
        return {
            "source": self.source,
            "start": dates.min().strftime("%Y%m%d"),
            "end": dates.max().strftime("%Y%m%d"),
            "n_stocks": self.n_stocks,
            "n_rows": len(self.daily),
            "end_n_stocks": int(last["ts_code"].nunique()),
            "end_close_median": round(float(last["close"].astype("float64").median()), 4),
        }
