"""Objective targets: the label for binary; the forward return ranked (or z-scored) within its
day for regression; the day's forward-return quantile as a ranker's relevance, with rows put
in day order (queries contiguous). Each target reads its own day only; rows without a label
or a forward return are not trained on; bad settings are one line naming the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.targets import (
    day_rank,
    day_relevance,
    day_zscore,
    group_order,
    group_sizes,
    make_target,
)
from ashare_autotune.models.base import Rows, by_group

NAN = np.nan


def _frame() -> pd.DataFrame:
    """Two days of candidates, sorted by stock then day as a dataset's frame is."""
    return pd.DataFrame(
        {
            "ts_code": ["A", "A", "B", "B", "C", "C", "D", "D"],
            "day": [1, 2, 1, 2, 1, 2, 1, 2],
            "label": [1.0, 0.0, 0.0, NAN, 1.0, 0.0, 0.0, 1.0],
            "fwd_return": [0.05, -0.02, -0.01, 0.30, 0.02, 0.01, NAN, 0.04],
        }
    )


def test_binary_learns_the_label_itself() -> None:
    frame = _frame()
    np.testing.assert_array_equal(make_target(frame, "binary"), frame["label"])


def test_regression_ranks_the_forward_return_within_its_day_in_0_1() -> None:
    # day 1 knows A 0.05, B -0.01, C 0.02 (D has no return): ranks 3, 1, 2 of 3 -> 1, 0, 0.5
    # day 2 knows A -0.02, C 0.01, D 0.04 (B has no label): 0, 0.5, 1
    target = make_target(_frame(), "regression", "rank")
    np.testing.assert_allclose(target, [1.0, 0.0, 0.0, NAN, 0.5, 0.5, NAN, 1.0])


def test_regression_without_normalisation_is_the_forward_return() -> None:
    target = make_target(_frame(), "regression", "none")
    np.testing.assert_allclose(target, [0.05, -0.02, -0.01, NAN, 0.02, 0.01, NAN, 0.04])


def test_zscore_centres_and_scales_each_day() -> None:
    # day 1: 0.05, -0.01, 0.02: mean 0.02, std (ddof 0) sqrt(0.0018 / 3) = 0.024495
    target = make_target(_frame(), "regression", "zscore")
    std = np.sqrt((0.03**2 + 0.03**2 + 0) / 3)
    assert target[[0, 2, 4]] == pytest.approx([0.03 / std, -0.03 / std, 0.0])
    assert day_zscore(np.array([0.1, 0.1]), np.array([5, 5])).tolist() == [0.0, 0.0]


def test_relevance_is_the_days_quantile_bin() -> None:
    days = np.repeat([1, 2], 5)
    values = np.array([0.5, 0.1, 0.3, 0.2, 0.4, -1.0, -2.0, -3.0, -4.0, -5.0])
    # 5 rows a day, 5 bins: the ranks 0..4 themselves; 2 bins: the lower half 0, upper 1
    assert day_relevance(values, days, 5).tolist() == [4, 0, 2, 1, 3, 4, 3, 2, 1, 0]
    assert day_relevance(values, days, 2).tolist() == [1, 0, 1, 0, 1, 1, 1, 1, 0, 0]
    target = make_target(_frame(), "lambdarank", bins=3)
    np.testing.assert_allclose(target, [2, 0, 0, NAN, 1, 1, NAN, 2])


def test_a_rank_of_one_row_or_ties() -> None:
    assert day_rank(np.array([0.3]), np.array([1])).tolist() == [0.5]
    assert day_rank(np.array([0.1, 0.1, 0.2]), np.array([1, 1, 1])).tolist() == [0.25, 0.25, 1]


@pytest.mark.parametrize("objective", ["regression", "lambdarank"])
def test_a_days_target_does_not_move_when_another_days_returns_change(objective: str) -> None:
    frame = _frame()
    before = make_target(frame, objective, "zscore")
    later = frame.assign(fwd_return=frame["fwd_return"].where(frame["day"] == 1, [9.0] * 8))
    after = make_target(later, objective, "zscore")
    day1 = (frame["day"] == 1).to_numpy()
    np.testing.assert_array_equal(before[day1], after[day1])
    assert not np.allclose(before[~day1], after[~day1], equal_nan=True)


def test_rows_in_day_order_are_contiguous_queries_read_back_in_that_order() -> None:
    frame = _frame().assign(x=np.arange(8.0))
    days = frame["day"].to_numpy()
    assert group_order(days).tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert group_sizes(np.array([1, 1, 1, 2, 2, 5])).tolist() == [3, 2, 1]
    asked: list[list[int]] = []

    def read(at: np.ndarray) -> pd.DataFrame:
        asked.append(at.tolist())
        return frame.iloc[at, [frame.columns.get_loc("x")]]

    label = frame["label"].to_numpy()
    ranked = by_group(Rows(read, label, np.array([0, 1, 2, 3, 5, 7]), days))
    assert ranked.rows.tolist() == [0, 2, 1, 3, 5, 7]
    assert group_sizes(days[ranked.rows]).tolist() == [2, 4]
    assert ranked.read(ranked.rows[1:4])["x"].tolist() == [2.0, 1.0, 3.0]
    assert asked == [[1, 2, 3]]  # the source is asked in increasing order


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("relevance_bins", 1, "config key 'model.relevance_bins'=1: must be in 2..31"),
        ("relevance_bins", 32, "config key 'model.relevance_bins'=32: must be in 2..31"),
        ("target_norm", "minmax", "config key 'model.target_norm'='minmax'"),
    ],
)
def test_bad_target_settings_are_one_line_naming_the_key(
    field: str, value: object, text: str
) -> None:
    with pytest.raises(ConfigError) as err:
        ModelConfig(**{field: value})
    assert str(err.value).startswith(text) and "\n" not in str(err.value)
