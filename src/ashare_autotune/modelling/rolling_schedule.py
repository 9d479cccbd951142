"""The rolling retrain's schedule: which trading days each window trains on, early-stops on and
scores. Pure: day numbers of a trading calendar in, windows out.

Window k scores the trading days of its step [s, e). Its labels must be known before s: the
last validation day is s - 1 - embargo (a label looks `embargo` = `label.max_days` days
ahead), its validation holds `val_days` days, and its training rows end `embargo` days before
the validation starts (as the single split's segments). An expanding window trains from the
first labelled day; a sliding one from `train_years` calendar years before s.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ashare_autotune.config.rolling import STEP_MONTHS, RollingConfig, WindowKind
from ashare_autotune.errors import ConfigError


@dataclass(frozen=True)
class RollWindow:
    """One refit: half-open [start, stop) ranges of trading-day numbers."""

    k: int  # 1, 2, ... oldest first
    train: tuple[int, int]
    val: tuple[int, int]
    score: tuple[int, int]
    tune_round: int  # the study whose best parameters it uses (0: the first window's)

    def fit_span(self, refit_on_val: bool) -> tuple[int, int]:
        """The days whose labels the window's final model was trained on."""
        return (self.train[0], self.val[1] if refit_on_val else self.train[1])


def step_starts(start: str, end: str, step: str) -> list[pd.Timestamp]:
    """The calendar dates each step begins on: `start`, then every `step` after it, up to
    `end` (inclusive); and the day after `end` last (where the last step stops)."""
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    months = STEP_MONTHS[step]
    dates = []
    k = 0
    while (date := first + pd.DateOffset(months=months * k)) <= last:
        dates.append(date)
        k += 1
    return [*dates, last + pd.Timedelta(days=1)]


def rolling_windows(
    calendar: pd.DatetimeIndex,
    first_day: int,
    last_day: int,
    cfg: RollingConfig,
    embargo: int,
) -> list[RollWindow]:
    """The windows of `cfg` over the labelled days [first_day, last_day] of `calendar`.

    Args:
        calendar: the trading calendar (day number = position).
        first_day, last_day: inclusive day numbers of the candidate rows.
        cfg: the `rolling` group.
        embargo: trading days between training, validation and the scored step
            (`label.max_days`).

    Raises:
        ConfigError: one line naming `rolling.start` (no scored day in the data, or too little
            training data before the first window) or `rolling.train_years`.
    """
    bounds = [int(calendar.searchsorted(d)) for d in step_starts(cfg.start, cfg.end, cfg.step)]
    bounds = [min(max(b, first_day), last_day + 1) for b in bounds]
    steps = [(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]
    if not steps:
        span = f"{calendar[first_day]:%Y%m%d}..{calendar[last_day]:%Y%m%d}"
        raise ConfigError(
            f"config key 'rolling.start'={cfg.start!r}: no candidate day of the data ({span}) "
            f"in rolling.start..rolling.end ({cfg.start}..{cfg.end})"
        )
    windows = []
    for k, (lo, hi) in enumerate(steps, start=1):
        val = (lo - embargo - cfg.val_days, lo - embargo)
        train = (_train_start(calendar, first_day, lo, cfg), val[0] - embargo)
        _check_train(calendar, k, train, cfg)
        rnd = (k - 1) // cfg.retune_every if cfg.retune_every else 0
        windows.append(RollWindow(k, train, val, (lo, hi), rnd))
    return windows


def _train_start(calendar: pd.DatetimeIndex, first_day: int, lo: int, cfg: RollingConfig) -> int:
    if cfg.window == WindowKind.expanding:
        return first_day
    since = calendar[lo] - pd.DateOffset(months=round(12 * cfg.train_years))
    return max(first_day, int(calendar.searchsorted(since)))


def _check_train(
    calendar: pd.DatetimeIndex, k: int, train: tuple[int, int], cfg: RollingConfig
) -> None:
    n = train[1] - train[0]
    if n >= cfg.min_train_days:
        return
    key, value = (
        ("rolling.start", cfg.start) if k == 1 else ("rolling.train_years", cfg.train_years)
    )
    first = f"{calendar[max(train[0], 0)]:%Y%m%d}"
    raise ConfigError(
        f"config key '{key}'={value!r}: window {k} has {max(n, 0)} training days from {first} "
        f"(rolling.min_train_days={cfg.min_train_days}, after rolling.val_days={cfg.val_days} "
        "and two embargoes of label.max_days): start later or load earlier data"
    )


def span_dates(calendar: pd.DatetimeIndex, span: tuple[int, int]) -> tuple[str, str]:
    """First and last trading day (YYYYMMDD) of a half-open day range."""
    return f"{calendar[span[0]]:%Y%m%d}", f"{calendar[span[1] - 1]:%Y%m%d}"
