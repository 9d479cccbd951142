"""Forward-looking labels on the market trading calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Relative margin under which a gain still counts as reaching min_return (float32 rounding).
TIE_MARGIN = 1e-6


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
    entry: str = "close",
    open_limit_up: np.ndarray | None = None,
) -> pd.Series:
    """Label 1 when the highest close over trading days T+min_days..T+max_days reaches
    entry * (1 + min_return), else 0; NaN when the horizon is not fully observed.

    The entry price is close[T] (`entry="close"`) or open[T+1] (`entry="next_open"`: the signal
    is known after T's close, the order fills at the next market day's open). A next-open entry
    that cannot fill (see `unfillable_entries`) leaves the row unlabelled (NaN), like a row
    without a full horizon.

    Days are market trading days, so a suspension inside the window leaves fewer closes to look
    at, never a window that reaches further. The horizon is observed when T+max_days is inside
    the data and the stock has a close inside the window; nothing after T+max_days decides it
    (a stock suspended over the whole window is unlabelled whether or not it resumes later).

    Args:
        daily: bars sorted by (ts_code, trade_date) with close.
        calendar: the market trading days (see `trading_calendar`).
        min_days, max_days: the horizon in trading days, 1 <= min_days <= max_days.
        min_return: the required gain, e.g. 0.04.
        entry: "close" or "next_open" (needs open and `open_limit_up`).
        open_limit_up: per row, the bar opened at its limit-up price (`limits.limit_flags`).

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
    observed = horizon_in_data(day, calendar, max_days) & np.isfinite(best)
    price = entry_prices(daily, calendar, entry, open_limit_up)
    # A gain of exactly min_return counts: prices are float32 copies of 0.01 CNY ticks, so
    # 5.20 / 5.00 can come out a few 1e-8 short of 1.04; the margin is far below one tick.
    label = np.where(best >= price * (1 + min_return) * (1 - TIE_MARGIN), 1.0, 0.0)
    label[~observed | np.isnan(price)] = np.nan
    return pd.Series(label.astype(np.float32), index=daily.index, name="label")


def horizon_in_data(day: np.ndarray, calendar: pd.DatetimeIndex, max_days: int) -> np.ndarray:
    """Whether T+max_days is inside the calendar: the data's end, the same day for every
    stock, so it selects days, never stocks by what they did after T.

    Args:
        day: the trading-day number of each row (`day_numbers`).
        calendar: the market trading days.
        max_days: the horizon in trading days.
    """
    return day + max_days <= len(calendar) - 1


def forward_returns(
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    days: int,
    entry: str = "close",
    open_limit_up: np.ndarray | None = None,
) -> np.ndarray:
    """Return from the entry price to the stock's last close within T+1..T+days trading days.

    That is the return of buying at the close of T (or the open of T+1) and selling at the end
    of the label horizon (earlier when the stock is suspended on the last days); NaN when it
    has no later close there or the entry cannot fill.

    Args:
        daily: bars sorted by (ts_code, trade_date) with close (and open for next_open).
        calendar: the market trading days.
        days: the horizon in trading days (the label's max_days).
        entry: "close" or "next_open" (see `make_labels`).
        open_limit_up: per row, the bar opened at its limit-up price (next_open only).
    """
    codes = daily["ts_code"].cat.codes.to_numpy()
    close = daily["close"].to_numpy(np.float64)
    day = day_numbers(daily["trade_date"], calendar)
    n = len(close)
    last = np.full(n, np.nan)
    for k in range(1, days + 1):  # a later row overrides: the last close inside the window
        np.copyto(last[: n - k], close[k:], where=_ahead_within(codes, day, k, 1, days))
    return last / entry_prices(daily, calendar, entry, open_limit_up) - 1


def entry_prices(
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    entry: str,
    open_limit_up: np.ndarray | None = None,
) -> np.ndarray:
    """The price each row's signal buys at: close[T], or open[T+1] (NaN when unfillable).

    Args:
        daily: bars sorted by (ts_code, trade_date).
        calendar: the market trading days.
        entry: "close" or "next_open".
        open_limit_up: per row, the bar opened at its limit-up price (next_open only).

    Returns:
        float64 prices aligned with `daily`.
    """
    if entry == "close":
        return daily["close"].to_numpy(np.float64)
    if entry != "next_open":
        raise ValueError(f"entry must be 'close' or 'next_open', got {entry!r}")
    price = np.full(len(daily), np.nan)
    fills = _next_open_fills(daily, calendar, open_limit_up)
    price[:-1][fills[:-1]] = daily["open"].to_numpy(np.float64)[1:][fills[:-1]]
    return price


def unfillable_entries(
    daily: pd.DataFrame, calendar: pd.DatetimeIndex, open_limit_up: np.ndarray | None
) -> np.ndarray:
    """Rows whose next-open entry cannot fill although the calendar has a next trading day:
    the stock has no bar on that day (suspended or delisted), or its bar opens at the limit-up
    price (the queue of buyers at the limit fills first). Rows on the calendar's last day are
    not counted here: their entry is unknown, not unfillable.

    Args:
        daily: bars sorted by (ts_code, trade_date).
        calendar: the market trading days.
        open_limit_up: per row, the bar opened at its limit-up price (`limits.limit_flags`).

    Returns:
        A bool array aligned with `daily`, True where the entry cannot fill.
    """
    day = day_numbers(daily["trade_date"], calendar)
    return ~_next_open_fills(daily, calendar, open_limit_up) & (day < len(calendar) - 1)


def _next_open_fills(
    daily: pd.DataFrame, calendar: pd.DatetimeIndex, open_limit_up: np.ndarray | None
) -> np.ndarray:
    """Rows whose next row is the same stock's bar on the next market day, not at limit-up."""
    if open_limit_up is None:
        raise ValueError("a next-open entry needs open_limit_up (limits.limit_flags)")
    codes = daily["ts_code"].cat.codes.to_numpy()
    day = day_numbers(daily["trade_date"], calendar)
    blocked = np.asarray(open_limit_up, dtype=bool)
    fills = np.zeros(len(daily), dtype=bool)
    fills[:-1] = _ahead_within(codes, day, 1, 1, 1) & ~blocked[1:]
    return fills


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
