"""A-share specific features: price-limit history, listing age, liquidity, market breadth,
industry strength, Tushare `daily_basic` fields, and per-day cross-sectional ranks.

Every value at row T uses that stock's rows up to T and, for breadth and industry strength, the
other stocks' rows of day T only. Rows are sorted by (ts_code, trade_date); outputs are float32
and aligned with `daily`. Limit features take the flags of the limits module
(`limit_flags(daily, stock_basic)`: bool columns `close_limit_up`, `close_limit_down`,
`one_price_up`, `one_price_down`, one row per row of `daily`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.modelling.panel import Panel

FLAGS = ("close_limit_up", "close_limit_down", "one_price_up", "one_price_down")
# name -> meaning; the order is the output's column order
FEATURES: dict[str, str] = {
    "limit_up_5": "closes at limit-up over the last 5 rows",
    "limit_up_20": "closes at limit-up over the last 20 rows",
    "limit_down_5": "closes at limit-down over the last 5 rows",
    "limit_down_20": "closes at limit-down over the last 20 rows",
    "limit_up_streak": "consecutive rows up to T closing at limit-up (0 when T does not)",
    "limit_down_streak": "consecutive rows up to T closing at limit-down (0 when T does not)",
    "one_price_20": "one-price days (high == low at a limit) over the last 20 rows",
    "listed_days": "calendar days since list_date (NaN without list_date)",
    "listed_trading_days": "market trading days from listing to T, listing day = 1 (counted "
    "on the data's calendar: a lower bound for stocks listed before the data starts)",
    "log_amount_20": "log(1 + mean amount over 20 rows), amount in thousand CNY",
    "amount_ratio_5_20": "mean amount over 5 rows / mean amount over 20 rows",
    "breadth_up": "share of the day's stocks closing above their previous close",
    "breadth_limit_up": "share of the day's stocks closing at limit-up",
    "breadth_limit_down": "share of the day's stocks closing at limit-down",
    "ind_rel_ret_5": "industry mean 5-row return minus the market's, that day (NaN: no industry)",
    "ind_rel_ret_20": "industry mean 20-row return minus the market's, that day",
}
# Tushare daily_basic columns used when `daily` has them: name -> (source column, transform)
DAILY_BASIC: dict[str, tuple[str, str]] = {
    "turnover_rate": ("turnover_rate", "raw"),
    "turnover_rate_f": ("turnover_rate_f", "raw"),
    "volume_ratio": ("volume_ratio", "raw"),
    "pe_ttm": ("pe_ttm", "raw"),
    "pb": ("pb", "raw"),
    "log_total_mv": ("total_mv", "log"),
    "log_circ_mv": ("circ_mv", "log"),
}


def ashare_feature_names(daily: pd.DataFrame) -> list[str]:
    """The A-share feature names for this data (`daily_basic` ones only when present)."""
    return [*FEATURES, *(n for n, (col, _) in DAILY_BASIC.items() if col in daily.columns)]


def ashare_features(
    daily: pd.DataFrame, flags: pd.DataFrame, stock_basic: pd.DataFrame
) -> pd.DataFrame:
    """Compute the A-share features for every row of a daily panel.

    Args:
        daily: bars sorted by (ts_code, trade_date) with trade_date, close, amount (and
            pre_close, Tushare daily_basic columns when available).
        flags: the limit flags, one row per row of `daily` (bool columns of `FLAGS`).
        stock_basic: ts_code, industry and list_date (YYYYMMDD) per stock.

    Returns:
        one float32 column per name of `ashare_feature_names(daily)`, aligned with `daily`.
    """
    _check_inputs(daily, flags)
    names = ashare_feature_names(daily)
    block = np.empty((len(names), len(daily)), dtype=np.float32)
    for name, values in _compute(daily, flags, stock_basic):
        values = np.where(np.isfinite(values), values, np.nan)  # +-inf -> NaN, one column
        block[names.index(name)] = values
    return pd.DataFrame(block.T, columns=names, index=daily.index, copy=False)


def cross_sectional_ranks(
    frame: pd.DataFrame, names: list[str], dates: pd.Series | np.ndarray
) -> pd.DataFrame:
    """Each day's percentile rank (0..1, ties averaged) of the chosen features, within the day.

    Args:
        frame: feature columns, one row per stock-day.
        names: the columns to rank.
        dates: the trade date of each row of `frame` (the rank only compares rows of one date).

    Returns:
        float32 columns `<name>_csrank`, aligned with `frame`; NaN stays NaN and is not ranked.
    """
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ConfigError(f"config key 'features.cs_rank': unknown feature(s) {missing}")
    # one (day x stock-slot) matrix per feature, NaN-padded: scipy ranks each day's row at once
    day = pd.factorize(np.asarray(dates))[0]
    order = np.argsort(day, kind="stable")
    row = day[order]
    starts = np.r_[0, np.flatnonzero(row[1:] != row[:-1]) + 1] if len(row) else np.array([0])
    sizes = np.diff(np.r_[starts, len(row)])
    slot = np.arange(len(row)) - np.repeat(starts, sizes)
    block = np.empty((len(frame), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        matrix = np.full((len(starts), int(sizes.max(initial=0))), np.nan)
        matrix[row, slot] = frame[name].to_numpy(np.float64)[order]
        ranks = rankdata(matrix, axis=1, nan_policy="omit")
        with np.errstate(invalid="ignore", divide="ignore"):  # a day with no value: NaN
            ranks /= (~np.isnan(matrix)).sum(axis=1, keepdims=True)  # percentile in (0, 1]
        block[order, j] = ranks[row, slot]
    return pd.DataFrame(block, columns=[f"{n}_csrank" for n in names], index=frame.index)


def _check_inputs(daily: pd.DataFrame, flags: pd.DataFrame) -> None:
    for col in ("ts_code", "trade_date", "close", "amount"):
        if col not in daily.columns:
            raise DataError(f"daily bars: column '{col}' is missing (needed by ashare features)")
    for col in FLAGS:
        if col not in flags.columns:
            raise DataError(f"limit flags: column '{col}' is missing")
    if len(flags) != len(daily):
        raise DataError(f"limit flags: {len(flags)} rows for {len(daily)} daily rows")


def _compute(
    daily: pd.DataFrame, flags: pd.DataFrame, stock_basic: pd.DataFrame
) -> Iterator[tuple[str, np.ndarray]]:
    p = Panel(daily)
    flag = {k: flags[k].to_numpy(bool) for k in FLAGS}
    up, down = flag["close_limit_up"], flag["close_limit_down"]
    for w in (5, 20):
        yield f"limit_up_{w}", p.roll(up.astype(np.float64), w).sum().to_numpy()
        yield f"limit_down_{w}", p.roll(down.astype(np.float64), w).sum().to_numpy()
    yield "limit_up_streak", _streak(up, p.first)
    yield "limit_down_streak", _streak(down, p.first)
    one_price = (flag["one_price_up"] | flag["one_price_down"]).astype(np.float64)
    yield "one_price_20", p.roll(one_price, 20).sum().to_numpy()
    yield from _listing(daily, p, stock_basic)
    amount = p["amount"]
    mean_5, mean_20 = p.roll(amount, 5).mean().to_numpy(), p.roll(amount, 20).mean().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        yield "log_amount_20", np.log1p(mean_20)
        yield "amount_ratio_5_20", mean_5 / mean_20
    day = pd.factorize(daily["trade_date"])[0]
    prev = daily["pre_close"].to_numpy(np.float64) if "pre_close" in daily else p.lag(p["close"])
    rose = np.where(np.isnan(prev), np.nan, p["close"] > prev)
    for name, values in (("breadth_up", rose), ("breadth_limit_up", up)):
        yield name, _day_mean(values.astype(np.float64), day)
    yield "breadth_limit_down", _day_mean(down.astype(np.float64), day)
    yield from _industry(daily, p, stock_basic, day)
    yield from _daily_basic(daily)


def _streak(flag: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Length of the run of True ending at each row, within the stock (0 where False)."""
    idx = np.arange(len(flag))
    last_false = np.maximum.accumulate(np.where(flag, -1, idx))
    return (idx - np.maximum(last_false, first - 1)).astype(np.float64)


def _day_mean(values: np.ndarray, day: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """Mean of the finite values sharing (day, group), broadcast back to every row of it."""
    key = day.astype(np.int64) if group is None else day * (int(group.max()) + 1) + group
    ok = np.isfinite(values)
    size = int(key.max()) + 1 if len(key) else 0
    sums = np.bincount(key[ok], weights=values[ok], minlength=size)
    counts = np.bincount(key[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[key]


def _per_stock(daily: pd.DataFrame, stock_basic: pd.DataFrame, column: str) -> pd.Series:
    """stock_basic's `column` for each row's stock (looked up once per stock, not per row)."""
    codes, stocks = pd.factorize(daily["ts_code"])
    if column not in stock_basic.columns:
        return pd.Series([None] * len(daily), index=daily.index)
    table = stock_basic.drop_duplicates("ts_code").set_index("ts_code")[column]
    values = pd.Series(pd.Index(stocks).astype(str)).map(table)
    return pd.Series(values.to_numpy()[codes], index=daily.index)


def _as_dates(values: pd.Series) -> pd.Series:
    """Datetimes of YYYYMMDD strings or datetimes, parsed once per distinct value (NaT if bad)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if not isinstance(uniques, pd.DatetimeIndex):
        uniques = pd.to_datetime(pd.Index(uniques).astype(str), format="%Y%m%d", errors="coerce")
    return pd.Series(np.asarray(uniques)[codes], index=values.index)


def _listing(
    daily: pd.DataFrame, p: Panel, stock_basic: pd.DataFrame
) -> Iterator[tuple[str, np.ndarray]]:
    dates = _as_dates(daily["trade_date"])
    listed = _as_dates(_per_stock(daily, stock_basic, "list_date"))
    yield "listed_days", (dates - listed).dt.days.to_numpy(np.float64)
    calendar = np.unique(dates.to_numpy())
    # a stock without list_date counts from its first bar in the data
    start = listed.fillna(pd.Series(dates.to_numpy()[p.first], index=daily.index))
    t_idx = np.searchsorted(calendar, dates.to_numpy())
    yield "listed_trading_days", (t_idx - np.searchsorted(calendar, start.to_numpy()) + 1.0)


def _industry(
    daily: pd.DataFrame, p: Panel, stock_basic: pd.DataFrame, day: np.ndarray
) -> Iterator[tuple[str, np.ndarray]]:
    group = pd.factorize(_per_stock(daily, stock_basic, "industry"))[0]  # -1: no industry
    close = p["close"]
    for w in (5, 20):
        ret = close / p.lag(close, w) - 1
        industry = _day_mean(np.where(group >= 0, ret, np.nan), day, np.maximum(group, 0))
        out = industry - _day_mean(ret, day)
        out[group < 0] = np.nan
        yield f"ind_rel_ret_{w}", out


def _daily_basic(daily: pd.DataFrame) -> Iterator[tuple[str, np.ndarray]]:
    for name, (col, transform) in DAILY_BASIC.items():
        if col in daily.columns:
            values = daily[col].to_numpy(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                yield name, np.log(values) if transform == "log" else values
