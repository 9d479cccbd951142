"""Signal analysis per day: IC and Rank IC equal scipy's pearsonr / spearmanr on each day;
top-k precision and excess return by hand; days without a statistic are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ashare_autotune.evaluation.signal import DAILY_COLUMNS, daily_signal, summarise_signal


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
    rows = scored.dropna(subset=["score", "label", "fwd_return"])
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
