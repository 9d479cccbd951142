"""A sorted daily panel as arrays, with rolling windows over each stock's own rows only.

Rows are sorted by (ts_code, trade_date). A window is a pandas `Rolling` over the whole flat
panel with an indexer whose windows start no earlier than the stock's first row: no Python loop
over stocks, no window reaching into the previous stock, and pandas' running sums restart at each
stock (a window that does not overlap the previous one is recomputed from scratch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pandas.api.indexers import BaseIndexer

_ARGMAX_CHUNK = 250_000  # rows per argmax block: a 60-wide float64 copy is 120 MB
_NUMERIC = ("open", "high", "low", "close", "pre_close", "vol", "amount")


def stock_starts(codes: np.ndarray) -> np.ndarray:
    """Row index of each row's stock's first row (rows sorted by stock)."""
    idx = np.arange(len(codes))
    new = np.ones(len(codes), dtype=bool)
    new[1:] = codes[1:] != codes[:-1]
    return np.maximum.accumulate(np.where(new, idx, 0))


def stock_codes(daily: pd.DataFrame) -> np.ndarray:
    """Integer code per row of `daily["ts_code"]` (categorical codes when it is categorical)."""
    ts_code = daily["ts_code"]
    if isinstance(ts_code.dtype, pd.CategoricalDtype):
        return ts_code.cat.codes.to_numpy()
    return pd.factorize(ts_code)[0]


class StockWindow(BaseIndexer):
    """Trailing window of `window_size` rows that never reaches before the stock's first row."""

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start (inclusive) and end (exclusive) row of each row's window."""
        end = np.arange(1, num_values + 1, dtype=np.int64)
        start = np.maximum(end - self.window_size, self.first).astype(np.int64)
        return start, end


class Panel:
    """The arrays of a sorted daily panel and rolling windows over each stock's own rows."""

    def __init__(self, daily: pd.DataFrame) -> None:
        self.first = stock_starts(stock_codes(daily))
        self.pos = np.arange(len(daily)) - self.first
        self._cols = {c: daily[c].to_numpy(np.float64) for c in daily.columns if c in _NUMERIC}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._cols[name]

    def roll(self, x: np.ndarray | pd.Series, window: int, full: bool = True) -> Any:
        """pandas Rolling over the stock's last `window` rows (all of them needed when `full`)."""
        series = x if isinstance(x, pd.Series) else pd.Series(x, copy=False)
        indexer = StockWindow(window_size=window, first=self.first)
        return series.rolling(indexer, min_periods=window if full else 1)

    def lag(self, x: np.ndarray, k: int = 1) -> np.ndarray:
        """x of the same stock k rows earlier (NaN for the stock's first k rows)."""
        out = np.full(len(x), np.nan)
        out[k:] = x[:-k]
        out[self.pos < k] = np.nan
        return out

    def arg_extreme(self, x: np.ndarray, window: int, kind: str) -> np.ndarray:
        """1-based position of the first max (`kind="max"`) or min over the full window."""
        out = np.full(len(x), np.nan)
        if len(x) < window:
            return out
        view = sliding_window_view(x, window)  # row i covers rows i..i+window-1
        pick = np.argmax if kind == "max" else np.argmin
        for lo in range(0, len(view), _ARGMAX_CHUNK):
            block = view[lo : lo + _ARGMAX_CHUNK]
            out[lo + window - 1 : lo + window - 1 + len(block)] = pick(block, axis=1) + 1
        out[self.pos < window - 1] = np.nan
        return out
