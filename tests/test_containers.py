"""The Market and Dataset containers: what they keep and what they let go."""

from __future__ import annotations

import pandas as pd

from ashare_autotune.config.schema import LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.modelling.dataset import build_dataset, split_off_train


def test_market_without_bars_keeps_its_description_and_drops_the_rows(
    small_market: Market,
) -> None:
    light = small_market.without_bars()
    assert light.describe() == small_market.describe()
    assert light.n_stocks == small_market.n_stocks == 40
    assert len(light.daily) == 0 and list(light.daily.columns) == list(small_market.daily.columns)
    assert len(small_market.daily) > 0  # the original is untouched


def test_splitting_off_a_segment_moves_its_rows_and_keeps_the_others(
    small_market: Market,
) -> None:
    ds = build_dataset(small_market, None, LabelConfig(), SplitConfig(embargo=5))
    train, val, test = (
        ds.segment_rows(n).reset_index(drop=True) for n in ("train", "val", "test")
    )
    before = ds.frame.copy()
    moved, rest = split_off_train(ds)
    pd.testing.assert_frame_equal(moved, train)
    assert len(rest.segment_rows("train")) == 0
    pd.testing.assert_frame_equal(rest.segment_rows("val").reset_index(drop=True), val)
    pd.testing.assert_frame_equal(rest.segment_rows("test").reset_index(drop=True), test)
    pd.testing.assert_frame_equal(ds.frame, before)  # the dataset given is untouched
