"""Signal analysis per day: IC and Rank IC equal scipy's pearsonr / spearmanr on each day;
top-k precision and excess return by hand; days without a statistic are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ashare_autotune.evaluation.signal import (
    DAILY_COLUMNS,
    bought_top_k,
    daily_signal,
    summarise_signal,
)


@pytest.fixture
def scored() -> pd.DataFrame:
    """Six days: ties in scores and returns, a constant score, a single row, NaN rows."""
    rng = np.random.default_rng(3)
    frames = []
    for i, n in enumerate([30, 12, 8, 25, 1, 6]):
        day = pd.Timestamp("2022-01-03") + pd.Timedelta(days=i)
        score = rng.random(n).round(1)  # rounded: many ties
        ret = (0.3 * score + rng.normal(0, 0.05, n)).round(2)
        if i == 2:
            score[:] = 0.5  # a constant score: no correlation
        frames.append(
            pd.DataFrame(
                {
                    "trade_date": day,
                    "score": score,
                    "label": (ret > 0.1).astype(float),
                    "fwd_return": ret,
                    "pick": score > 0.7,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.loc[[0, 31], "fwd_return"] = np.nan  # rows without a forward return are left out
    frame.loc[5, "label"] = np.nan
    return frame


def test_ic_and_rank_ic_equal_scipy_on_every_day(scored: pd.DataFrame) -> None:
    daily = daily_signal(scored, top_k=3)
    assert list(daily.columns) == list(DAILY_COLUMNS)
    rows = scored.dropna(subset=["score", "fwd_return"])  # the label is not needed
    for day, group in rows.groupby("trade_date"):
        got = daily.loc[day]
        assert got["n"] == len(group)
        if len(group) < 2 or group["score"].nunique() == 1:
            assert np.isnan(got["ic"]) and np.isnan(got["rank_ic"])
            continue
        ic = stats.pearsonr(group["score"], group["fwd_return"]).statistic
        rank_ic = stats.spearmanr(group["score"], group["fwd_return"]).statistic
        assert got["ic"] == pytest.approx(ic, abs=1e-12)
        assert got["rank_ic"] == pytest.approx(rank_ic, abs=1e-12)


def test_top_k_precision_and_returns_by_hand() -> None:
    frame = pd.DataFrame(
        {
            "trade_date": pd.to_datetime(["2022-01-03"] * 5),
            "score": [0.9, 0.8, 0.8, 0.1, 0.2],
            "label": [1.0, 0.0, 1.0, 0.0, 0.0],
            "fwd_return": [0.05, -0.01, 0.03, -0.02, 0.00],
            "pick": [True, False, False, False, False],
        }
    )
    day = daily_signal(frame, top_k=2).iloc[0]
    # top 2: 0.9 and the first 0.8 (equal scores keep row order)
    assert day["topk_precision"] == 0.5
    assert day["topk_fwd_return"] == pytest.approx(0.02)
    assert day["universe_fwd_return"] == pytest.approx(0.01)
    assert day["n_picks"] == 1


def test_summary_skips_days_without_a_statistic(scored: pd.DataFrame) -> None:
    daily = daily_signal(scored, top_k=3)
    summary = summarise_signal(daily)
    ic = daily["ic"].dropna()
    assert len(ic) == 4  # the constant-score day and the one-row day have none
    assert summary["ic_mean"] == pytest.approx(ic.mean())
    assert summary["ic_std"] == pytest.approx(ic.std(ddof=1))
    assert summary["ic_ir"] == pytest.approx(ic.mean() / ic.std(ddof=1))
    assert summary["ic_t"] == pytest.approx(stats.ttest_1samp(ic, 0).statistic)
    assert summary["rank_ic_pos_share"] == pytest.approx((daily["rank_ic"].dropna() > 0).mean())
    excess = daily["topk_fwd_return"] - daily["universe_fwd_return"]
    assert summary["topk_excess_return_mean"] == pytest.approx(excess.mean())
    assert summary["topk_precision_mean"] == pytest.approx(daily["topk_precision"].mean())
    assert summary["picks_per_day"] == pytest.approx(daily["n_picks"].mean())
    assert summary["days_with_picks"] == (daily["n_picks"] > 0).sum()


def test_without_picks_the_pick_statistics_are_nan(scored: pd.DataFrame) -> None:
    summary = summarise_signal(daily_signal(scored.drop(columns="pick"), top_k=3))
    assert np.isnan(summary["picks_per_day"]) and np.isnan(summary["days_with_picks"])


def _one_day(fillable: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_date": pd.to_datetime(["2022-01-03"] * 5),
            "score": [0.9, 0.8, 0.7, 0.6, 0.5],
            "label": [1.0, np.nan, 0.0, 1.0, 1.0],  # no label: the entry did not fill
            "fwd_return": [0.06, np.nan, -0.02, 0.05, 0.04],
            "fillable": fillable,
        }
    )


def test_an_unfillable_top_k_pick_is_not_bought_and_not_replaced() -> None:
    frame = _one_day([True, False, True, True, True])
    day = daily_signal(frame, top_k=3).iloc[0]
    # top 3 among all candidates: 0.9, 0.8 (cannot fill: not bought), 0.7; 0.6 does not move up
    assert day["topk_bought"] == 2
    assert day["topk_precision"] == 0.5  # 1 hit of the 2 bought; the unfilled is neither
    assert day["topk_fwd_return"] == pytest.approx(0.02)  # (0.06 - 0.02) / 2
    assert day["universe_fwd_return"] == pytest.approx(0.0325)  # the 4 with a return
    assert list(bought_top_k(frame, 3)["score"]) == [0.9, 0.7]
    # a record of the fillable rows only would have bought 0.6 in its place: 2 hits of 3
    known = daily_signal(frame.loc[frame["fillable"]], top_k=3).iloc[0]
    assert known["topk_precision"] == pytest.approx(2 / 3) and known["topk_bought"] == 3


def test_a_top_k_from_the_records_never_selects_an_unfillable_row() -> None:
    rng = np.random.default_rng(5)
    days = np.repeat(pd.bdate_range("2022-01-03", periods=20), 30)
    frame = pd.DataFrame(
        {
            "trade_date": days,
            "score": rng.random(len(days)),
            "fillable": rng.random(len(days)) > 0.3,
        }
    )
    bought = bought_top_k(frame, 5)
    assert bought["fillable"].all() and len(bought) < 20 * 5
    ranked = frame.assign(rank=frame.groupby("trade_date")["score"].rank(ascending=False))
    top = ranked.loc[ranked["rank"] <= 5]  # every bought row is one of its day's top 5
    assert set(bought.index) == set(top.index[top["fillable"]])


def test_ic_counts_every_candidate_with_a_forward_return() -> None:
    frame = _one_day([True, False, True, True, True])  # row 2 has a return, no label: counted
    frame.loc[4, "label"] = np.nan
    day = daily_signal(frame, top_k=3).iloc[0]
    known = frame.dropna(subset=["fwd_return"])
    assert day["n"] == 4
    assert day["ic"] == pytest.approx(stats.pearsonr(known["score"], known["fwd_return"])[0])
