"""Forward-looking labels on the market trading calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd


def trading_calendar(daily: pd.DataFrame, index: pd.DataFrame | None = None) -> pd.DatetimeIndex:
    """The sorted trading days: the index's days and every day a stock traded."""
    days = pd.Index(daily["trade_date"].unique())
    if index is not None and len(index):
        days = days.union(pd.Index(index["trade_date"]))
    return pd.DatetimeIndex(days.sort_values())


def day_numbers(dates: pd.Series, calendar: pd.DatetimeIndex) -> np.ndarray:
    """Position of each date in the trading calendar."""
    return calendar.get_indexer(pd.DatetimeIndex(dates)).astype(np.int64)


def make_labels(
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    min_days: int,
    max_days: int,
    min_return: float,
) -> pd.Series:
    """Label 1 when the highest close over trading days T+min_days..T+max_days reaches
    close[T] * (1 + min_return), else 0; NaN when the horizon is not fully observed.

    Days are market trading days, so a suspension inside the window leaves fewer closes to look
    at, never a window that reaches further. The horizon is observed when T+max_days is inside
    the data and the stock still has a row on or after T+max_days (not delisted or cut off).

    Args:
        daily: bars sorted by (ts_code, trade_date) with close.
        calendar: the market trading days (see `trading_calendar`).
        min_days, max_days: the horizon in trading days, 1 <= min_days <= max_days.
        min_return: the required gain, e.g. 0.04.

    Returns:
        float32 Series aligned with `daily` holding 1, 0 or NaN.
    """
    codes = daily["ts_code"].cat.codes.to_numpy()
    close = daily["close"].to_numpy(np.float64)
    day = day_numbers(daily["trade_date"], calendar)
    n = len(close)
    best = np.full(n, -np.inf)
    # The next max_days rows of a stock hold every close it has inside the window.
    for k in range(1, max_days + 1):
        inside = _ahead_within(codes, day, k, min_days, max_days)
        head = best[: n - k]  # a view: rows that have a row k ahead
        np.fmax(head, close[k:], out=head, where=inside)
    last_day = pd.Series(day).groupby(codes).transform("max").to_numpy()
    observed = (day + max_days <= len(calendar) - 1) & (last_day >= day + max_days)
    observed &= np.isfinite(best)
    label = np.where(best >= close * (1 + min_return), 1.0, 0.0)
    label[~observed] = np.nan
    return pd.Series(label.astype(np.float32), index=daily.index, name="label")


def forward_returns(daily: pd.DataFrame, calendar: pd.DatetimeIndex, days: int) -> np.ndarray:
    """Return from close[T] to the stock's last close within T+1..T+days trading days.

    That is the return of buying at the close of T and selling at the end of the label horizon
    (earlier when the stock is suspended on the last days); NaN when it has no later close there.

    Args:
        daily: bars sorted by (ts_code, trade_date) with close.
        calendar: the market trading days.
        days: the horizon in trading days (the label's max_days).
    """
    codes = daily["ts_code"].cat.codes.to_numpy()
    close = daily["close"].to_numpy(np.float64)
    day = day_numbers(daily["trade_date"], calendar)
    n = len(close)
    last = np.full(n, np.nan)
    for k in range(1, days + 1):  # a later row overrides: the last close inside the window
        np.copyto(last[: n - k], close[k:], where=_ahead_within(codes, day, k, 1, days))
    return last / close - 1


def _ahead_within(
    codes: np.ndarray, day: np.ndarray, k: int, min_days: int, max_days: int
) -> np.ndarray:
    """Whether the row k rows after row i is the same stock's, min_days..max_days trading days
    later, for each row i that has a row k after it (rows i < n - k).

    Rows are sorted by (stock, day), so the row k ahead is a shift, compared on views: no
    index arrays, a bool per row (whole market: 0.16-0.37 GB less at the peak than gathers).

    Args:
        codes: the stock of each row.
        day: the trading-day number of each row.
        k: how many rows ahead.
        min_days, max_days: the gap allowed, in trading days.
    """
    gap = day[k:] - day[: len(day) - k]
    return (codes[k:] == codes[: len(codes) - k]) & (gap >= min_days) & (gap <= max_days)
