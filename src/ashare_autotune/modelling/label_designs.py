"""Label designs on the tradable entry (`label.kind`): touch, barrier and excess.

- `touch`: the highest close over T+min_days..T+max_days reaches entry * (1 + min_return)
  (`labels.make_labels`).
- `barrier`: a close over T+min_days..T+max_days reaches entry * (1 + min_return) before any
  close from T+1 on falls to entry * (1 - stop_loss); a day reaching both counts as a loss
  (with closes one day cannot reach both: the rule settles ties of position). The stop watches
  from the first close after the signal, not only inside the take-profit window: a position
  bought at T+1's open that closes 5% down on T+1 is the hole the label must call 0 (with the
  stop only inside T+3..T+5, barrier and touch labels differed on 0.7% of rows of the
  300-stock sample, a 7% swing inside two days being rare).
- `excess`: the stock's return from the entry to its last close inside the horizon (where it
  has one, the project's forward return) minus the benchmark index's return over the same days >=
  min_return, so a rising market does not make every stock positive.

All three share the entry (close[T] or open[T+1], `labels.entry_prices`) and the rule for an
observed horizon: a row is labelled (0 or 1) only when T+max_days is inside the data, the stock
has a close inside the horizon and its entry fills; no bar after T+max_days decides it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.labels import (
    _ahead_within,
    day_numbers,
    entry_prices,
    horizon_in_data,
    make_labels,
)

log = logging.getLogger(__name__)
KINDS = ("touch", "barrier", "excess")


def make_label(
    kind: str,
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    horizon: tuple[int, int],
    min_return: float,
    stop_loss: float = 0.0,
    benchmark: pd.DataFrame | pd.Series | None = None,
    entry: str = "close",
    open_limit_up: np.ndarray | None = None,
) -> pd.Series:
    """The label of one design for every row of `daily`.

    Args:
        kind: "touch", "barrier" or "excess".
        daily: bars sorted by (ts_code, trade_date) with close (and open for next_open).
        calendar: the market trading days (`labels.trading_calendar`).
        horizon: (min_days, max_days) in trading days.
        min_return: the required gain (touch, barrier) or excess gain (excess), e.g. 0.04.
        stop_loss: the loss that ends a barrier label as 0, > 0 (barrier only).
        benchmark: the benchmark's close and open per calendar day (`benchmark_levels`;
            excess only).
        entry: "close" or "next_open".
        open_limit_up: per row, the bar opened at its limit-up price (next_open only).

    Returns:
        float32 Series aligned with `daily` holding 1, 0 or NaN (no label).
    """
    lo, hi = horizon
    if kind == "touch":
        return make_labels(daily, calendar, lo, hi, min_return, entry, open_limit_up)
    if kind == "barrier":
        return barrier_labels(
            daily, calendar, horizon, min_return, stop_loss, entry, open_limit_up
        )
    if kind == "excess":
        if benchmark is None:
            raise ConfigError("config key 'label.benchmark': an excess label needs its index")
        return excess_labels(daily, calendar, horizon, min_return, benchmark, entry, open_limit_up)
    raise ConfigError(f"config key 'label.kind'={kind!r}: must be {', '.join(KINDS)}")


def barrier_labels(
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    horizon: tuple[int, int],
    min_return: float,
    stop_loss: float,
    entry: str = "close",
    open_limit_up: np.ndarray | None = None,
) -> pd.Series:
    """1 when a close over T+min_days..T+max_days reaches +min_return (from the entry price)
    before any close over T+1..T+max_days falls to -stop_loss, else 0; NaN without an observed
    horizon.

    Args:
        daily: bars sorted by (ts_code, trade_date) with close (and open for next_open).
        calendar: the market trading days.
        horizon: (min_days, max_days) in trading days.
        min_return: the take-profit gain, e.g. 0.04.
        stop_loss: the stop-loss as a positive fraction, e.g. 0.03.
        entry: "close" or "next_open".
        open_limit_up: per row, the bar opened at its limit-up price (next_open only).

    Returns:
        float32 Series aligned with `daily` holding 1, 0 or NaN.
    """
    if not stop_loss > 0:
        raise ConfigError(f"config key 'label.stop_loss'={stop_loss!r}: must be > 0")
    close = daily["close"].to_numpy(np.float64)
    price = entry_prices(daily, calendar, entry, open_limit_up)
    up, down = price * (1 + min_return), price * (1 - stop_loss)
    n = len(close)
    never = np.iinfo(np.int32).max
    first_up = np.full(n, never, dtype=np.int32)
    first_down = np.full(n, never, dtype=np.int32)
    seen = np.zeros(n, dtype=bool)
    # rows k ahead are k-th later closes of the stock: the first k that hits is the first day
    held = _steps(daily, calendar, 1, horizon[1])
    for (k, window), (_, holding) in zip(_steps(daily, calendar, *horizon), held, strict=True):
        later = close[k:]
        hit_up = window & (later >= up[: n - k]) & (first_up[: n - k] == never)
        hit_down = holding & (later <= down[: n - k]) & (first_down[: n - k] == never)
        first_up[: n - k][hit_up] = k
        first_down[: n - k][hit_down] = k
        seen[: n - k] |= window
    label = (first_up < first_down).astype(np.float32)  # equal only when neither hit: 0
    label[~(_observed(daily, calendar, horizon[1]) & seen) | np.isnan(price)] = np.nan
    return pd.Series(label, index=daily.index, name="label")


def excess_labels(
    daily: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    horizon: tuple[int, int],
    min_return: float,
    benchmark: pd.DataFrame | pd.Series,
    entry: str = "close",
    open_limit_up: np.ndarray | None = None,
) -> pd.Series:
    """1 when the stock's forward return minus the benchmark's over the same days reaches
    min_return, else 0; NaN without an observed horizon or a benchmark close on either day.

    The stock's return runs from the entry to its last close within T+min_days..T+max_days
    (the project's forward return, which exits at the last close within T+1..T+max_days, when
    the stock has a close in the horizon, as every labelled row has); the benchmark's over the
    same span: from its close on T (entry=close) or its open on T+1 (entry=next_open) to its
    close on that exit day, so neither leg counts a move the other does not. Where the index
    has no open on T+1 (no bar that day, or bars without opens) its leg starts at the last
    close before, the only level known then.

    Args:
        daily: bars sorted by (ts_code, trade_date) with close (and open for next_open).
        calendar: the market trading days.
        horizon: (min_days, max_days) in trading days.
        min_return: the required excess return, e.g. 0.04.
        benchmark: the benchmark's close (and open) on each calendar day
            (`benchmark_levels`; a Series: the closes only).
        entry: "close" or "next_open".
        open_limit_up: per row, the bar opened at its limit-up price (next_open only).

    Returns:
        float32 Series aligned with `daily` holding 1, 0 or NaN.
    """
    if isinstance(benchmark, pd.Series):
        benchmark = benchmark.to_frame("close")
    close = daily["close"].to_numpy(np.float64)
    day = day_numbers(daily["trade_date"], calendar)
    n = len(close)
    exit_close = np.full(n, np.nan)
    exit_day = day.copy()
    for k, inside in _steps(daily, calendar, *horizon):  # a later row overrides
        np.copyto(exit_close[: n - k], close[k:], where=inside)
        np.copyto(exit_day[: n - k], day[k:], where=inside)
    bench = benchmark["close"].to_numpy(np.float64)
    price = entry_prices(daily, calendar, entry, open_limit_up)
    start = bench[day] if entry == "close" else _index_entry(benchmark)[day]
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = (exit_close / price - 1) - (bench[exit_day] / start - 1)
    label = (excess >= min_return).astype(np.float32)
    label[~_observed(daily, calendar, horizon[1]) | np.isnan(excess)] = np.nan
    return pd.Series(label, index=daily.index, name="label")


def benchmark_closes(index_bars: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.Series:
    """One index's close on each calendar day, carried forward over days it has no bar (NaN
    before its first bar), so every day looks back only.

    Args:
        index_bars: one index's bars with trade_date (datetime) and close.
        calendar: the market trading days.

    Returns:
        float64 Series indexed by `calendar`.
    """
    closes = index_bars.drop_duplicates("trade_date").set_index("trade_date")["close"]
    return closes.astype(np.float64).sort_index().reindex(calendar, method="ffill")


def benchmark_levels(index_bars: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """One index's close (`benchmark_closes`) and open on each calendar day; the open is NaN
    where the index has no bar that day or its bars have no open.

    Args:
        index_bars: one index's bars with trade_date (datetime), close and optionally open.
        calendar: the market trading days.

    Returns:
        float64 close and open columns indexed by `calendar`.
    """
    levels = benchmark_closes(index_bars, calendar).to_frame("close")
    if "open" not in index_bars.columns:
        log.warning("the benchmark's bars have no open: an excess label's index leg starts at "
                    "the close before the entry")  # fmt: skip
        levels["open"] = np.nan
        return levels
    opens = index_bars.drop_duplicates("trade_date").set_index("trade_date")["open"]
    levels["open"] = opens.astype(np.float64).reindex(calendar)
    return levels


def _index_entry(levels: pd.DataFrame) -> np.ndarray:
    """Per calendar day T, the index level a next-open entry starts from: the open on T+1,
    or where unknown the close on T (carried over days without a bar; NaN on the last day)."""
    close = levels["close"].to_numpy(np.float64)
    opens = (
        levels["open"].to_numpy(np.float64) if "open" in levels else np.full_like(close, np.nan)
    )
    start = close.copy()
    start[:-1] = np.where(np.isfinite(opens[1:]), opens[1:], close[:-1])
    start[-1] = np.nan
    return start


def select_benchmark(index_bars: pd.DataFrame, code: str) -> pd.DataFrame:
    """The bars of index `code` from bars of several indices (ts_code column).

    Raises:
        ConfigError: naming `label.benchmark` when the data has no bar of `code`.
    """
    have = sorted(index_bars["ts_code"].astype(str).unique()) if len(index_bars) else []
    chosen = index_bars[index_bars["ts_code"].astype(str) == code] if have else index_bars
    if chosen.empty:
        raise ConfigError(
            f"config key 'label.benchmark'={code!r}: not in the index data (have {have})"
        )
    return chosen


def _steps(
    daily: pd.DataFrame, calendar: pd.DatetimeIndex, min_days: int, max_days: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(k, whether the row k rows ahead is the same stock's, min_days..max_days trading days
    later) for k = 1..max_days: a stock's closes inside the window are its next rows."""
    codes = daily["ts_code"].cat.codes.to_numpy()
    day = day_numbers(daily["trade_date"], calendar)
    for k in range(1, max_days + 1):
        yield k, _ahead_within(codes, day, k, min_days, max_days)


def _observed(daily: pd.DataFrame, calendar: pd.DatetimeIndex, max_days: int) -> np.ndarray:
    """T+max_days is inside the data (the callers also need a close inside the window)."""
    return horizon_in_data(day_numbers(daily["trade_date"], calendar), calendar, max_days)
