"""Sanity of daily bars beyond their schema: OHLC order, and a move past the board's price
limit that is neither a listing's first days nor a resumption (a likely unadjusted split; when
the bars carry adjustment factors that change on that day, the stock is forward-adjusted with
them instead, logged: `repair_with_factors`).

A day's open and close are compared with the stock's previous close (its previous bar) and
with the day's pre_close, when the data has one. Allowed: the board's widest limit
(`BOARD_LIMITS`, from `modelling.limits`; ST's 5% is not known point-in-time, so 10% is
allowed) plus one tick of 0.01 CNY (the raw limit price is rounded to the tick: 0.70 on a 0.58
pre_close is +20.7% on a +/-20% board; forward-adjusted prices are at most the raw ones, so a
tick relative to the adjusted price covers it) plus `MOVE_TOLERANCE`. Not checked: a stock's
first bar (nothing to compare with; it may follow a suspension older than the data), the first
`NEW_LISTING_DAYS` bars of a stock whose first bar is its list_date or comes after the data's
first day, and the first bar after `RESUMPTION_GAP` or more trading days without one.
Measured on the shared whole market (forward-adjusted, 2015-2023): docs/data-sources.md.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from ashare_autotune.data.boards import board_of, list_dates
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import check_ohlc
from ashare_autotune.errors import DataError

log = logging.getLogger(__name__)

# Beyond the limit and a tick. The shared forward-adjusted data needs at most 0.06 points but
# on 2022-05-30, where the vendor's adjustment broke for a few stocks (+0.9 and +4.2 points);
# 5 points still catch 10:2 bonus shares (-16.7%) on a 10% board and 10:10 (-50%) anywhere.
MOVE_TOLERANCE = 0.05
TICK = 0.01  # CNY
# Each board's widest daily limit (`modelling.limits`), as a fraction of the previous close.
# ChiNext's was 10% before 2020-08-24; 20% is allowed at all dates, one limit per board (a
# 10:3 bonus issue, -23%, on ChiNext before 2020-08-24 passes).
BOARD_LIMITS = {"main": 0.10, "ChiNext": 0.20, "STAR": 0.20, "BJ": 0.30}
# No limit on the first 5 days of STAR, ChiNext (from 2020-08-24) and main-board (from
# 2023-04-10) listings; other boards' first bars are also left out: the shared data's first
# days of two new BJ listings gap 51% and 307% overnight on 2022-05-30 (the vendor's adjustment).
NEW_LISTING_DAYS = 5
# Trading days without a bar after which a stock may gap: resumption after a suspension of its
# listing has no limit (seen after 82 to 589 days in the shared data).
RESUMPTION_GAP = 20
FACTOR = "adj_factor"  # a source's adjustment factors, when its bars keep them
SPLIT_HINT = "an unadjusted split or bonus issue? use forward-adjusted (qfq) prices"
BAR_HINT = "a wrong price or pre_close?"


def check_market(market: Market) -> Market:
    """Raise `DataError` on the first inconsistent bar or unexplained move beyond the limit;
    with adjustment factors (an `adj_factor` column), first repair the moves they explain
    (`repair_with_factors`).

    Args:
        market: the loaded market (daily bars sorted by ts_code, trade_date; index; stock_basic).

    Returns:
        the market, repaired (and without `adj_factor`) when its bars had factors.
    """
    daily = market.daily
    if daily.empty:
        return market
    check_ohlc(daily, market.source)
    dates = daily["trade_date"].to_numpy("datetime64[ns]")
    index_days = market.index["trade_date"].to_numpy("datetime64[ns]")
    calendar = np.union1d(index_days, pd.unique(dates))
    if FACTOR in daily.columns:
        daily = repair_with_factors(daily, market.stock_basic, calendar, market.source)
        market = replace(market, daily=daily.drop(columns=[FACTOR]))
    check_moves(market.daily, market.stock_basic, calendar, market.source)
    return market


def repair_with_factors(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, calendar: np.ndarray, where: str
) -> pd.DataFrame:
    """Forward-adjust (qfq: price x adj_factor / the stock's last adj_factor, volumes raw, as
    `data.adjust=qfq` does) the prices of each stock with a move beyond its limit on a day its
    adj_factor changes: a split or bonus issue left unadjusted, which its factors explain.
    Logged with an example; other stocks and moves are left to `check_moves`. A stock with a
    missing factor is not repaired.

    Args:
        daily: bars sorted by (ts_code, trade_date) with `adj_factor`.
        stock_basic, calendar, where: as `check_moves`'s.

    Returns:
        `daily` with the explained stocks' prices adjusted (the same frame when none is).
    """
    beyond = _beyond_limit(daily, stock_basic, calendar)[0]
    codes = _codes(daily["ts_code"])
    factor = daily[FACTOR].to_numpy(np.float64)
    previous = np.r_[np.nan, factor[:-1]]
    changed = np.r_[False, codes[1:] == codes[:-1]] & ~np.isclose(factor, previous, rtol=1e-6)
    complete = ~pd.Series(np.isnan(factor)).groupby(codes).transform("any").to_numpy()
    explained = np.logical_or.reduce(beyond) & changed & complete
    if not explained.any():
        return daily
    repaired = np.isin(codes, codes[explained])
    last = pd.Series(factor).groupby(codes).transform("last").to_numpy()
    scale = np.where(repaired, factor / last, 1.0)
    out = daily.copy()
    for column in ("open", "high", "low", "close", "pre_close"):
        if column in out.columns:
            out[column] = (out[column].to_numpy(np.float64) * scale).astype(np.float32)
    if "change" in out.columns and "pre_close" in out.columns:
        out["change"] = out["close"] - out["pre_close"]
    row = daily.iloc[int(np.flatnonzero(explained)[0])]
    log.warning(
        "%s: %d move(s) beyond the board's price limit on a day the stock's adj_factor changes "
        "(a split or bonus issue), e.g. ts_code=%s, trade_date=%s: forward-adjusted the prices "
        "of %d stock(s) with their adj_factor",
        where,
        int(explained.sum()),
        row["ts_code"],
        f"{row['trade_date']:%Y%m%d}",
        len(np.unique(codes[explained])),
    )
    return out


def check_moves(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, calendar: np.ndarray, where: str
) -> None:
    """Raise `DataError` naming the first bar whose open or close moved beyond its board's
    limit (see the module docstring) on a day that is checked.

    Args:
        daily: bars sorted by (ts_code, trade_date): open, close, optional pre_close.
        stock_basic: ts_code and list_date (YYYYMMDD).
        calendar: every trading day of the data, sorted (datetime64[ns]).
        where: the file or source named in the error.
    """
    beyond, references, pct = _beyond_limit(daily, stock_basic, calendar)
    bad = np.logical_or.reduce(beyond)
    if not bad.any():
        return
    pos = int(np.flatnonzero(bad)[0])
    kind = next(k for k, rows in enumerate(beyond) if rows[pos])
    column, reference = references[kind]
    raise DataError(
        _move_message(daily.iloc[pos], column, float(reference[pos]), kind < 2, pct[pos], where)
    )


def _beyond_limit(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, calendar: np.ndarray
) -> tuple[list[np.ndarray], list[tuple[str, np.ndarray]], np.ndarray]:
    """Per (price column, reference) pair, the checked rows beyond the limit; the pairs (open
    and close against the previous close, then against pre_close); each row's limit."""
    pct = _board_limits(daily["ts_code"])
    checked = _checked_days(daily, stock_basic, calendar)
    close = daily["close"].to_numpy(np.float32)
    previous = np.r_[np.float32(np.nan), close[:-1]]
    references = [("open", previous), ("close", previous)]
    if "pre_close" in daily.columns:
        pre_close = daily["pre_close"].to_numpy(np.float32)
        references += [("open", pre_close), ("close", pre_close)]
    # |price / reference - 1| > pct + tolerance + tick / reference, without dividing
    allowed = pct + np.float32(MOVE_TOLERANCE)
    beyond = []
    for column, reference in references:
        price = daily[column].to_numpy(np.float32)
        with np.errstate(invalid="ignore"):
            beyond.append(checked & (np.abs(price - reference) > reference * allowed + TICK))
    return beyond, references, pct


def _checked_days(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, calendar: np.ndarray
) -> np.ndarray:
    """Rows with a previous bar of the same stock that are neither a new listing's first days
    nor the first bar after a long gap."""
    codes = _codes(daily["ts_code"])
    same = np.r_[False, codes[1:] == codes[:-1]]
    dates = daily["trade_date"].to_numpy("datetime64[ns]")
    # a stock's first NEW_LISTING_DAYS bars when its first bar is its list_date or comes
    # after the data's first day (a listing, or a relisting, inside the data)
    starts = np.flatnonzero(~same)
    ends = np.r_[starts[1:], len(codes)]
    listed = list_dates(daily.iloc[starts], stock_basic).to_numpy("datetime64[ns]")
    new = (dates[starts] == listed) | (dates[starts] > calendar[0])
    rows = starts[new, None] + np.arange(NEW_LISTING_DAYS)
    rows = rows[rows < ends[new, None]]
    checked = same.copy()
    checked[rows] = False
    missing = np.diff(_day_numbers(dates, calendar)) - 1  # trading days without a bar before
    checked[1:] &= missing < RESUMPTION_GAP
    return checked


def _codes(ts_code: pd.Series) -> np.ndarray:
    """Each row's stock as an integer code."""
    if isinstance(ts_code.dtype, pd.CategoricalDtype):
        return ts_code.cat.codes.to_numpy()
    return pd.factorize(ts_code)[0]


def _board_limits(ts_code: pd.Series) -> np.ndarray:
    """Each row's `BOARD_LIMITS` entry (float32), classified once per code."""
    if isinstance(ts_code.dtype, pd.CategoricalDtype):
        codes = ts_code.cat.codes.to_numpy()
        names = pd.Index(ts_code.cat.categories.astype(str))
    else:
        codes, names = pd.factorize(ts_code.astype(str))
    per_code = np.array([BOARD_LIMITS[b] for b in board_of(names)], dtype=np.float32)
    return per_code[codes]


def _day_numbers(dates: np.ndarray, calendar: np.ndarray) -> np.ndarray:
    """Each date's position in `calendar` (a lookup by calendar day: cheaper than a search)."""
    ns_per_day = 86_400 * 10**9
    first = calendar[0].astype("datetime64[ns]").astype(np.int64) // ns_per_day
    days = dates.astype("datetime64[ns]").view(np.int64) // ns_per_day - first
    trading = calendar.astype("datetime64[ns]").view(np.int64) // ns_per_day - first
    lookup = np.zeros(int(max(days.max(), trading.max())) + 1, dtype=np.int64)
    lookup[trading] = 1
    return np.cumsum(lookup)[days] - 1


def _move_message(
    row: pd.Series, column: str, reference: float, overnight: bool, pct: float, where: str
) -> str:
    price = float(row[column])
    move = price / reference - 1
    if overnight:
        when = " overnight" if column == "open" else ""
        what = f"{column} {price:g} is {move:+.1%}{when} from the previous close {reference:g}"
    else:
        what = f"{column} {price:g} is {move:+.1%} from pre_close {reference:g}"
    return (
        f"{where}: {what} (ts_code={row['ts_code']}, trade_date={row['trade_date']:%Y%m%d}), "
        f"beyond the +-{pct:.0%} limit of its board on a day that is neither a listing's "
        f"first {NEW_LISTING_DAYS} days nor a resumption: {SPLIT_HINT if overnight else BAR_HINT}"
    )
