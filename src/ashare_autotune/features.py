"""Technical features over the whole panel, vectorised, float32, using data up to day T only.

Rows are sorted by (ts_code, trade_date). A rolling window over a stock's own rows is computed on
the flat arrays with shifted slices (k = 0..w-1) and masked where the window would reach into the
previous stock, so every value at row T is an exact function of that stock's rows T-w+1..T: no
Python loop over stocks and no state carried from one stock, or one day, to the next.
Windows count the stock's own trading rows, so a suspension is skipped, not filled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

KEYS = ("ts_code", "trade_date")
# name -> one-line meaning; the order is the model's column order
FEATURES: dict[str, str] = {
    "ret_1": "close / previous close - 1",
    "ma5_ratio": "close / MA5(close) - 1",
    "ma10_ratio": "close / MA10(close) - 1",
    "ma20_ratio": "close / MA20(close) - 1",
    "mom_5": "close / close 5 rows ago - 1",
    "mom_10": "close / close 10 rows ago - 1",
    "mom_20": "close / close 20 rows ago - 1",
    "volatility_10": "std of daily returns over 10 rows",
    "volume_ratio_5": "vol / mean vol of the 5 previous rows",
    "rsi_14": "RSI over 14 rows (simple averages of gains and losses), 0..100",
    "range_1": "(high - low) / close of the day",
    "close_pos": "(close - low) / (high - low) of the day, 0.5 when flat",
    "dist_high_20": "close / max close of 20 rows - 1",
    "mkt_ret_1": "index pct change of the day",
    "mkt_mom_5": "index 5-day momentum",
    "ind_ret_1": "mean ret_1 of the stock's industry that day (NaN without industry)",
    "ind_mom_5": "mean mom_5 of the stock's industry that day (NaN without industry)",
    "ret_rel_ind": "ret_1 - ind_ret_1",
}


def group_position(codes: np.ndarray) -> np.ndarray:
    """Position of each row within its run of equal codes (0 for a stock's first row)."""
    n = len(codes)
    idx = np.arange(n)
    starts = np.ones(n, dtype=bool)
    starts[1:] = codes[1:] != codes[:-1]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted down by k rows, NaN-filled (the caller masks rows of a previous stock)."""
    out = np.full(x.shape, np.nan, dtype=np.float64)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _rolling(
    x: np.ndarray,
    pos: np.ndarray,
    window: int,
    reduce: Callable[[np.ndarray, np.ndarray], np.ndarray],
    start: float,
    lag: int = 0,
) -> np.ndarray:
    acc = np.full(x.shape, start, dtype=np.float64)
    for k in range(lag, lag + window):
        acc = reduce(acc, shift(x, k))
    acc[pos < window + lag - 1] = np.nan
    return acc


def rolling_mean(x: np.ndarray, pos: np.ndarray, window: int, lag: int = 0) -> np.ndarray:
    """Mean of x over rows T-lag-window+1..T-lag of the same stock (NaN when not enough rows)."""
    return _rolling(x, pos, window, np.add, 0.0, lag) / window


def rolling_max(x: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    """Max of x over the last `window` rows of the same stock."""
    return _rolling(x, pos, window, np.fmax, -np.inf)


def rolling_std(x: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation over the last `window` rows (two-pass, float64)."""
    mean = rolling_mean(x, pos, window)
    sq = np.zeros(x.shape, dtype=np.float64)
    for k in range(window):
        sq += (shift(x, k) - mean) ** 2
    return np.sqrt(sq / (window - 1))


def lagged(x: np.ndarray, pos: np.ndarray, k: int) -> np.ndarray:
    """x of the same stock k rows earlier (NaN for the stock's first k rows)."""
    out = shift(x, k)
    out[pos < k] = np.nan
    return out


def _rsi(close: np.ndarray, pos: np.ndarray, window: int = 14) -> np.ndarray:
    diff = close - lagged(close, pos, 1)
    gain = rolling_mean(np.clip(diff, 0, None), pos, window)
    loss = rolling_mean(np.clip(-diff, 0, None), pos, window)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100 * gain / total, 50.0)
    rsi[np.isnan(total)] = np.nan  # not enough history yet
    return rsi


def _group_mean(
    values: np.ndarray, day: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """Mean of values over rows sharing (day, group), broadcast back; NaN where group < 0."""
    ok = (group >= 0) & np.isfinite(values)
    key = day.astype(np.int64) * n_groups + np.maximum(group, 0)
    size = int(key.max()) + 1 if len(key) else 0
    sums = np.bincount(key[ok], weights=values[ok], minlength=size)
    counts = np.bincount(key[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    out = mean[key]
    out[group < 0] = np.nan
    return out


def build_features(
    daily: pd.DataFrame,
    index: pd.DataFrame,
    stock_basic: pd.DataFrame,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """Compute features for every (ts_code, trade_date) row.

    Args:
        daily: bars sorted by (ts_code, trade_date) with open, high, low, close, vol.
        index: market index bars with trade_date and close.
        stock_basic: ts_code and industry.
        names: features to keep (default: all of `FEATURES`).

    Returns:
        ts_code, trade_date and one float32 column per feature, in `daily`'s row order.
    """
    names = list(names or FEATURES)
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        from ashare_autotune.errors import ConfigError

        raise ConfigError(
            f"config key 'features.names': unknown feature(s) {unknown}; known: {list(FEATURES)}"
        )
    codes = (
        daily["ts_code"].cat.codes.to_numpy()
        if hasattr(daily["ts_code"], "cat")
        else pd.factorize(daily["ts_code"])[0]
    )
    pos = group_position(codes)
    close = daily["close"].to_numpy(np.float64)
    cols: dict[str, np.ndarray] = {}
    cols["ret_1"] = close / lagged(close, pos, 1) - 1
    for w in (5, 10, 20):
        cols[f"ma{w}_ratio"] = close / rolling_mean(close, pos, w) - 1
        cols[f"mom_{w}"] = close / lagged(close, pos, w) - 1
    cols["volatility_10"] = rolling_std(cols["ret_1"], pos, 10)
    vol = daily["vol"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["volume_ratio_5"] = vol / rolling_mean(vol, pos, 5, lag=1)
    cols["rsi_14"] = _rsi(close, pos)
    high, low = daily["high"].to_numpy(np.float64), daily["low"].to_numpy(np.float64)
    cols["range_1"] = (high - low) / close
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["close_pos"] = np.where(span > 0, (close - low) / span, 0.5)
    cols["dist_high_20"] = close / rolling_max(close, pos, 20) - 1
    cols.update(_market_features(daily["trade_date"], index))
    cols.update(_industry_features(daily, stock_basic, cols))
    out = daily.loc[:, list(KEYS)].copy()
    for name in names:
        values = cols[name]
        values[~np.isfinite(values)] = np.nan
        out[name] = values.astype(np.float32)
    return out


def _market_features(dates: pd.Series, index: pd.DataFrame) -> dict[str, np.ndarray]:
    idx = index.sort_values("trade_date")
    level = idx["close"].to_numpy(np.float64)
    ret = level / np.r_[np.nan, level[:-1]] - 1
    mom5 = level / np.r_[np.full(5, np.nan), level[:-5]] - 1
    where = pd.Index(idx["trade_date"]).get_indexer(dates)
    found = where >= 0
    out = {}
    for name, series in (("mkt_ret_1", ret), ("mkt_mom_5", mom5)):
        values = np.full(len(dates), np.nan)
        values[found] = series[where[found]]
        out[name] = values
    return out


def _industry_features(
    daily: pd.DataFrame, stock_basic: pd.DataFrame, cols: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    industry = daily["ts_code"].astype(str).map(stock_basic.set_index("ts_code")["industry"])
    group, _ = pd.factorize(industry)  # -1 for missing industry
    day, _ = pd.factorize(daily["trade_date"])
    n_groups = max(int(group.max()) + 1, 1)
    ind_ret = _group_mean(cols["ret_1"], day, group, n_groups)
    return {
        "ind_ret_1": ind_ret,
        "ind_mom_5": _group_mean(cols["mom_5"], day, group, n_groups),
        "ret_rel_ind": cols["ret_1"] - ind_ret,
    }
