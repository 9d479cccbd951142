"""Chronological split: ordered segments, the configured fractions, and an embargo that keeps
every label window inside its own segment."""

from __future__ import annotations

import numpy as np
import pytest

from ashare_autotune.config.schema import LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError
from ashare_autotune.modelling.dataset import build_dataset
from ashare_autotune.modelling.split import split_by_time, walk_forward_windows


def test_segments_are_ordered_sized_and_separated_by_the_embargo() -> None:
    plan = split_by_time(0, 999, (0.6, 0.2, 0.2), embargo=5)
    assert plan.train[0] == 0 and plan.test[1] == 1000
    assert plan.val[0] - plan.train[1] == 5 and plan.test[0] - plan.val[1] == 5
    sizes = [hi - lo for lo, hi in (plan.train, plan.val, plan.test)]
    assert sizes == pytest.approx([594, 198, 198], abs=1)


@pytest.mark.parametrize(("min_days", "max_days"), [(3, 5), (1, 10), (5, 5)])
def test_no_label_window_crosses_a_segment_boundary(
    small_market: Market, min_days: int, max_days: int
) -> None:
    ds = build_dataset(
        small_market, None, LabelConfig(min_days, max_days, 0.04), SplitConfig(embargo=max_days)
    )
    masks = ds.plan.masks(ds.frame["day"].to_numpy())
    day = ds.frame["day"].to_numpy()
    for earlier, later in (("train", "val"), ("val", "test")):
        last_label_day = day[masks[earlier]].max() + max_days  # furthest close a label reads
        assert last_label_day < day[masks[later]].min()
    assert not np.any(masks["train"] & masks["val"]) and not np.any(masks["val"] & masks["test"])
    dropped = ~(masks["train"] | masks["val"] | masks["test"])
    assert len(np.unique(day[dropped])) == 2 * max_days  # exactly the embargo days


def test_too_short_a_history_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="too few for a train/val/test split"):
        split_by_time(0, 30, (0.6, 0.2, 0.2), embargo=5)


def test_walk_forward_windows_are_embargoed_and_their_tests_consecutive() -> None:
    windows = walk_forward_windows(0, 999, (0.6, 0.2, 0.2), embargo=5, n_windows=3)
    assert len(windows) == 3
    for w in windows:
        assert w.val[0] - w.train[1] == 5 and w.test[0] - w.val[1] == 5
        assert w.train[1] - w.train[0] == windows[0].train[1] - windows[0].train[0]
    assert windows[0].train[0] == 0 and windows[-1].test[1] == 1000
    for before, after in zip(windows, windows[1:], strict=False):
        assert after.test[0] == before.test[1]  # consecutive, non-overlapping test periods
        assert after.train[0] > before.train[0]  # the window rolls forward


def test_walk_forward_dataset_uses_the_last_window_as_its_plan(small_market: Market) -> None:
    split = SplitConfig(kind="walk_forward", n_windows=2)
    ds = build_dataset(small_market, None, LabelConfig(), split)
    assert len(ds.windows) == 2 and ds.plan == ds.windows[-1]
    first = ds.window(0)
    assert first.date_range("test")[1] < ds.date_range("test")[0]
    assert len(first.segment("train")[0]) > 0


def test_too_few_days_for_the_walk_forward_windows_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="walk-forward windows"):
        walk_forward_windows(0, 99, (0.6, 0.2, 0.2), embargo=5, n_windows=6)
