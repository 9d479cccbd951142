"""Chronological train/validation/test split with an embargo between segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ashare_autotune.errors import DataError

SEGMENTS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitPlan:
    """Half-open ranges [start, stop) of trading-day numbers for each segment."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    embargo: int

    def masks(self, day: np.ndarray) -> dict[str, np.ndarray]:
        """Boolean row masks for each segment, given each row's trading-day number."""
        return {name: (day >= lo) & (day < hi) for name, (lo, hi) in self.ranges().items()}

    def ranges(self) -> dict[str, tuple[int, int]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_by_time(
    first_day: int, last_day: int, fractions: tuple[float, float, float], embargo: int
) -> SplitPlan:
    """Cut the labelled trading days [first_day, last_day] into train/val/test.

    The segments take the given fractions of the days; `embargo` days after train and after
    validation are left out, so a label looking up to `embargo` days ahead from the last day of a
    segment ends before the next segment's first day.

    Args:
        first_day, last_day: inclusive trading-day numbers of the labelled rows.
        fractions: (train, val, test), summing to 1.
        embargo: trading days dropped between segments (>= the label's max_days).

    Returns:
        The `SplitPlan`.
    """
    n_days = last_day - first_day + 1
    usable = n_days - 2 * embargo
    if usable < 3 * 10:
        raise DataError(
            f"only {n_days} labelled trading days: too few for a train/val/test split with "
            f"embargo {embargo}; use a longer date range (data.start/data.end)"
        )
    n_train = int(round(usable * fractions[0]))
    n_val = int(round(usable * fractions[1]))
    train = (first_day, first_day + n_train)
    val = (train[1] + embargo, train[1] + embargo + n_val)
    test = (val[1] + embargo, last_day + 1)
    return SplitPlan(train=train, val=val, test=test, embargo=embargo)


def walk_forward_windows(
    first_day: int,
    last_day: int,
    fractions: tuple[float, float, float],
    embargo: int,
    n_windows: int,
) -> list[SplitPlan]:
    """Cut [first_day, last_day] into `n_windows` rolling train/val/test windows.

    Every window has the same train and validation length (the fractions of one window) and an
    embargo after train and after validation; each window starts one test length after the one
    before, so the test segments are consecutive and together cover the end of the data (the
    last one also takes the remainder days).

    Args:
        first_day, last_day: inclusive trading-day numbers of the labelled rows.
        fractions: (train, val, test) of one window, summing to 1.
        embargo: trading days dropped between segments (>= the label's max_days).
        n_windows: how many windows (>= 2).

    Returns:
        The windows, oldest first.
    """
    n_days = last_day - first_day + 1
    usable = (n_days - 2 * embargo) / (1 + (n_windows - 1) * fractions[2])
    n_train = int(round(usable * fractions[0]))
    n_val = int(round(usable * fractions[1]))
    n_test = (n_days - n_train - n_val - 2 * embargo) // n_windows
    if min(n_train, n_val, n_test) < 10:
        raise DataError(
            f"only {n_days} labelled trading days: too few for {n_windows} walk-forward windows "
            f"(train {n_train}, val {n_val}, test {n_test} days each, embargo {embargo}); use "
            "a longer date range (data.start/data.end) or fewer windows (split.n_windows)"
        )
    windows = []
    for k in range(n_windows):
        start = first_day + k * n_test
        train = (start, start + n_train)
        val = (train[1] + embargo, train[1] + embargo + n_val)
        stop = last_day + 1 if k == n_windows - 1 else val[1] + embargo + n_test
        windows.append(
            SplitPlan(train=train, val=val, test=(val[1] + embargo, stop), embargo=embargo)
        )
    return windows
