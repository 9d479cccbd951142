"""A-share boards: the board a code trades on, when the boards' price-limit rules changed, and
each stock's listing date. Read by the data checks and the synthetic market (`data`) as well as
the limits and the universe (`modelling`), so it sits on the lowest floor that needs it."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The limit rules by board and date (`modelling.limits`): ChiNext +/-20% from CHINEXT_REFORM
# (its listings' first 5 days free), main-board listings' first 5 days free from
# MAIN_REGISTRATION.
CHINEXT_REFORM = pd.Timestamp("2020-08-24")
MAIN_REGISTRATION = pd.Timestamp("2023-04-10")
# Main-board ST limits go from +/-5% to +/-10% (SSE and SZSE trading rules, 2026 revision,
# published 2026-04-24, in force from 2026-07-06).
MAIN_ST_REFORM = pd.Timestamp("2026-07-06")


def board_of(ts_code: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """The board of each code: BJ (.BJ), STAR (688/689 .SH), ChiNext (300/301 .SZ) or main.

    Args:
        ts_code: Tushare codes such as 600000.SH (strings or a categorical).

    Returns:
        An object array of board names from `config.universe.BOARDS`, aligned with `ts_code`.
    """
    if isinstance(ts_code, pd.Series) and isinstance(ts_code.dtype, pd.CategoricalDtype):
        # Classify each category once, then spread by code (cheap on the whole market).
        cats = pd.Index(ts_code.cat.categories.astype(str))
        return np.append(board_of(cats), "main")[ts_code.cat.codes.to_numpy()]
    codes = pd.Series(np.asarray(ts_code, dtype=object)).astype(str)
    prefix, exchange = codes.str[:3], codes.str[-3:]
    board = np.full(len(codes), "main", dtype=object)
    board[((prefix == "300") | (prefix == "301")) & (exchange == ".SZ")] = "ChiNext"
    board[((prefix == "688") | (prefix == "689")) & (exchange == ".SH")] = "STAR"
    board[exchange == ".BJ"] = "BJ"
    return board


def list_dates(daily: pd.DataFrame, stock_basic: pd.DataFrame) -> pd.Series:
    """Each row's list_date as datetime64 (NaT when unknown or not a YYYYMMDD date)."""
    if "list_date" not in stock_basic.columns:
        return pd.Series(pd.NaT, index=daily.index, dtype="datetime64[ns]")
    by_code = pd.to_datetime(
        stock_basic.set_index(stock_basic["ts_code"].astype(str))["list_date"].astype(str),
        format="%Y%m%d",
        errors="coerce",
    )
    by_code = by_code[~by_code.index.duplicated()]
    codes = daily["ts_code"]
    if isinstance(codes.dtype, pd.CategoricalDtype):
        # Look up each category once (a string map over the whole market takes seconds).
        per_code = by_code.reindex(codes.cat.categories.astype(str)).to_numpy("datetime64[ns]")
        values = np.append(per_code, np.datetime64("NaT", "ns"))[codes.cat.codes.to_numpy()]
    else:
        values = codes.astype(str).map(by_code).to_numpy(dtype="datetime64[ns]")
    return pd.Series(values, index=daily.index)
