"""Normalise and validate Tushare-shaped frames; errors name the file, column and a row."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ashare_autotune.errors import DataError

if TYPE_CHECKING:
    from ashare_autotune.data.market import Market

log = logging.getLogger(__name__)

DAILY_REQUIRED = ("ts_code", "trade_date", "open", "high", "low", "close", "vol")
DAILY_NUMERIC = ("open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount")
INDEX_REQUIRED = ("trade_date", "close")
BASIC_COLUMNS = ("ts_code", "name", "industry", "list_date")


def parse_trade_date(values: pd.Series, where: str) -> pd.Series:
    """Parse YYYYMMDD strings/ints or dates into datetime64; names the first bad value."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype(str).str.replace("-", "", regex=False).str.slice(0, 8)
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        raise DataError(
            f"{where}: column 'trade_date' has a value that is not a date "
            f"(expected YYYYMMDD): {values[bad].iloc[0]!r} at row {int(np.flatnonzero(bad)[0])}"
        )
    return parsed.astype("datetime64[ns]")


def require_columns(frame: pd.DataFrame, required: tuple[str, ...], where: str) -> None:
    """Raise `DataError` naming every missing column."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing required column(s) {missing}; found {list(frame.columns)}"
        )


def _to_float32(frame: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    for col in columns:
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = frame.loc[bad].iloc[0]
            raise DataError(
                f"{where}: column '{col}' is not numeric, e.g. {row[col]!r} "
                f"(ts_code={row.get('ts_code')}, trade_date={row.get('trade_date')})"
            )
        frame[col] = values.astype(np.float32)


def normalize_daily(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate daily bars and return them typed and sorted by (ts_code, trade_date).

    Args:
        frame: Tushare `pro.daily` shaped bars.
        where: the file or source name used in error messages.
    """
    require_columns(frame, DAILY_REQUIRED, where)
    keep = [c for c in (*DAILY_REQUIRED, *DAILY_NUMERIC) if c in frame.columns]
    frame = frame.loc[:, list(dict.fromkeys(keep))].copy()
    frame["trade_date"] = parse_trade_date(frame["trade_date"], where)
    _to_float32(frame, DAILY_NUMERIC, where)
    frame["ts_code"] = frame["ts_code"].astype(str)
    _check_prices(frame, where)
    frame = frame.sort_values(["ts_code", "trade_date"], kind="stable", ignore_index=True)
    dup = frame.duplicated(["ts_code", "trade_date"])
    if dup.any():
        row = frame.loc[dup].iloc[0]
        raise DataError(
            f"{where}: duplicate (ts_code, trade_date) rows, e.g. "
            f"{row['ts_code']} {row['trade_date']:%Y%m%d}"
        )
    frame["ts_code"] = frame["ts_code"].astype("category")
    return frame


def _check_prices(frame: pd.DataFrame, where: str) -> None:
    for col in ("open", "high", "low", "close"):
        bad = ~(frame[col] > 0)
        if bad.any():
            row = frame.loc[bad].iloc[0]
            raise DataError(
                f"{where}: column '{col}' must be positive, got {row[col]!r} "
                f"(ts_code={row['ts_code']}, trade_date={row['trade_date']:%Y%m%d})"
            )


def normalize_index(frame: pd.DataFrame, where: str, index_code: str | None) -> pd.DataFrame:
    """Select one index from index bars and return trade_date, close, pct_chg (%) by date."""
    require_columns(frame, INDEX_REQUIRED, where)
    if "ts_code" in frame.columns and index_code:
        chosen = frame[frame["ts_code"].astype(str) == index_code]
        if chosen.empty:
            codes = sorted(frame["ts_code"].astype(str).unique())[:10]
            raise DataError(f"{where}: no rows for index {index_code!r}; codes present: {codes}")
        frame = chosen
    out = pd.DataFrame({"trade_date": parse_trade_date(frame["trade_date"], where)})
    out["close"] = pd.to_numeric(frame["close"], errors="coerce").to_numpy(np.float64)
    out = out.sort_values("trade_date", ignore_index=True)
    if out["trade_date"].duplicated().any():
        day = out.loc[out["trade_date"].duplicated(), "trade_date"].iloc[0]
        raise DataError(f"{where}: duplicate index rows for trade_date {day:%Y%m%d}")
    if not (out["close"] > 0).all():
        raise DataError(f"{where}: column 'close' has non-positive or non-numeric index levels")
    out["pct_chg"] = (out["close"].pct_change() * 100).astype(np.float32)
    out["close"] = out["close"].astype(np.float32)
    return out


def normalize_basic(frame: pd.DataFrame | None, codes: pd.Series, where: str) -> pd.DataFrame:
    """Return stock_basic with ts_code, name, industry, list_date for every traded code."""
    if frame is None:
        frame = pd.DataFrame({"ts_code": pd.Series(codes.unique()).astype(str)})
    require_columns(frame, ("ts_code",), where)
    frame = frame.copy()
    for col in BASIC_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame = frame.loc[:, list(BASIC_COLUMNS)]
    frame["ts_code"] = frame["ts_code"].astype(str)
    frame["industry"] = frame["industry"].where(frame["industry"].notna(), None)
    return frame.drop_duplicates("ts_code", ignore_index=True)


def select_universe(
    market: Market, ts_codes: list[str] | None, n_stocks: int | None, seed: int
) -> Market:
    """Keep an explicit code list, or a seeded random sample of n_stocks codes."""
    codes = market.daily["ts_code"].cat.categories
    if ts_codes:
        unknown = sorted(set(ts_codes) - set(codes))
        if unknown:
            raise DataError(
                f"{market.source}: data.ts_codes not found in the data: {unknown[:10]}"
            )
        keep = list(ts_codes)
    elif n_stocks is not None and n_stocks < len(codes):
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(np.asarray(codes), size=n_stocks, replace=False).tolist())
    else:
        return market
    mask = market.daily["ts_code"].isin(keep).to_numpy()
    daily = market.daily.loc[mask].reset_index(drop=True)
    daily["ts_code"] = daily["ts_code"].cat.remove_unused_categories()
    basic = market.stock_basic[market.stock_basic["ts_code"].isin(keep)].reset_index(drop=True)
    return type(market)(daily, market.index, basic, market.source)


def select_window(market: Market, start: str | None, end: str | None) -> Market:
    """Keep bars with start <= trade_date <= end; an empty result is an error."""
    if not start and not end:
        return market
    lo = pd.Timestamp(start) if start else pd.Timestamp.min
    hi = pd.Timestamp(end) if end else pd.Timestamp.max
    dates = market.daily["trade_date"]
    daily = market.daily.loc[(dates >= lo) & (dates <= hi)].reset_index(drop=True)
    if daily.empty:
        span = f"{dates.min():%Y%m%d}..{dates.max():%Y%m%d}"
        raise DataError(
            f"{market.source}: no bars between data.start={start} and data.end={end}; "
            f"the data covers {span}"
        )
    daily["ts_code"] = daily["ts_code"].cat.remove_unused_categories()
    idx = market.index
    index = idx.loc[(idx["trade_date"] >= lo) & (idx["trade_date"] <= hi)].reset_index(drop=True)
    return type(market)(daily, index, market.stock_basic, market.source)


def check_index_covers(daily: pd.DataFrame, index: pd.DataFrame, where: str) -> None:
    """Every stock trading day must have an index bar (the market feature needs it)."""
    stock_days = pd.Index(daily["trade_date"].unique())
    missing = stock_days.difference(pd.Index(index["trade_date"]))
    if len(missing):
        raise DataError(
            f"{where}: the index does not cover {len(missing)} stock trading day(s), "
            f"e.g. {missing.min():%Y%m%d}; give an index file spanning the stock dates"
        )
