"""Technical features over the whole panel, vectorised, float32, using data up to day T only.

Rows are sorted by (ts_code, trade_date). A rolling window over a stock's own rows is computed on
the flat arrays with shifted slices (k = 0..w-1) and masked where the window would reach into the
previous stock, so every value at row T is an exact function of that stock's rows T-w+1..T: no
Python loop over stocks and no state carried from one stock, or one day, to the next.
Windows count the stock's own trading rows, so a suspension is skipped, not filled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

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
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Compute features for every (ts_code, trade_date) row.

    Each feature is computed in float64 over the whole panel and stored as float32 right away,
    so the float64 copies never pile up (at 10M rows, 18 of them would be 1.4 GB).

    Args:
        daily: bars sorted by (ts_code, trade_date) with open, high, low, close, vol.
        index: market index bars with trade_date and close.
        stock_basic: ts_code and industry.
        names: features to keep (default: all of `FEATURES`).
        rows: optional boolean mask of the rows to return (e.g. the labelled ones); every row
            is still used for the rolling windows and the industry means.

    Returns:
        ts_code, trade_date and one float32 column per feature, in `daily`'s row order.
    """
    names = _check_names(names)
    keep = np.ones(len(daily), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    block = np.empty((len(names), int(keep.sum())), dtype=np.float32)
    for name, values in _compute(daily, index, stock_basic, set(names)):
        values[~np.isfinite(values)] = np.nan
        block[names.index(name)] = values[keep]
    out = pd.DataFrame(block.T, columns=names, copy=False)  # one float32 block, no copy
    for pos, key in enumerate(KEYS):
        out.insert(pos, key, daily[key].array[keep])  # .array keeps ts_code categorical
    return out


def _check_names(names: list[str] | None) -> list[str]:
    names = list(names or FEATURES)
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        from ashare_autotune.errors import ConfigError

        raise ConfigError(
            f"config key 'features.names': unknown feature(s) {unknown}; known: {list(FEATURES)}"
        )
    return names


def _compute(
    daily: pd.DataFrame, index: pd.DataFrame, stock_basic: pd.DataFrame, wanted: set[str]
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, float64 values over all rows) for each wanted feature, one at a time."""
    codes, stocks = _stock_codes(daily)
    pos = group_position(codes)
    close = daily["close"].to_numpy(np.float64)
    ret_1 = _momentum(close, pos, 1)
    mom_5 = _momentum(close, pos, 5)
    lazy: dict[str, Callable[[], np.ndarray]] = {
        "ret_1": ret_1.copy,
        "mom_5": mom_5.copy,
        "volatility_10": lambda: rolling_std(ret_1, pos, 10),
        "volume_ratio_5": lambda: _volume_ratio(daily["vol"].to_numpy(np.float64), pos),
        "rsi_14": lambda: _rsi(close, pos),
        "range_1": lambda: (_col(daily, "high") - _col(daily, "low")) / close,
        "close_pos": lambda: _close_pos(close, _col(daily, "high"), _col(daily, "low")),
        "dist_high_20": lambda: close / rolling_max(close, pos, 20) - 1,
    }
    for w in (5, 10, 20):
        lazy[f"ma{w}_ratio"] = partial(_ma_ratio, close, pos, w)
        if w != 5:
            lazy[f"mom_{w}"] = partial(_momentum, close, pos, w)
    for name, make in lazy.items():
        if name in wanted:
            yield name, make()
    if wanted & {"mkt_ret_1", "mkt_mom_5"}:
        market = _market_features(daily["trade_date"], index)
        yield from ((n, v) for n, v in market.items() if n in wanted)
    if wanted & {"ind_ret_1", "ind_mom_5", "ret_rel_ind"}:
        industry = _industry_features(
            codes, stocks, daily, stock_basic, {"ret_1": ret_1, "mom_5": mom_5}
        )
        yield from ((n, v) for n, v in industry.items() if n in wanted)


def _stock_codes(daily: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """Integer code of each row's stock and the ts_code of each integer code."""
    ts_code = daily["ts_code"]
    if isinstance(ts_code.dtype, pd.CategoricalDtype):
        return ts_code.cat.codes.to_numpy(), ts_code.cat.categories
    codes, uniques = pd.factorize(ts_code)
    return codes, pd.Index(uniques)


def _col(daily: pd.DataFrame, name: str) -> np.ndarray:
    return daily[name].to_numpy(np.float64)


def _ma_ratio(close: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    return close / rolling_mean(close, pos, window) - 1


def _momentum(close: np.ndarray, pos: np.ndarray, window: int) -> np.ndarray:
    return close / lagged(close, pos, window) - 1


def _volume_ratio(vol: np.ndarray, pos: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return vol / rolling_mean(vol, pos, 5, lag=1)


def _close_pos(close: np.ndarray, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (close - low) / span, 0.5)


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
    codes: np.ndarray,
    stocks: pd.Index,
    daily: pd.DataFrame,
    stock_basic: pd.DataFrame,
    cols: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    # industry looked up once per stock, not once per row (10M strings at whole-market scale)
    industry = pd.Series(stocks.astype(str)).map(stock_basic.set_index("ts_code")["industry"])
    group_of_stock, _ = pd.factorize(industry)  # -1 for missing industry
    group = group_of_stock[codes]
    day, _ = pd.factorize(daily["trade_date"])
    n_groups = max(int(group.max()) + 1, 1)
    ind_ret = _group_mean(cols["ret_1"], day, group, n_groups)
    return {
        "ind_ret_1": ind_ret,
        "ind_mom_5": _group_mean(cols["mom_5"], day, group, n_groups),
        "ret_rel_ind": cols["ret_1"] - ind_ret,
    }
