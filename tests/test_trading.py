"""The trading view: per-day top-k precision, picks per day, forward returns of picks vs the
universe and hit rates by market regime, computed on small hand-made days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.evaluation.records import prediction_record, signal_metrics
from ashare_autotune.evaluation.trading import (
    daily_table,
    market_regime,
    pick_returns,
    summary_markdown,
    trading_metrics,
)

D1, D2, D3 = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])


@pytest.fixture
def rows() -> pd.DataFrame:
    """Three days of four stocks; D1 the index rises, D2 and D3 it falls."""
    return pd.DataFrame(
        {
            "trade_date": [D1] * 4 + [D2] * 4 + [D3] * 4,
            "label": [1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1],
            "fwd_return": [0.05, -0.01, 0.04, 0.0, -0.02, 0.01, 0.06, 0.03, 0.0, 0.0, -0.01, 0.1],
        }
    )


@pytest.fixture
def proba() -> np.ndarray:
    # D1: picks (>= 0.5) are rows 0 (hit) and 1 (miss); D2: row 6 (hit); D3: none
    return np.array([0.9, 0.6, 0.4, 0.1, 0.2, 0.3, 0.7, 0.45, 0.1, 0.2, 0.3, 0.4])


@pytest.fixture
def regime() -> pd.Series:
    index = pd.DataFrame({"trade_date": [D1 - pd.Timedelta(days=1), D1, D2, D3]})
    index["close"] = [100.0, 101.0, 100.5, 99.0]
    return market_regime(index)


def test_regime_is_the_index_move_of_the_pick_day(regime: pd.Series) -> None:
    assert regime.to_dict() == {D1: "up", D2: "down", D3: "down"}


def test_daily_table_counts_picks_and_top_k_precision_per_day(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    table = daily_table(rows, proba, threshold=0.5, top_k=2, regime=regime)
    assert list(table["trade_date"]) == [D1, D2, D3]
    assert list(table["regime"]) == ["up", "down", "down"]
    assert list(table["n_picks"]) == [2, 1, 0]
    assert list(table["pick_hits"]) == [1, 1, 0]
    np.testing.assert_allclose(table["pick_precision"], [0.5, 1.0, np.nan])
    # top 2 by probability: D1 rows 0,1 -> 1 hit; D2 rows 6,7 -> 2 hits; D3 rows 10,11 -> 1 hit
    np.testing.assert_allclose(table["topk_precision"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(table["topk_fwd_return"], [0.02, 0.045, 0.045])
    np.testing.assert_allclose(table["universe_fwd_return"], [0.02, 0.02, 0.0225])


def test_with_a_cap_a_day_counts_only_its_best_picks(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    # cap 1: D1 keeps row 0 (0.9, hit, +5%) and drops row 1 (0.6, miss); D2 keeps row 6
    table = daily_table(rows, proba, 0.5, 2, regime, max_picks_per_day=1)
    assert list(table["n_picks"]) == [1, 1, 0] and list(table["pick_hits"]) == [1, 1, 0]
    m = trading_metrics(rows, proba, 0.5, table, "test", max_picks_per_day=1)
    assert m["test_mean_fwd_return_picks"] == pytest.approx((0.05 + 0.06) / 2)


def test_metrics_compare_picks_with_the_universe_and_split_hit_rate_by_regime(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    table = daily_table(rows, proba, threshold=0.5, top_k=2, regime=regime)
    m = trading_metrics(rows, proba, 0.5, table, "test")
    assert m["test_mean_fwd_return_picks"] == pytest.approx((0.05 - 0.01 + 0.06) / 3)
    assert m["test_mean_fwd_return_universe"] == pytest.approx(rows["fwd_return"].mean())
    assert m["test_excess_fwd_return"] == pytest.approx(
        m["test_mean_fwd_return_picks"] - m["test_mean_fwd_return_universe"]
    )
    assert m["test_hit_rate_up"] == pytest.approx(0.5)  # D1: 1 hit of 2 picks
    assert m["test_hit_rate_down"] == pytest.approx(1.0)  # D2: 1 of 1, D3: no picks
    assert m["test_topk_hit_rate_down"] == pytest.approx(3 / 4)
    assert (m["test_n_days_up"], m["test_n_days_down"]) == (1, 2)


def test_top_k_precision_and_picks_per_day_have_one_definition_the_signal_metrics(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    table = daily_table(rows, proba, threshold=0.5, top_k=2, regime=regime)
    view = trading_metrics(rows, proba, 0.5, table, "test")
    record = prediction_record(rows.assign(ts_code="000001.SZ"), proba, 0.5)
    signal = signal_metrics(record, top_k=2, prefix="test")
    assert not set(view) & set(signal), "no number is logged twice under one name"
    assert signal["test_topk_precision_mean"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert signal["test_picks_per_day"] == pytest.approx(1.0)
    assert signal["test_days_with_picks"] == 2  # days with at least one pick (a count)
    assert signal["test_days"] == 3
    excess = ((0.02 - 0.02) + (0.045 - 0.02) + (0.045 - 0.0225)) / 3  # top-2 minus all, per day
    assert signal["test_topk_excess_return_mean"] == pytest.approx(excess)


def test_no_picks_gives_nan_returns_not_zero() -> None:
    out = pick_returns(np.array([0.01, 0.02]), np.array([False, False]))
    assert np.isnan(out["mean_fwd_return_picks"]) and np.isnan(out["excess_fwd_return"])
    assert out["mean_fwd_return_universe"] == pytest.approx(0.015)


def test_summary_markdown_has_a_row_per_regime(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    table = daily_table(rows, proba, threshold=0.5, top_k=2, regime=regime)
    text = summary_markdown(trading_metrics(rows, proba, 0.5, table, "test"), table, "test")
    assert "| up | 1 | 2 | 0.5000 |" in text
    assert "| down | 2 | 1 | 1.0000 |" in text


def test_the_daily_top_k_does_not_buy_an_unfillable_row_nor_replace_it(
    rows: pd.DataFrame, proba: np.ndarray, regime: pd.Series
) -> None:
    # D1's best row (0.9) cannot fill: no label, no return; its slot stays empty
    unfillable = rows.assign(fillable=True)
    unfillable.loc[0, ["fillable", "label", "fwd_return"]] = [False, np.nan, np.nan]
    table = daily_table(unfillable, proba, threshold=0.5, top_k=2, regime=regime)
    d1 = table.iloc[0]
    assert d1["topk_n"] == 1 and d1["topk_precision"] == 0.0  # only row 1 (0.6, a miss)
    assert d1["topk_fwd_return"] == pytest.approx(-0.01)
    assert d1["n_picks"] == 2 and d1["pick_labelled"] == 1 and d1["pick_precision"] == 0.0
