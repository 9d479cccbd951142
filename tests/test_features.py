"""Features: vectorised, float32, and computed from data up to day T only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.data.market import Market
from ashare_autotune.modelling.features import FEATURES, build_features


def _features(market: Market) -> pd.DataFrame:
    return build_features(market.daily, market.index, market.stock_basic)


def test_every_feature_is_float32_and_rows_keep_their_order(small_market: Market) -> None:
    feats = _features(small_market)
    assert list(feats.columns) == ["ts_code", "trade_date", *FEATURES]
    assert all(feats[name].dtype == np.float32 for name in FEATURES)
    assert (
        feats["ts_code"].astype(str).tolist() == small_market.daily["ts_code"].astype(str).tolist()
    )
    assert (feats["trade_date"].to_numpy() == small_market.daily["trade_date"].to_numpy()).all()


def test_changing_prices_after_t_leaves_features_up_to_t_unchanged(small_market: Market) -> None:
    """No look-ahead: rewrite every bar after T (every stock, and the index) with noise."""
    cut = small_market.daily["trade_date"].sort_values().unique()[150]
    before = _features(small_market)
    daily = small_market.daily.copy()
    future = (daily["trade_date"] > cut).to_numpy()
    rng = np.random.default_rng(0)
    for col in ("open", "high", "low", "close", "vol", "amount"):
        noise = rng.uniform(0.5, 2.0, future.sum()).astype(np.float32)
        daily.loc[future, col] = daily.loc[future, col].to_numpy() * noise
    index = small_market.index.copy()
    index.loc[index["trade_date"] > cut, "close"] *= 1.5
    after = build_features(daily, index, small_market.stock_basic)
    past = ~future
    pd.testing.assert_frame_equal(before.loc[past], after.loc[past])
    assert not before.loc[future, "mom_5"].equals(after.loc[future, "mom_5"])  # the edit bit


def _reference(daily: pd.DataFrame) -> pd.DataFrame:
    """A slow, obvious per-stock pandas implementation to check the vectorised one."""
    out = []
    for _, g in daily.groupby("ts_code", observed=True, sort=False):
        close = g["close"].astype(np.float64)
        ret = close.pct_change()
        diff = close.diff()
        gain = diff.clip(lower=0).rolling(14).mean()
        loss = (-diff).clip(lower=0).rolling(14).mean()
        out.append(
            pd.DataFrame(
                {
                    "ma20_ratio": close / close.rolling(20).mean() - 1,
                    "mom_10": close / close.shift(10) - 1,
                    "volatility_10": ret.rolling(10).std(),
                    "volume_ratio_5": g["vol"]
                    / g["vol"].astype(np.float64).shift(1).rolling(5).mean(),
                    "rsi_14": 100 * gain / (gain + loss),
                    "dist_high_20": close / close.rolling(20).max() - 1,
                },
                index=g.index,
            )
        )
    return pd.concat(out).loc[daily.index]


def test_vectorised_features_match_a_per_stock_reference(small_market: Market) -> None:
    feats = _features(small_market)
    ref = _reference(small_market.daily)
    for col in ref.columns:
        np.testing.assert_allclose(
            feats[col].to_numpy(np.float64),
            ref[col].to_numpy(),
            rtol=2e-5,
            atol=1e-5,
            equal_nan=True,
            err_msg=col,
        )


def test_first_rows_of_each_stock_do_not_borrow_the_previous_stock(small_market: Market) -> None:
    feats = _features(small_market)
    first_rows = feats.groupby("ts_code", observed=True).head(19)
    assert first_rows["ma20_ratio"].isna().all()
    assert feats.groupby("ts_code", observed=True).head(1)["ret_1"].isna().all()


def test_market_feature_is_the_index_pct_change_of_the_day(small_market: Market) -> None:
    feats = _features(small_market)
    idx = small_market.index.set_index("trade_date")["close"].astype(np.float64)
    expected = feats["trade_date"].map(idx.pct_change())
    np.testing.assert_allclose(feats["mkt_ret_1"], expected, rtol=1e-5, equal_nan=True)


def test_industry_feature_is_the_same_day_industry_mean_and_nan_without_industry(
    small_market: Market,
) -> None:
    feats = _features(small_market)
    industry = (
        feats["ts_code"].astype(str).map(small_market.stock_basic.set_index("ts_code")["industry"])
    )
    expected = feats.groupby([feats["trade_date"], industry])["ret_1"].transform("mean")
    has = industry.notna()
    np.testing.assert_allclose(feats.loc[has, "ind_ret_1"], expected[has], rtol=1e-4, atol=1e-6)
    assert feats.loc[~has, "ind_ret_1"].isna().all()
    assert (~has).any(), "the fixture should contain a stock without industry"


def test_unknown_feature_name_is_a_config_error(small_market: Market) -> None:
    from ashare_autotune.errors import ConfigError

    with pytest.raises(ConfigError, match="features.names.*'nope'"):
        build_features(
            small_market.daily, small_market.index, small_market.stock_basic, ["mom_5", "nope"]
        )


def test_rows_mask_returns_those_rows_computed_from_the_whole_panel(
    small_market: Market,
) -> None:
    """Asking for some rows only must not change their values: windows and industry means
    still see every row."""
    full = _features(small_market)
    rows = np.random.default_rng(3).random(len(full)) < 0.3
    part = build_features(
        small_market.daily, small_market.index, small_market.stock_basic, rows=rows
    )
    pd.testing.assert_frame_equal(part, full.loc[rows].reset_index(drop=True))


def test_a_subset_of_names_gives_those_columns_with_the_same_values(
    small_market: Market,
) -> None:
    full = _features(small_market)
    names = ["ind_mom_5", "mkt_ret_1", "rsi_14"]
    part = build_features(small_market.daily, small_market.index, small_market.stock_basic, names)
    assert list(part.columns) == ["ts_code", "trade_date", *names]
    pd.testing.assert_frame_equal(part[names], full[names])
