"""Chronological split: ordered segments, the configured fractions, and an embargo that keeps
every label window inside its own segment."""

from __future__ import annotations

import numpy as np
import pytest

from ashare_autotune.config import LabelConfig, SplitConfig
from ashare_autotune.data import Market
from ashare_autotune.dataset import build_dataset
from ashare_autotune.errors import DataError
from ashare_autotune.split import split_by_time


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
