"""Feature sets (`features` group): what each set holds, clear errors, the chunked build equal
to the whole-panel one, ranks within the day, and no look-ahead through the dataset builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.features import FeaturesConfig
from ashare_autotune.config.schema import AppConfig, LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling import alpha158, feature_sets
from ashare_autotune.modelling.ashare_features import FEATURES as ASHARE
from ashare_autotune.modelling.ashare_features import cross_sectional_ranks
from ashare_autotune.modelling.dataset import build_dataset
from ashare_autotune.modelling.feature_sets import build_feature_set, feature_names
from ashare_autotune.modelling.features import FEATURES as BASIC

RANKED = ["mom_5", "STD20", "log_amount_20"]


def test_each_feature_group_option_composes_to_its_sets(
    compose_app: Callable[..., AppConfig], small_market: Market
) -> None:
    daily = small_market.daily
    names = {
        option: feature_names(compose_app(f"features={option}").features, daily)
        for option in ("basic", "alpha158", "ashare", "full")
    }
    assert names["basic"] == list(BASIC)
    assert feature_names(compose_app().features, daily) == names["full"]  # the default
    assert names["alpha158"] == list(alpha158.ALPHA158)
    assert names["ashare"] == list(ASHARE)  # no daily_basic columns in this data
    assert names["full"] == [*BASIC, *alpha158.ALPHA158, *ASHARE]
    assert len(names["full"]) == 18 + 158 + 16


def test_daily_basic_columns_become_features_when_the_data_has_them(
    small_market: Market,
) -> None:
    daily = small_market.daily.assign(turnover_rate=np.float32(1.5), circ_mv=np.float32(1e5))
    names = feature_names(FeaturesConfig(sets=["ashare"]), daily)
    assert names[-2:] == ["turnover_rate", "log_circ_mv"]


def test_names_narrow_the_sets_and_cs_rank_adds_rank_columns(small_market: Market) -> None:
    cfg = FeaturesConfig(sets=["full"], names=["rsi_14", "KLEN"], cs_rank=["mom_5"])
    assert feature_names(cfg, small_market.daily) == ["rsi_14", "KLEN", "mom_5_csrank"]


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        (lambda: FeaturesConfig(sets=["technical"]), "features.sets"),
        (lambda: FeaturesConfig(sets=["basic"], names=["KLEN"]), "features.names"),
        (lambda: FeaturesConfig(sets=["alpha158"], cs_rank=["nope"]), "features.cs_rank"),
    ],
)
def test_unknown_set_or_feature_is_a_one_line_error_naming_the_key(
    cfg: Callable[[], FeaturesConfig], key: str, small_market: Market
) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}'") as err:
        feature_names(cfg(), small_market.daily)
    assert "\n" not in str(err.value)


def test_a_models_feature_list_is_rebuilt_from_every_set(small_market: Market) -> None:
    names = ["ret_1", "KMID", "limit_up_5", "STD20_csrank"]
    frame = build_feature_set(small_market, None, names)
    assert list(frame.columns) == ["ts_code", "trade_date", *names]
    with pytest.raises(ConfigError, match="features.names"):
        build_feature_set(small_market, None, ["ret_1", "made_up"])


def test_chunks_of_stocks_give_the_whole_panels_values(
    small_market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alpha158 runs per chunk of whole stocks; the kept rows equal the whole-panel values."""
    keep = np.random.default_rng(1).random(len(small_market.daily)) < 0.7
    cfg = FeaturesConfig(sets=["full"], cs_rank=RANKED)
    whole = build_feature_set(small_market, None, cfg)
    monkeypatch.setattr(feature_sets, "CHUNK_ROWS", 1000)  # ~3 stocks per chunk
    assert len(feature_sets._stock_chunks(small_market.daily, 1000)) > 5
    chunked = build_feature_set(small_market, None, cfg, rows=keep)
    expected = whole.loc[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(chunked, expected)
    reference = alpha158.alpha158_features(small_market.daily)
    np.testing.assert_array_equal(whole["CORR20"].to_numpy(), reference["CORR20"].to_numpy())
    assert all(whole[n].dtype == np.float32 for n in whole.columns[2:])


def test_ranks_compare_only_stocks_of_the_same_day(small_market: Market) -> None:
    cfg = FeaturesConfig(sets=["basic"], cs_rank=["mom_5"])
    frame = build_feature_set(small_market, None, cfg)
    day = frame["trade_date"].iloc[500]
    one_day = frame.loc[frame["trade_date"] == day]
    expected = one_day["mom_5"].rank(pct=True)  # pandas: rank / count of non-NaN values
    np.testing.assert_allclose(one_day["mom_5_csrank"], expected.astype(np.float32))
    # ranked over every stock of the day, not only the kept rows (which depend on later bars)
    keep = (frame["ts_code"] != frame["ts_code"].iloc[500]).to_numpy()
    part = build_feature_set(small_market, None, cfg, rows=keep)
    np.testing.assert_array_equal(part["mom_5_csrank"], frame.loc[keep, "mom_5_csrank"])
    alone = cross_sectional_ranks(one_day[["mom_5"]], ["mom_5"], one_day["trade_date"])
    np.testing.assert_array_equal(alone["mom_5_csrank"], one_day["mom_5_csrank"])


def _rewrite_after(market: Market, cut: pd.Timestamp) -> Market:
    """The market with every bar after `cut` (stocks and index) rewritten with noise."""
    daily = market.daily.copy()
    future = (daily["trade_date"] > cut).to_numpy()
    rng = np.random.default_rng(0)
    for col in ("open", "high", "low", "close", "pre_close", "vol", "amount"):
        noise = rng.uniform(0.5, 2.0, future.sum()).astype(np.float32)
        daily.loc[future, col] = daily.loc[future, col].to_numpy() * noise
    index = market.index.copy()
    index.loc[index["trade_date"] > cut, "close"] *= 1.5
    return replace(market, daily=daily, index=index)


@pytest.mark.parametrize("sets", [["basic"], ["alpha158"], ["ashare"], ["full"]])
def test_features_at_t_do_not_change_when_bars_after_t_change(
    sets: list[str], small_market: Market
) -> None:
    cfg = FeaturesConfig(sets=sets, cs_rank=["mom_5"] if sets != ["alpha158"] else ["ROC5"])
    cut = small_market.daily["trade_date"].sort_values().unique()[200]
    before = build_dataset(small_market, cfg, LabelConfig(), SplitConfig())
    after = build_dataset(_rewrite_after(small_market, cut), cfg, LabelConfig(), SplitConfig())
    names = before.feature_names
    past_before = before.frame.loc[before.frame["trade_date"] <= cut]
    past_after = after.frame.loc[after.frame["trade_date"] <= cut]
    pd.testing.assert_frame_equal(past_before[names], past_after[names])
    later = before.frame["trade_date"] > cut
    assert not before.frame.loc[later, names].equals(after.frame.loc[later, names])
