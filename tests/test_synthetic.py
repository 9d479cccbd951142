"""The synthetic market: realistic returns, limits, suspensions and listings, a weak planted
effect, the same market for any number of days, and held-out days after training's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.boards import board_of
from ashare_autotune.data.loader import load_market, training_data
from ashare_autotune.data.market import Market
from ashare_autotune.data.sanity import BOARD_LIMITS, check_market
from ashare_autotune.data.synthetic import CAVEAT, data_caveat, make_synthetic_market
from ashare_autotune.errors import ConfigError


@pytest.fixture(scope="module")
def default_market() -> Market:
    """The default market of `make train` (300 stocks, 1000 days, seed 42)."""
    return make_synthetic_market()


def _returns(market: Market) -> pd.Series:
    d = market.daily
    return d["close"] / d["pre_close"] - 1


def _wide(market: Market, column: str = "close") -> pd.DataFrame:
    return market.daily.pivot(index="trade_date", columns="ts_code", values=column)


def _mean_rank_ic(feature: pd.DataFrame, target: pd.DataFrame) -> float:
    """Mean over days of the cross-sectional Spearman correlation (ranks, then Pearson)."""
    both = feature.notna() & target.notna()
    a, b = feature.where(both).rank(axis=1), target.where(both).rank(axis=1)
    a, b = a.sub(a.mean(axis=1), axis=0), b.sub(b.mean(axis=1), axis=0)
    ic = (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return float(ic[both.sum(axis=1) >= 30].mean())


def test_the_default_market_passes_the_bar_sanity_checks(default_market: Market) -> None:
    check_market(default_market)
    d = default_market.daily
    assert (d["low"] <= d[["open", "close"]].min(axis=1)).all()
    assert (d["high"] >= d[["open", "close"]].max(axis=1)).all()


def test_stocks_have_a_realistic_volatility_fat_tails_and_clustering(
    default_market: Market,
) -> None:
    ret = _returns(default_market)
    annual = ret.groupby(default_market.daily["ts_code"], observed=True).std() * np.sqrt(250)
    assert 0.25 <= annual.median() <= 0.40
    assert annual.quantile(0.05) >= 0.20 and annual.quantile(0.95) <= 0.50
    standard = (ret - ret.mean()) / ret.std()
    assert (standard**4).mean() - 3 > 1.5  # excess kurtosis: fat tails (normal: 0)
    market = default_market.index["pct_chg"].to_numpy() / 100
    size = np.abs(market - market.mean())
    assert np.corrcoef(size[1:], size[:-1])[0, 1] > 0.1  # volatility clustering


def test_moves_stay_within_the_board_limits_and_limit_days_appear(
    default_market: Market,
) -> None:
    d = default_market.daily
    limit = pd.Series(board_of(d["ts_code"])).map(BOARD_LIMITS).to_numpy()
    chinext_before = (board_of(d["ts_code"]) == "ChiNext") & (d["trade_date"] < "2020-08-24")
    limit = np.where(chinext_before, 0.10, limit)
    move = np.abs(_returns(default_market).to_numpy())
    assert (move <= limit + 1e-5).all()
    at_limit = move >= limit - 1e-5
    assert 0.001 < at_limit.mean() < 0.02
    assert {"main", "ChiNext", "STAR", "BJ"} <= set(board_of(d["ts_code"]))


def test_suspensions_and_listings_leave_days_without_rows(default_market: Market) -> None:
    wide = _wide(default_market)
    listed = wide.notna().cumsum().gt(0)
    missing = listed & wide.isna()
    assert 0.001 < missing.to_numpy().sum() / listed.to_numpy().sum() < 0.01
    runs = missing.astype(int).diff().eq(-1).sum()  # suspensions ending
    assert (missing.sum() > runs).any()  # some last several days
    first = wide.notna().idxmax().dt.strftime("%Y%m%d")
    basic = default_market.stock_basic.set_index("ts_code")["list_date"]
    ipo = basic[basic > "20180102"]
    assert len(ipo) / len(basic) > 0.05  # listings inside the span
    assert (first[ipo.index] >= ipo).all()  # no bar before the listing
    assert (first[ipo.index] == ipo).mean() > 0.9  # the first bar on it (unless suspended)


def test_the_index_is_the_average_of_the_traded_stocks(default_market: Market) -> None:
    index = default_market.index
    assert (index["low"] <= index[["open", "close"]].min(axis=1)).all()
    assert (index["high"] >= index[["open", "close"]].max(axis=1)).all()
    day_mean = _returns(default_market).groupby(default_market.daily["trade_date"]).mean()
    np.testing.assert_allclose(index["pct_chg"] / 100, day_mean.to_numpy(), atol=1e-5)


def test_the_planted_reversal_is_weak_but_there(default_market: Market) -> None:
    close = _wide(default_market)
    forward = close.shift(-5) / close - 1  # the label's horizon
    ics = {n: _mean_rank_ic(-(close / close.shift(n) - 1), forward) for n in (5, 10, 20, 60)}
    assert 0.01 < ics[20] <= 0.035  # measured 0.017
    assert max(ics.values()) == ics[20]
    volume = _wide(default_market, "vol")
    assert abs(_mean_rank_ic(volume / volume.rolling(20).mean(), forward)) < 0.01


def test_without_the_planted_effect_the_reversal_is_noise() -> None:
    close = _wide(make_synthetic_market(signal_strength=0.0))
    forward = close.shift(-5) / close - 1
    assert abs(_mean_rank_ic(-(close / close.shift(20) - 1), forward)) < 0.008


def test_more_days_extend_the_same_market() -> None:
    short = make_synthetic_market(n_stocks=50, n_days=300, seed=5)
    long = make_synthetic_market(n_stocks=50, n_days=420, seed=5)
    last = short.daily["trade_date"].max()
    head = long.daily[long.daily["trade_date"] <= last].reset_index(drop=True)
    listed = long.stock_basic["list_date"] <= last.strftime("%Y%m%d")
    pd.testing.assert_frame_equal(head, short.daily, check_categorical=False)
    pd.testing.assert_frame_equal(long.index.iloc[:300], short.index)
    pd.testing.assert_frame_equal(
        long.stock_basic[listed].reset_index(drop=True), short.stock_basic
    )


def test_the_same_seed_gives_the_same_market_and_another_seed_another() -> None:
    a, b = (make_synthetic_market(n_stocks=20, n_days=80, seed=s) for s in (1, 1))
    pd.testing.assert_frame_equal(a.daily, b.daily)
    c = make_synthetic_market(n_stocks=20, n_days=80, seed=2)
    assert not np.allclose(a.index["close"], c.index["close"])


def test_training_leaves_the_last_days_to_predict_and_evaluate() -> None:
    cfg = DataConfig(n_stocks=20, n_days=200, holdout_days=50)
    train = training_data(cfg)
    # 150 weekdays from Tuesday 2018-01-02: 30 weeks, the last a Monday
    assert train.end == "20180730"
    assert load_market(train).describe()["end"] == "20180730"
    assert load_market(cfg).describe()["end"] == "20181008"  # 200 weekdays
    assert training_data(DataConfig(end="20180301")).end == "20180301"  # an end given wins
    assert training_data(DataConfig(source="files", daily="d.csv", index="i.csv")).end is None


def test_a_holdout_that_leaves_too_few_days_to_train_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^config key 'data.holdout_days'=50: must leave 60"):
        training_data(DataConfig(n_days=100, holdout_days=50))


def test_reports_on_synthetic_data_carry_the_caveat() -> None:
    assert CAVEAT == "synthetic market: not evidence of an edge"
    assert data_caveat("synthetic(seed=42)") == CAVEAT
    assert data_caveat("files: daily.parquet") is None


def test_data_n_days_extends_the_market_the_config_loads() -> None:
    short = load_market(DataConfig(n_stocks=30, n_days=200))
    long = load_market(DataConfig(n_stocks=30, n_days=260))
    last = short.daily["trade_date"].max()
    head = long.daily[long.daily["trade_date"] <= last].reset_index(drop=True)
    pd.testing.assert_frame_equal(head, short.daily, check_categorical=False)


def test_the_debug_market_plants_a_detectable_effect() -> None:
    close = _wide(make_synthetic_market(n_stocks=40, n_days=300, seed=42, signal_strength=20))
    forward = close.shift(-5) / close - 1
    assert _mean_rank_ic(-(close / close.shift(20) - 1), forward) > 0.2  # measured 0.25
