"""A-share daily price limits by board and date, and the stock-days that hit them.

Limits (ratio of the limit price to pre_close; NaN = no limit that day):
- main board +/-10%, ST +/-5% (+/-10% from 2026-07-06, the exchanges' 2026 trading rules); no
  limit on the listing day (from 2023-04-10, the first 5 days);
- ChiNext (300/301.SZ) +/-10% (ST 5%) before 2020-08-24 and +/-20% (ST too) from then; no
  limit on the listing day, or on the first 5 days for listings from 2020-08-24;
- STAR (688/689.SH) +/-20%, no limit on the first 5 days;
- Beijing (.BJ) +/-30%, no limit on the listing day.
Which days a stock is ST (`st_days`): point-in-time from Tushare `namechange` when the data has
it; otherwise from the stock_basic name, a snapshot (the shared data's names are of 2023): a
stock ST then is given the ST limit on every day, also in years it was not ST (its +5% opens
there count as limit-up and its +10% opens do not), and one ST only earlier keeps +/-10%.
Not modelled: other no-limit days (resumption after a suspended listing, the first day of a
delisting period). A stock's IPO days are its first rows when its first row is on its
list_date; otherwise (no list_date, a transfer such as NEEQ -> BJ, a frame starting after the
listing) no row is treated as an IPO day.

Hitting a limit, on prices adjusted as the shared data is (both prices of a day carry the same
factor, so price / pre_close is the raw ratio): the price is the day's high (up) or low
(down), which a limit price always is, and lies within half a tick of pre_close * ratio:
-0.00495 <= price - pre_close * ratio <= +0.00505 CNY. Why: the raw limit price is
round_half_up(raw_pre_close * ratio, 2), so it differs from raw_pre_close * ratio by -0.0049
(ratios with 4 decimals, 1.05 / 0.95) to +0.005 (rounding half up); the next tick inward is at
least 0.005 away. A fixed half-tick in CNY stays exact for low-priced stocks, where a relative
tolerance does not (one tick of a 2 CNY stock is 0.5%). The 5e-5 margins absorb float32 and
the 4-decimal adjusted prices. Forward-adjusted prices are at most the raw ones, so on heavily
adjusted old bars the window is wider than half a raw tick and can take in a close one tick
below the limit that is also the day's high (rare; the window is exact on unadjusted bars).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ashare_autotune.data.boards import (
    CHINEXT_REFORM,
    MAIN_REGISTRATION,
    MAIN_ST_REFORM,
    board_of,
    list_dates,
)
from ashare_autotune.modelling.universe import st_flags

log = logging.getLogger(__name__)

# CNY below / above pre_close * ratio still at the limit (see the module docstring).
BELOW, ABOVE = 0.00495, 0.00505
FLAG_COLUMNS = (
    "close_limit_up",
    "close_limit_down",
    "open_limit_up",
    "open_limit_down",
    "one_price_up",
    "one_price_down",
)


def limit_ratios(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, is_st: np.ndarray | pd.Series | None = None
) -> pd.DataFrame:
    """The limit-up and limit-down price of each stock-day as a ratio to its pre_close.

    Args:
        daily: bars sorted by (ts_code, trade_date), trade_date datetime64.
        stock_basic: ts_code and list_date (YYYYMMDD) to place IPO days.
        is_st: optional bool per row, True when the stock trades under an ST name that day.

    Returns:
        float32 columns limit_up (e.g. 1.1) and limit_down (e.g. 0.9), aligned with `daily`;
        NaN where the day has no limit.
    """
    pct = _limit_pct(daily, stock_basic, is_st)
    return pd.DataFrame(
        {"limit_up": (1 + pct).astype(np.float32), "limit_down": (1 - pct).astype(np.float32)},
        index=daily.index,
    )


def _limit_pct(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, is_st: np.ndarray | pd.Series | None
) -> np.ndarray:
    """The limit as a float64 fraction (0.1 = +/-10%), NaN on days without a limit."""
    board = board_of(daily["ts_code"])
    date = daily["trade_date"].to_numpy()
    st = np.zeros(len(daily), dtype=bool)
    if is_st is not None:  # a missing flag (NaN) means not known to be ST
        st = pd.Series(np.asarray(is_st)).fillna(False).to_numpy(dtype=bool)
        if len(st) != len(daily):
            raise ValueError(f"is_st has {len(st)} values for {len(daily)} rows")
    chinext, star, bj = board == "ChiNext", board == "STAR", board == "BJ"
    reformed = date >= CHINEXT_REFORM.to_datetime64()
    pct = np.where(st & (date < MAIN_ST_REFORM.to_datetime64()), 0.05, 0.10)
    pct = np.where(chinext & reformed, 0.20, pct)
    pct = np.where(star, 0.20, pct)
    pct = np.where(bj, 0.30, pct)
    return np.where(_free_ipo_day(daily, board, list_dates(daily, stock_basic)), np.nan, pct)


def st_days(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, namechange: pd.DataFrame | None = None
) -> np.ndarray | None:
    """Which stock-days trade under an ST name, for their price limits.

    Point-in-time from `namechange` when given; otherwise the stock_basic name decides for every
    day (a snapshot; the module docstring says what that gets wrong), logged as a warning.

    Args:
        daily: bars with ts_code and trade_date.
        stock_basic: ts_code (and name).
        namechange: optional Tushare `namechange` (ts_code, name, start_date, end_date).

    Returns:
        A bool array aligned with `daily`, or None when neither names nor history are known.
    """
    if namechange is not None:
        return st_flags(daily, stock_basic, namechange)
    if "name" not in stock_basic.columns:
        return None
    names = stock_basic.set_index(stock_basic["ts_code"].astype(str))["name"].astype(str)
    st_codes = names.index[names.str.upper().str.contains("ST", regex=False).to_numpy()]
    is_st = daily["ts_code"].isin(st_codes).to_numpy(dtype=bool)
    if is_st.any():
        log.warning(
            "ST price limits (5%%) from the stock_basic names, a snapshot (no namechange "
            "history): %d of %d rows, also on days those stocks were not ST",
            int(is_st.sum()),
            len(is_st),
        )
    return is_st


def limit_flags(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, is_st: np.ndarray | pd.Series | None = None
) -> pd.DataFrame:
    """Which stock-days open, close or trade all day at a price limit.

    Args:
        daily: bars sorted by (ts_code, trade_date) with open, high, low, close and pre_close
            (without pre_close the stock's previous close is used).
        stock_basic: ts_code and list_date (YYYYMMDD).
        is_st: optional bool per row (see `limit_ratios`).

    Returns:
        bool columns close_limit_up, close_limit_down, open_limit_up, open_limit_down,
        one_price_up, one_price_down (high == low at the limit), aligned with `daily`.
    """
    # float64 limits: a float32 ratio is off by up to 1e-4 CNY on a 2,000 CNY price, as much
    # as the margins of the window.
    pct = _limit_pct(daily, stock_basic, is_st)
    pre = _pre_close(daily)
    up_price, down_price = pre * (1 + pct), pre * (1 - pct)
    o, h, lo, c = (daily[col].to_numpy(np.float64) for col in ("open", "high", "low", "close"))
    one_price = h == lo
    flags = {
        "close_limit_up": _near(c, up_price) & (c == h),
        "close_limit_down": _near(c, down_price) & (c == lo),
        "open_limit_up": _near(o, up_price) & (o == h),
        "open_limit_down": _near(o, down_price) & (o == lo),
        "one_price_up": _near(h, up_price) & one_price,
        "one_price_down": _near(lo, down_price) & one_price,
    }
    return pd.DataFrame(flags, index=daily.index)


def ipo_day_numbers(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, listed: pd.Series | None = None
) -> np.ndarray:
    """Each row's trading day since listing (1 = the listing day), 0 when not known.

    Known when the stock's first row in `daily` is on its list_date: its rows are then
    numbered in order (a stock trades on its first days, so its own rows are its days).

    Args:
        daily: bars sorted by (ts_code, trade_date).
        stock_basic: ts_code and list_date (YYYYMMDD).
        listed: each row's list_date when already looked up (`data.boards.list_dates`).

    Returns:
        An int64 array aligned with `daily`.
    """
    listed = (list_dates(daily, stock_basic) if listed is None else listed).to_numpy()
    # Rows are sorted by stock: a stock's rows are one run, numbered from the run's start.
    ts_code = daily["ts_code"]
    is_cat = isinstance(ts_code.dtype, pd.CategoricalDtype)
    codes = ts_code.cat.codes.to_numpy() if is_cat else pd.factorize(ts_code)[0]
    new_stock = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, bool)
    start = np.flatnonzero(new_stock)[np.cumsum(new_stock) - 1]
    first_day = daily["trade_date"].to_numpy()[start]
    number = np.arange(len(codes)) - start + 1
    return np.where(first_day == listed, number, 0)


def _free_ipo_day(daily: pd.DataFrame, board: np.ndarray, listed: pd.Series) -> np.ndarray:
    """Rows on an IPO day without a price limit (see the module docstring)."""
    number = ipo_day_numbers(daily, pd.DataFrame(), listed)
    listed = listed.to_numpy()
    five_days = (board == "STAR") | (
        (board == "ChiNext") & (listed >= CHINEXT_REFORM.to_datetime64())
    )
    five_days |= (board == "main") & (listed >= MAIN_REGISTRATION.to_datetime64())
    return (number >= 1) & (number <= np.where(five_days, 5, 1))


def _pre_close(daily: pd.DataFrame) -> np.ndarray:
    """pre_close, or the stock's previous close when the column is absent."""
    if "pre_close" in daily.columns:
        return daily["pre_close"].to_numpy(np.float64)
    prev = daily.groupby("ts_code", observed=True, sort=False)["close"].shift()
    return prev.to_numpy(np.float64)


def _near(price: np.ndarray, limit_price: np.ndarray) -> np.ndarray:
    """Within the half-tick window of the limit price (False where there is no limit)."""
    with np.errstate(invalid="ignore"):
        gap = price - limit_price
        return (gap >= -BELOW) & (gap <= ABOVE)
