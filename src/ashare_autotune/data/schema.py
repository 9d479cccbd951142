"""Normalise and validate Tushare-shaped frames; errors name the file, column and a row."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ashare_autotune.errors import DataError

if TYPE_CHECKING:
    from ashare_autotune.data.market import Market

log = logging.getLogger(__name__)

DAILY_REQUIRED = ("ts_code", "trade_date", "open", "high", "low", "close", "vol")
DAILY_NUMERIC = ("open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount")
# Tushare daily_basic's columns (also the free sources' turnover, or a column of the files).
DAILY_BASIC_NUMERIC = (
    "turnover_rate",
    "turnover_rate_f",
    "volume_ratio",
    "pe_ttm",
    "pb",
    "total_mv",
    "circ_mv",
)
# Kept when present: daily_basic's columns, and adj_factor until the sanity check has used it
# (`sanity.repair_with_factors`).
OPTIONAL_NUMERIC = ("adj_factor", *DAILY_BASIC_NUMERIC)
INDEX_REQUIRED = ("trade_date", "close")
BASIC_COLUMNS = ("ts_code", "name", "industry", "list_date")
# Set by the files source when a directory is read: the file each row came from, for errors.
FILE_COLUMN = "__file__"


def parse_trade_date(values: pd.Series, where: str, files: pd.Series | None = None) -> pd.Series:
    """Parse YYYYMMDD strings/ints or dates into datetime64; names the first bad value.

    Args:
        values: the trade_date column.
        where: the file or source named in errors.
        files: per-row source file (directory input), named instead of `where`.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype(str).str.replace("-", "", regex=False).str.slice(0, 8)
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        source = files.iloc[pos] if files is not None else where
        raise DataError(
            f"{source}: column 'trade_date' has a value that is not a date "
            f"(expected YYYYMMDD or YYYY-MM-DD): {values.iloc[pos]!r} at row {pos}"
        )
    return parsed.astype("datetime64[ns]")


def _source(row: pd.Series, where: str) -> str:
    """The file a row came from (directory input) or the whole input's name."""
    return str(row[FILE_COLUMN]) if FILE_COLUMN in row.index else where


def _row_text(row: pd.Series) -> str:
    date = row.get("trade_date")
    day = f"{date:%Y%m%d}" if isinstance(date, pd.Timestamp) else date
    return f"ts_code={row.get('ts_code')}, trade_date={day}"


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
                f"{_source(row, where)}: column '{col}' is not numeric, e.g. {row[col]!r} "
                f"({_row_text(row)})"
            )
        frame[col] = values.astype(np.float32)


def normalize_daily(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate daily bars and return them typed and sorted by (ts_code, trade_date).

    Args:
        frame: Tushare `pro.daily` shaped bars.
        where: the file or source name used in error messages.
    """
    require_columns(frame, DAILY_REQUIRED, where)
    wanted = (*DAILY_REQUIRED, *DAILY_NUMERIC, *OPTIONAL_NUMERIC, FILE_COLUMN)
    keep = [c for c in wanted if c in frame.columns]
    frame = frame.loc[:, list(dict.fromkeys(keep))]
    frame["ts_code"] = _codes_as_sorted_category(frame["ts_code"])
    frame["trade_date"] = parse_trade_date(frame["trade_date"], where, frame.get(FILE_COLUMN))
    _to_float32(frame, (*DAILY_NUMERIC, *OPTIONAL_NUMERIC), where)
    _check_prices(frame, where)
    check_ohlc(frame, where)
    dup = frame.duplicated(["ts_code", "trade_date"])
    if dup.any():
        row = frame.loc[dup].iloc[0]
        raise DataError(
            f"{_source(row, where)}: duplicate (ts_code, trade_date) rows, e.g. {_row_text(row)}"
        )
    _check_dates_in_order(frame, "ts_code", where)
    frame = frame.sort_values(["ts_code", "trade_date"], kind="stable", ignore_index=True)
    frame = _drop_zero_volume(frame, where)
    frame = frame.drop(columns=[FILE_COLUMN], errors="ignore")
    frame["ts_code"] = frame["ts_code"].cat.remove_unused_categories()
    return frame


def _codes_as_sorted_category(codes: pd.Series) -> pd.Series:
    """ts_code as a categorical with text categories in sorted order (cheap on 10M rows)."""
    if isinstance(codes.dtype, pd.CategoricalDtype):
        cats = codes.cat.categories.astype(str)
        return codes.cat.rename_categories(cats).cat.reorder_categories(sorted(cats))
    return codes.astype(str).astype("category")


def _check_prices(frame: pd.DataFrame, where: str) -> None:
    for col in ("open", "high", "low", "close"):
        bad = ~(frame[col] > 0)
        if bad.any():
            row = frame.loc[bad].iloc[0]
            value = row[col]
            problem = "has a missing value" if pd.isna(value) else f"must be > 0, got {value:g}"
            raise DataError(f"{_source(row, where)}: column '{col}' {problem} ({_row_text(row)})")
    bad = frame["vol"] < 0
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise DataError(
            f"{_source(row, where)}: column 'vol' must be >= 0, got {float(row['vol']):g} "
            f"({_row_text(row)})"
        )


def check_ohlc(frame: pd.DataFrame, where: str) -> None:
    """Raise `DataError` on the first bar without low <= open, close <= high.

    Args:
        frame: bars with open, high, low, close (and the file column of directory input).
        where: the file or source named in errors.
    """
    o, h, lo, c = (frame[col].to_numpy() for col in ("open", "high", "low", "close"))
    rules = (  # (price, relation, bound): the first rule a bar breaks is named
        ("low", lo > h, "above", "high"),
        ("open", o > h, "above", "high"),
        ("open", o < lo, "below", "low"),
        ("close", c > h, "above", "high"),
        ("close", c < lo, "below", "low"),
    )
    bad = np.logical_or.reduce([broken for _, broken, _, _ in rules])
    if not bad.any():
        return
    pos = int(np.flatnonzero(bad)[0])
    price, _, relation, bound = next(rule for rule in rules if rule[1][pos])
    row = frame.iloc[pos]
    raise DataError(
        f"{_source(row, where)}: {price} {row[price]:g} is {relation} {bound} {row[bound]:g} "
        f"({_row_text(row)}); a bar needs low <= open, close <= high"
    )


def _check_dates_in_order(frame: pd.DataFrame, key: str, where: str) -> None:
    """Each stock's rows in a file must run in date order, ascending or descending (as Tushare
    writes them); a date that goes back is a sign of a broken file, so it is an error."""
    keys = [frame[key]] + ([frame[FILE_COLUMN]] if FILE_COLUMN in frame.columns else [])
    groups = frame.groupby(keys, sort=False, observed=True)["trade_date"]
    step = np.sign(groups.diff().dt.days)
    direction = step.where(step != 0).groupby(keys, sort=False, observed=True).transform("first")
    bad = (step != 0) & step.notna() & (step != direction)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        row = frame.iloc[pos]
        before = groups.shift().iloc[pos]
        order = "ascending" if direction.iloc[pos] > 0 else "descending"
        raise DataError(
            f"{_source(row, where)}: column 'trade_date' is out of order for "
            f"{key}={row[key]}: {row['trade_date']:%Y%m%d} follows {before:%Y%m%d} in rows "
            f"otherwise {order}"
        )


def _drop_zero_volume(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows with zero volume are suspended days written as bars: drop them, as if absent."""
    zero = (frame["vol"] == 0).to_numpy()
    if not zero.any():
        return frame
    row = frame.loc[zero].iloc[0]
    log.warning(
        "%s: dropped %d row(s) with zero volume (suspended days written as bars), e.g. %s",
        where,
        int(zero.sum()),
        _row_text(row),
    )
    return frame.loc[~zero].reset_index(drop=True)


def normalize_index(frame: pd.DataFrame, where: str, index_code: str | None) -> pd.DataFrame:
    """Select one index from index bars and return trade_date, close, (open when the bars have
    it; NaN where not positive), pct_chg (%) by date."""
    require_columns(frame, INDEX_REQUIRED, where)
    if "ts_code" in frame.columns and index_code:
        chosen = frame[frame["ts_code"].astype(str) == index_code]
        if chosen.empty:
            codes = sorted(frame["ts_code"].astype(str).unique())[:10]
            raise DataError(f"{where}: no rows for index {index_code!r}; codes present: {codes}")
        frame = chosen
    files = frame[FILE_COLUMN] if FILE_COLUMN in frame.columns else None
    out = pd.DataFrame({"trade_date": parse_trade_date(frame["trade_date"], where, files)})
    out["ts_code"] = index_code
    if files is not None:
        out[FILE_COLUMN] = files.to_numpy()
    out["close"] = pd.to_numeric(frame["close"], errors="coerce").to_numpy(np.float64)
    # the open (where the source has it) starts an excess label's index leg at T+1's open
    if "open" in frame.columns:
        out["open"] = pd.to_numeric(frame["open"], errors="coerce").to_numpy(np.float64)
    bad = ~(out["close"] > 0)
    if bad.any():
        row = out.loc[bad].iloc[0]
        raise DataError(
            f"{_source(row, where)}: column 'close' must be a positive number, got "
            f"{frame['close'].iloc[int(np.flatnonzero(bad)[0])]!r} (index {_row_text(row)})"
        )
    _check_dates_in_order(out, "ts_code", where)
    out = out.sort_values("trade_date", ignore_index=True)
    if out["trade_date"].duplicated().any():
        row = out.loc[out["trade_date"].duplicated()].iloc[0]
        raise DataError(
            f"{_source(row, where)}: duplicate index rows for trade_date "
            f"{row['trade_date']:%Y%m%d} (index {index_code})"
        )
    out = out.loc[:, ["trade_date", "close", *(["open"] if "open" in out.columns else [])]]
    out["pct_chg"] = (out["close"].pct_change() * 100).astype(np.float32)
    out["close"] = out["close"].astype(np.float32)
    if "open" in out.columns:
        out["open"] = out["open"].where(out["open"] > 0).astype(np.float32)
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
    return replace(market, daily=daily, stock_basic=basic)


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
    return replace(market, daily=daily, index=index)


def check_index_covers(daily: pd.DataFrame, index: pd.DataFrame, where: str) -> None:
    """Every stock trading day must have an index bar (the market feature needs it)."""
    stock_days = pd.Index(daily["trade_date"].unique())
    missing = stock_days.difference(pd.Index(index["trade_date"]))
    if len(missing):
        first = missing.min()
        row = daily.loc[daily["trade_date"] == first].iloc[0]
        raise DataError(
            f"{where}: column 'trade_date' of the index does not cover {len(missing)} stock "
            f"trading day(s), e.g. {first:%Y%m%d} (stock row {_row_text(row)}); "
            "give an index spanning the stock dates"
        )


def log_suspensions(daily: pd.DataFrame, index: pd.DataFrame, where: str) -> int:
    """Count trading days inside each stock's first..last bar that have no bar (suspensions).

    They are left absent: rolling features count a stock's own trading rows.

    Returns:
        The number of missing stock-days.
    """
    days = index["trade_date"].to_numpy()
    codes = daily["ts_code"].to_numpy()
    dates = daily["trade_date"].to_numpy()
    span = pd.DataFrame({"code": codes, "date": dates}).groupby("code", observed=True)["date"]
    first = np.searchsorted(days, span.min().to_numpy())
    last = np.searchsorted(days, span.max().to_numpy())
    missing = int((last - first + 1).sum() - len(daily))
    if missing > 0:
        log.info(
            "%s: %d stock-day(s) without a bar inside the stocks' trading spans (suspensions); "
            "left absent, features count each stock's trading rows",
            where,
            missing,
        )
    return missing
