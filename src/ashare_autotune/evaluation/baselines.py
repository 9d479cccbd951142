"""One-line factor baselines from the bars: what a model has to beat to be worth its complexity.

Each factor of day T reads the stock's own bars up to T only (its last `WINDOW` + 1 bars; a
suspended day has no bar, so a window spans the stock's last 20 trading days, not the market's),
higher = bought first:
- reversal_20 = -(close_T / close_{T-20} - 1): the 20-day losers first (prices are adjusted);
- volatility_20 = -(std of the 20 daily close-to-close returns to T): the calm first;
- amount_20 = -(mean traded amount of the 20 days to T): the small and illiquid first;
- blend = the mean of the three's percentile ranks within the day's scored rows (all three
  needed).
A stock with fewer bars has no value (NaN): it is not picked. Pure: frames in, frames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.config.backtest import Baseline

WINDOW = 20  # market days of each factor
FACTORS = (Baseline.REVERSAL_20.value, Baseline.VOLATILITY_20.value, Baseline.AMOUNT_20.value)
KEYS = ["ts_code", "trade_date"]


def baseline_factors(bars: pd.DataFrame) -> pd.DataFrame:
    """The three one-line factors of every bar (module docstring), vectorised over the panel.

    Args:
        bars: ts_code, trade_date, close and amount (amount missing: amount_20 is NaN).

    Returns:
        ts_code, trade_date, reversal_20, volatility_20, amount_20, sorted by (ts_code,
        trade_date).
    """
    columns = [c for c in ("close", "amount") if c in bars.columns]
    panel = bars[KEYS + columns].sort_values(KEYS, kind="stable").reset_index(drop=True)
    position = panel.groupby("ts_code", sort=False).cumcount().to_numpy()
    close = panel["close"].to_numpy(np.float64)
    # rolling over the stacked stocks: a window is kept only when it lies inside one stock
    returns = pd.Series(close / _lag(close, position, 1) - 1.0)
    volatility = returns.rolling(WINDOW, min_periods=WINDOW).std().to_numpy()
    out = panel[KEYS].copy()
    out[FACTORS[0]] = -(close / _lag(close, position, WINDOW) - 1.0)
    out[FACTORS[1]] = np.where(position >= WINDOW, -volatility, np.nan)
    if "amount" in panel.columns:
        amount = panel["amount"].astype(np.float64).rolling(WINDOW, min_periods=WINDOW).mean()
        out[FACTORS[2]] = np.where(position >= WINDOW - 1, -amount.to_numpy(), np.nan)
    else:
        out[FACTORS[2]] = np.nan
    return out


def baseline_scores(factors: pd.DataFrame, rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each named baseline's score of the scored rows (the model's candidates), in row order.

    Args:
        factors: `baseline_factors` of bars covering the rows' days and the 20 before.
        rows: ts_code, trade_date of the rows the model scored.
        names: baselines (`backtest.baselines`).

    Returns:
        ts_code, trade_date and one column per name; NaN where a factor has no value.
    """
    merged = take_rows(factors, rows, list(FACTORS))
    if Baseline.BLEND.value in names:
        ranks = merged[list(FACTORS)].groupby(merged["trade_date"]).rank(pct=True)
        merged[Baseline.BLEND.value] = ranks.mean(axis=1, skipna=False)
    return merged[KEYS + list(names)]


def take_rows(source: pd.DataFrame, rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of `source` at the rows' (ts_code, trade_date), in row order (NaN where
    `source` has no such row); `source` holds each key once.

    Args:
        source: ts_code, trade_date and `columns` (float).
        rows: ts_code, trade_date.
        columns: the columns taken.

    Returns:
        The rows' ts_code, trade_date and `columns`, with a fresh 0..n-1 index.
    """
    at = _key(source, source).get_indexer(_key(rows, source))  # -1: no such row
    out = rows[KEYS].reset_index(drop=True)
    for name in columns:
        values = np.append(source[name].to_numpy(np.float64), np.nan)
        out[name] = values[at]  # -1 reads the NaN appended
    return out


def history_start(dates: pd.Series, first: str, days: int = WINDOW) -> str:
    """The market day `days` market days before `first` (YYYYMMDD), or the first day known:
    where a window's bars must start for its first signal day's factors."""
    known = np.unique(pd.to_datetime(dates).to_numpy("datetime64[ns]"))
    at = int(np.searchsorted(known, pd.Timestamp(first).to_datetime64()))
    return f"{pd.Timestamp(known[max(at - days, 0)]):%Y%m%d}" if len(known) else first


def _key(frame: pd.DataFrame, source: pd.DataFrame) -> pd.Index:
    """(stock, day) as one int64 per row: the stock's position among the source's stocks (-1:
    none) times 2^32 plus the day in days since 1970 (a hash join far faster than a merge)."""
    stocks = pd.Index(source["ts_code"].astype(str).unique())
    stock = stocks.get_indexer(frame["ts_code"].astype(str)).astype(np.int64)
    day = pd.to_datetime(frame["trade_date"]).to_numpy("datetime64[D]").astype(np.int64)
    return pd.Index(np.where(stock >= 0, (stock << 32) + day, -1))


def _lag(values: np.ndarray, position: np.ndarray, k: int) -> np.ndarray:
    """`values` k rows earlier within the same stock (NaN for a stock's first k rows)."""
    out = np.full(len(values), np.nan)
    out[k:] = values[:-k]
    out[position < k] = np.nan
    return out
