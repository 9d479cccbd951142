"""A-share features: limit counts and streaks, listing age, liquidity, breadth and industry
strength equal plain per-stock / per-day references, use no later bar, and cross-sectional
ranks compare rows of the same day only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.modelling.ashare_features import (
    FEATURES,
    FLAGS,
    ashare_feature_names,
    ashare_features,
    cross_sectional_ranks,
)

CALENDAR = pd.bdate_range("2021-01-04", periods=70).strftime("%Y%m%d")
PER_STOCK = [n for n in FEATURES if not n.startswith(("breadth", "ind_"))]


def make_market(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Five stocks on one calendar: an IPO inside it, a suspension, one without industry;
    limit flags planted at random (streaks included)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, code in enumerate(["000001.SZ", "000002.SZ", "300001.SZ", "600000.SH", "830001.BJ"]):
        days = CALENDAR[10:] if i == 2 else CALENDAR  # 300001 lists on the 11th day
        if i == 1:
            days = days.delete(range(30, 35))  # suspended for five days
        n = len(days)
        close = 10 * (1 + i) * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        frames.append(
            pd.DataFrame(
                {
                    "ts_code": code,
                    "trade_date": days,
                    "close": close,
                    "pre_close": np.r_[close[0] * 0.98, close[:-1]],
                    "amount": rng.lognormal(10, 0.7, n),
                    "circ_mv": rng.lognormal(12, 0.3, n),
                    "turnover_rate": rng.uniform(0.1, 5, n),
                }
            )
        )
    daily = pd.concat(frames, ignore_index=True).astype(
        {"close": np.float32, "pre_close": np.float32, "amount": np.float32}
    )
    up = rng.random(len(daily)) < 0.25
    down = ~up & (rng.random(len(daily)) < 0.15)
    one_price = rng.random(len(daily)) < 0.4
    flags = pd.DataFrame(
        {
            "close_limit_up": up,
            "close_limit_down": down,
            "one_price_up": up & one_price,
            "one_price_down": down & one_price,
        }
    )
    basic = pd.DataFrame(
        {
            "ts_code": ["000001.SZ", "000002.SZ", "300001.SZ", "600000.SH", "830001.BJ"],
            "industry": ["bank", "bank", "media", "media", None],
            "list_date": ["19910403", "19910129", CALENDAR[10], "19991110", None],
        }
    )
    return daily, flags, basic


def _streak(flags: pd.Series) -> pd.Series:
    out, run = [], 0
    for f in flags:
        run = run + 1 if f else 0
        out.append(run)
    return pd.Series(out, index=flags.index, dtype=float)


def per_stock_reference(g: pd.DataFrame, fl: pd.DataFrame, basic: pd.DataFrame) -> pd.DataFrame:
    """The per-stock features of one stock, computed the obvious way."""
    up, down = fl["close_limit_up"].astype(float), fl["close_limit_down"].astype(float)
    one = (fl["one_price_up"] | fl["one_price_down"]).astype(float)
    row = basic.set_index("ts_code").loc[g["ts_code"].iloc[0]]
    dates = pd.to_datetime(g["trade_date"])
    known = pd.notna(row["list_date"])
    listed = pd.to_datetime(row["list_date"]) if known else dates.iloc[0]
    calendar = pd.to_datetime(pd.Series(CALENDAR))
    amount = g["amount"].astype(float)
    return pd.DataFrame(
        {
            "limit_up_5": up.rolling(5).sum(),
            "limit_up_20": up.rolling(20).sum(),
            "limit_down_5": down.rolling(5).sum(),
            "limit_down_20": down.rolling(20).sum(),
            "limit_up_streak": _streak(fl["close_limit_up"]),
            "limit_down_streak": _streak(fl["close_limit_down"]),
            "one_price_20": one.rolling(20).sum(),
            "listed_days": (dates - listed).dt.days if known else np.nan,
            "listed_trading_days": [((calendar >= listed) & (calendar <= d)).sum() for d in dates],
            "log_amount_20": np.log1p(amount.rolling(20).mean()),
            "amount_ratio_5_20": amount.rolling(5).mean() / amount.rolling(20).mean(),
        },
        index=g.index,
    )


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_market()


@pytest.fixture(scope="module")
def feats(market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return ashare_features(*market)


def test_columns_are_float32_aligned_and_daily_basic_only_when_present(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, flags, basic = market
    assert list(feats.columns) == [*FEATURES, "turnover_rate", "log_circ_mv"]
    assert (feats.dtypes == np.float32).all() and feats.index.equals(daily.index)
    np.testing.assert_allclose(feats["log_circ_mv"], np.log(daily["circ_mv"]), rtol=1e-6)
    bare = daily.drop(columns=["circ_mv", "turnover_rate"])
    assert ashare_feature_names(bare) == list(FEATURES)
    assert list(ashare_features(bare, flags, basic).columns) == list(FEATURES)


def test_per_stock_features_equal_the_plain_reference(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, flags, basic = market
    for _, g in daily.groupby("ts_code", sort=False):
        want = per_stock_reference(g, flags.loc[g.index], basic)
        for name in PER_STOCK:
            got = feats.loc[g.index, name]
            assert got.isna().equals(want[name].isna()), name
            np.testing.assert_allclose(got, want[name], rtol=1e-6, err_msg=name)


def test_a_streak_restarts_at_a_new_stock() -> None:
    daily, flags, basic = make_market()
    flags = flags.copy()
    flags["close_limit_up"] = True  # every row of every stock at limit-up
    out = ashare_features(daily, flags, basic)
    first_rows = daily.groupby("ts_code", sort=False).head(1).index
    assert (out.loc[first_rows, "limit_up_streak"] == 1).all()
    sizes = daily.groupby("ts_code", sort=False).size().to_numpy()
    assert (out.groupby(daily["ts_code"], sort=False)["limit_up_streak"].max() == sizes).all()


def test_breadth_is_the_share_of_the_days_stocks(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, flags, _ = market
    frame = daily.assign(up=daily["close"] > daily["pre_close"], **flags)
    by_day = frame.groupby("trade_date")
    for name, col in (
        ("breadth_up", "up"),
        ("breadth_limit_up", "close_limit_up"),
        ("breadth_limit_down", "close_limit_down"),
    ):
        want = by_day[col].transform("mean")
        np.testing.assert_allclose(feats[name], want, rtol=1e-6, err_msg=name)


def test_industry_strength_is_industry_mean_minus_market_mean_that_day(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, _, basic = market
    industry = daily["ts_code"].map(basic.set_index("ts_code")["industry"])
    for w in (5, 20):
        ret = daily.groupby("ts_code")["close"].transform(lambda c, w=w: c / c.shift(w) - 1)
        frame = daily.assign(ret=ret.astype(float), industry=industry)
        market_mean = frame.groupby("trade_date")["ret"].transform("mean")
        ind_mean = frame.groupby(["trade_date", "industry"])["ret"].transform("mean")
        want = (ind_mean - market_mean).where(industry.notna())
        got = feats[f"ind_rel_ret_{w}"]
        assert got.isna().equals(want.isna())
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert feats.loc[industry.isna(), "ind_rel_ret_5"].isna().all()


def test_features_at_t_ignore_every_bar_and_flag_after_t(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, flags, basic = market
    later = daily["trade_date"] > CALENDAR[40]
    rng = np.random.default_rng(9)
    changed, changed_flags = daily.copy(), flags.copy()
    for col in ("close", "pre_close", "amount", "circ_mv", "turnover_rate"):
        changed.loc[later, col] *= rng.uniform(0.5, 2.0, later.sum()).astype(np.float32)
    for col in FLAGS:
        changed_flags.loc[later, col] = rng.random(later.sum()) < 0.5
    after = ashare_features(changed, changed_flags, basic)
    pd.testing.assert_frame_equal(feats[~later], after[~later])
    assert not feats.loc[later, "limit_up_5"].equals(after.loc[later, "limit_up_5"])


def test_per_stock_windows_never_reach_into_the_previous_stock(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, flags, basic = market
    first = daily["ts_code"] == "000001.SZ"
    changed, changed_flags = daily.copy(), flags.copy()
    changed.loc[first, "amount"] *= 50
    changed_flags.loc[first, list(FLAGS)] = True
    after = ashare_features(changed, changed_flags, basic)
    pd.testing.assert_frame_equal(feats.loc[~first, PER_STOCK], after.loc[~first, PER_STOCK])


def test_bad_inputs_are_one_line_data_errors(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    daily, flags, basic = market
    with pytest.raises(DataError, match="limit flags: column 'one_price_up'"):
        ashare_features(daily, flags.drop(columns="one_price_up"), basic)
    with pytest.raises(DataError, match="limit flags: 3 rows"):
        ashare_features(daily, flags.head(3), basic)
    with pytest.raises(DataError, match="column 'amount'"):
        ashare_features(daily.drop(columns="amount"), flags, basic)


def test_cross_sectional_rank_is_the_percentile_within_each_day(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, _, _ = market
    names = ["log_amount_20", "ind_rel_ret_5"]
    ranks = cross_sectional_ranks(feats, names, daily["trade_date"])
    assert list(ranks.columns) == ["log_amount_20_csrank", "ind_rel_ret_5_csrank"]
    assert (ranks.dtypes == np.float32).all() and ranks.index.equals(feats.index)
    for _, rows in daily.groupby("trade_date").groups.items():
        for name in names:
            values = feats.loc[rows, name].to_numpy()
            ok = ~np.isnan(values)
            want = np.full(len(values), np.nan)
            want[ok] = rankdata(values[ok]) / ok.sum()
            np.testing.assert_allclose(ranks.loc[rows, f"{name}_csrank"], want, rtol=1e-6)


def test_cross_sectional_rank_ignores_every_other_day(
    market: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], feats: pd.DataFrame
) -> None:
    daily, _, _ = market
    other = daily["trade_date"] != CALENDAR[50]
    changed = feats.copy()
    changed.loc[other, "log_amount_20"] = -changed.loc[other, "log_amount_20"]
    before = cross_sectional_ranks(feats, ["log_amount_20"], daily["trade_date"])
    after = cross_sectional_ranks(changed, ["log_amount_20"], daily["trade_date"])
    pd.testing.assert_frame_equal(before[~other], after[~other])
    assert not before[other].equals(after[other])  # the edit bit


def test_ranking_an_unknown_column_is_a_config_error(feats: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="features.cs_rank.*'nope'"):
        cross_sectional_ranks(feats, ["nope"], np.zeros(len(feats)))


def test_the_projects_market_frames_work_as_loaded() -> None:
    """Categorical ts_code and datetime trade_date, as the project's loaders return them."""
    from ashare_autotune.data.synthetic import make_synthetic_market
    from ashare_autotune.modelling.alpha158 import alpha158_features

    market = make_synthetic_market(n_stocks=6, n_days=120, seed=3)
    daily = market.daily
    flags = pd.DataFrame(False, index=daily.index, columns=list(FLAGS))
    out = ashare_features(daily, flags, market.stock_basic)
    assert out.index.equals(daily.index) and (out.dtypes == np.float32).all()
    assert out["listed_trading_days"].notna().all() and out["breadth_up"].between(0, 1).all()
    alpha = alpha158_features(daily)
    assert alpha.shape == (len(daily), 158) and alpha["MA60"].notna().sum() > 0
