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
