"""The candidate universe at T from data up to T: listing age, ST, liquidity and boards."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ashare_autotune.config.universe import UniverseRules
from ashare_autotune.data.boards import board_of, list_dates
from ashare_autotune.errors import ConfigError, DataError

log = logging.getLogger(__name__)

LIQUIDITY_DAYS = 20


def eligible(
    daily: pd.DataFrame,
    stock_basic: pd.DataFrame,
    rules: UniverseRules,
    namechange: pd.DataFrame | None = None,
    calendar: pd.DatetimeIndex | None = None,
) -> np.ndarray:
    """Whether each stock-day is a candidate under `rules`, using data up to that day only.

    Args:
        daily: bars sorted by (ts_code, trade_date); `amount` is needed for `min_amount`.
        stock_basic: ts_code, name, list_date (YYYYMMDD).
        rules: the universe rules.
        namechange: optional Tushare `namechange` (ts_code, name, start_date, end_date) for
            point-in-time ST; without it the stock_basic name is used (a snapshot).
        calendar: the market trading days (default: the days of `daily`).

    Returns:
        A bool array aligned with `daily`.
    """
    keep = np.ones(len(daily), dtype=bool)
    if rules.min_list_days > 0:
        keep &= listed_days(daily, stock_basic, calendar) >= rules.min_list_days
    if rules.exclude_st:
        keep &= ~st_flags(daily, stock_basic, namechange)
    if rules.min_amount is not None:
        if "amount" not in daily.columns:
            raise ConfigError(
                "universe.min_amount needs column 'amount' (thousand CNY) in the daily bars, "
                "which the data lacks"
            )
        keep &= mean_amount(daily) >= rules.min_amount
    if rules.exclude_boards:
        keep &= ~np.isin(board_of(daily["ts_code"]), list(rules.exclude_boards))
    return keep


def listed_days(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, calendar: pd.DatetimeIndex | None = None
) -> np.ndarray:
    """Market trading days from list_date to T, both counted (the listing day is day 1).

    Market days are the frame's trading days; for a list_date before the frame's first day the
    weekdays in between are added (holidays there are counted as trading days). A stock without
    a known list_date counts its own bars up to T instead, so its first bars in the frame are
    treated as young.

    Args:
        daily: bars sorted by (ts_code, trade_date).
        stock_basic: ts_code and list_date (YYYYMMDD).
        calendar: the market trading days, covering every day of `daily` (default: its days).

    Returns:
        An int64 array aligned with `daily`.
    """
    if calendar is None:
        calendar = pd.DatetimeIndex(np.sort(daily["trade_date"].unique()))
    day = calendar.get_indexer(pd.DatetimeIndex(daily["trade_date"])).astype(np.int64)
    listed = list_dates(daily, stock_basic)
    known = listed.notna().to_numpy()
    start = np.searchsorted(calendar.to_numpy(), listed.to_numpy()[known]).astype(np.int64)
    before = listed.to_numpy()[known] < calendar[0]
    gap = np.busday_count(
        listed.to_numpy()[known][before].astype("datetime64[D]"),
        np.datetime64(calendar[0], "D"),
    )
    start[before] = -gap
    count = daily.groupby("ts_code", observed=True, sort=False).cumcount().to_numpy() + 1
    count[known] = day[known] - start + 1
    return count


def st_flags(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, namechange: pd.DataFrame | None = None
) -> np.ndarray:
    """Whether each stock-day trades under an ST / *ST name.

    With `namechange` the name in force on T (start_date <= T <= end_date, an open end_date
    meaning still in force) decides, point-in-time. Without it the stock_basic name decides for
    every day, which is a snapshot (the shared data's names are of 2023), logged as a warning.

    Args:
        daily: bars with ts_code and trade_date.
        stock_basic: ts_code and name.
        namechange: optional Tushare `namechange` frame.

    Returns:
        A bool array aligned with `daily`.
    """
    if namechange is None:
        if "name" not in stock_basic.columns:
            raise ConfigError(
                "universe.exclude_st needs column 'name' in stock_basic (or a namechange "
                "history), which the data lacks"
            )
        log.warning(
            "universe.exclude_st: no namechange history, so ST is taken from the stock_basic "
            "names, a snapshot (not point-in-time: the shared data's names are of 2023)"
        )
        names = stock_basic.set_index(stock_basic["ts_code"].astype(str))["name"].astype(str)
        st_codes = names.index[_is_st_name(names)]
        return daily["ts_code"].astype(str).isin(st_codes).to_numpy()
    return _st_from_namechange(daily, namechange)


def _is_st_name(names: pd.Series) -> np.ndarray:
    return names.str.upper().str.contains("ST", regex=False).to_numpy()


def _st_from_namechange(daily: pd.DataFrame, namechange: pd.DataFrame) -> np.ndarray:
    """Point-in-time ST: any ST name period of the stock covering T (an as-of merge)."""
    missing = [c for c in ("ts_code", "name", "start_date") if c not in namechange.columns]
    if missing:
        raise DataError(f"namechange: missing required column(s) {missing}")
    spans = namechange.loc[_is_st_name(namechange["name"].astype(str))]
    start = _as_dates(spans["start_date"])
    end_text = spans["end_date"] if "end_date" in spans.columns else None
    end = _as_dates(pd.Series(end_text, index=spans.index)).fillna(pd.Timestamp.max)
    periods = pd.DataFrame(
        {"ts_code": spans["ts_code"].astype(str).to_numpy(), "start": start, "end": end}
    ).dropna(subset=["start"])
    rows = pd.DataFrame(
        {
            "ts_code": daily["ts_code"].astype(str).to_numpy(),
            "trade_date": daily["trade_date"].to_numpy(),
            "row": np.arange(len(daily)),
        }
    )
    # Every (row, ST period) pair of the same stock; ST periods per stock are few.
    pairs = rows.merge(periods, on="ts_code", how="inner")
    inside = (pairs["trade_date"] >= pairs["start"]) & (pairs["trade_date"] <= pairs["end"])
    flags = np.zeros(len(daily), dtype=bool)
    flags[pairs.loc[inside, "row"].to_numpy()] = True
    return flags


def _as_dates(values: pd.Series) -> pd.Series:
    """YYYYMMDD text (Tushare's raw namechange) or datetimes (`Market.namechange`) as dates."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values.astype(str), format="%Y%m%d", errors="coerce")


def mean_amount(daily: pd.DataFrame) -> np.ndarray:
    """Mean `amount` over each stock's last 20 bars up to T (NaN with fewer than 20 bars)."""
    amount = daily["amount"].astype(np.float64)
    rolled = amount.groupby(daily["ts_code"], observed=True, sort=False).rolling(
        LIQUIDITY_DAYS, min_periods=LIQUIDITY_DAYS
    )
    return rolled.mean().reset_index(level=0, drop=True).reindex(daily.index).to_numpy()
