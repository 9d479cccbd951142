"""A sorted daily panel as arrays, with rolling windows over each stock's own rows only.

Rows are sorted by (ts_code, trade_date). A window is a pandas `Rolling` over the whole flat
panel with an indexer whose windows start no earlier than the stock's first row: no Python loop
over stocks, no window reaching into the previous stock, and pandas' running sums restart at each
stock (a window that does not overlap the previous one is recomputed from scratch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pandas.api.indexers import BaseIndexer

_CHUNK = 125_000  # windows per block reduced at once
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

    def by_window(
        self,
        x: np.ndarray,
        window: int,
        reduce: Callable[[np.ndarray], np.ndarray],
        width: int = 1,
    ) -> np.ndarray:
        """`reduce` of every full window: (rows, window) oldest first -> (rows, width).

        The windows are strided views over the flat panel, reduced a block of rows at a time
        (numpy copies a block to reduce it along its rows). Windows that reach before the
        stock's first row or hold a NaN give NaN.

        Returns:
            float64 array of shape (len(x), width).
        """
        out = np.full((len(x), width), np.nan)
        if len(x) < window:
            return out
        small = x.astype(np.float32)
        if np.array_equal(small, x, equal_nan=True):
            x = small  # float32 data: reduce the same values at half the memory traffic
        view = sliding_window_view(x, window)  # row i: rows i..i+window-1, ends at i+window-1
        for lo in range(0, len(view), _CHUNK):
            block = view[lo : lo + _CHUNK]
            out[lo + window - 1 : lo + window - 1 + len(block)] = reduce(block).reshape(
                len(block), width
            )
        holes = self.roll(np.isnan(x).astype(np.float64), window).sum().to_numpy()
        out[~(holes == 0)] = np.nan  # also NaN where the window is not full (pos < window - 1)
        return out

    def arg_extreme(self, x: np.ndarray, window: int, kind: str) -> np.ndarray:
        """1-based position of the first max (`kind="max"`) or min in the window, oldest = 1."""
        pick = np.argmax if kind == "max" else np.argmin
        return self.by_window(x, window, lambda block: pick(block, axis=1) + 1)[:, 0]

    def rank_last(self, x: np.ndarray, window: int) -> np.ndarray:
        """Average rank (ties share it) of the window's last value, divided by the window size."""

        def rank(block: np.ndarray) -> np.ndarray:
            last = block[:, -1:]
            below, equal = (block < last).sum(axis=1), (block == last).sum(axis=1)
            return (below + (equal + 1) / 2) / window

        return self.by_window(x, window, rank)[:, 0]

    def quantiles(self, x: np.ndarray, window: int, qs: tuple[float, ...]) -> list[np.ndarray]:
        """Rolling quantiles, linear interpolation between order statistics (pandas' default)."""
        spots = [q * (window - 1) for q in qs]
        kth = sorted({k for h in spots for k in (int(h), min(int(h) + 1, window - 1))})
        # numpy's vectorised sort of short rows is faster than a partition or pandas' skiplist
        part = self.by_window(x, window, lambda block: np.sort(block, axis=1)[:, kth], len(kth))
        out = []
        for h in spots:
            low = part[:, kth.index(int(h))]
            high = part[:, kth.index(min(int(h) + 1, window - 1))]
            out.append(low + (high - low) * (h - int(h)))
        return out
