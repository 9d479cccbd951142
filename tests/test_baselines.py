"""One-line factor baselines: hand-computed values, no look-ahead, and the model beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.schema import LabelConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation import baseline_compare as compare
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    run_window_backtest,
    signal_scores,
)
from ashare_autotune.evaluation.baselines import (
    baseline_factors,
    baseline_scores,
    history_start,
)

NAMES = ["reversal_20", "volatility_20", "amount_20", "blend"]


def zigzag_bars() -> pd.DataFrame:
    """Stock A: 21 closes moving +2%, -2%, ... from 10, amounts 1..21; stock B: 20 closes."""
    moves = np.where(np.arange(20) % 2 == 0, 1.02, 0.98)
    close = 10 * np.concatenate([[1.0], np.cumprod(moves)])
    days = pd.bdate_range("2023-01-02", periods=21)
    a = pd.DataFrame(
        {"ts_code": "A", "trade_date": days, "close": close, "amount": np.arange(1.0, 22.0)}
    )
    b = a.iloc[:20].assign(ts_code="B")
    return pd.concat([b, a], ignore_index=True)  # B first: sorting must not mix the stocks


def test_each_factor_is_its_one_line_formula_over_the_stocks_own_last_20_bars() -> None:
    factors = baseline_factors(zigzag_bars()).set_index(["ts_code", "trade_date"])
    a = factors.loc["A"]
    last = a.iloc[20]
    # 20 returns of +2% and -2%: close_20 / close_0 = (1.02 * 0.98)^10; std sqrt(20/19) * 2%
    assert last["reversal_20"] == pytest.approx(-(0.9996**10 - 1))
    assert last["volatility_20"] == pytest.approx(-0.02 * np.sqrt(20 / 19))
    assert last["amount_20"] == pytest.approx(-np.mean(np.arange(2.0, 22.0)))  # -11.5
    assert a["amount_20"].iloc[19] == -10.5  # the first day with 20 amounts
    # too few bars: no value (20 closes make 19 returns)
    assert a[["reversal_20", "volatility_20"]].iloc[:20].isna().all().all()
    assert a["amount_20"].iloc[:19].isna().all()
    b = factors.loc["B"]
    assert b[["reversal_20", "volatility_20"]].isna().all().all()
    assert b["amount_20"].iloc[19] == -10.5


def test_a_factor_of_day_t_does_not_change_when_later_bars_change() -> None:
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2023-01-02", periods=60)
    bars = pd.DataFrame(
        {
            "ts_code": np.repeat(["A", "B", "C"], 60),
            "trade_date": np.tile(days, 3),
            "close": 10 * np.exp(np.cumsum(rng.normal(0, 0.02, 180))),
            "amount": rng.uniform(1e3, 1e4, 180),
        }
    ).sample(frac=1.0, random_state=1)  # any row order
    cut = days[40]
    later = bars["trade_date"] > cut
    changed = bars.copy()
    changed.loc[later, "close"] *= rng.uniform(0.5, 2.0, later.sum())
    changed.loc[later, "amount"] *= rng.uniform(0.1, 10.0, later.sum())
    before = baseline_factors(bars)
    after = baseline_factors(changed)
    known = before["trade_date"] <= cut
    assert before.loc[known, "reversal_20"].notna().sum() == 3 * 21
    pd.testing.assert_frame_equal(before.loc[known], after.loc[known])
    assert not before.loc[~known, "reversal_20"].equals(after.loc[~known, "reversal_20"])


def test_scores_follow_the_candidate_rows_and_blend_the_day_percentile_ranks() -> None:
    day = pd.Timestamp("2023-03-01")
    factors = pd.DataFrame(
        {
            "ts_code": ["a", "b", "c"],
            "trade_date": day,
            "reversal_20": [0.1, 0.2, 0.3],
            "volatility_20": [-0.01, -0.03, -0.02],
            "amount_20": [-5.0, -1.0, -3.0],
        }
    )
    rows = pd.DataFrame({"ts_code": ["c", "x", "a", "b"], "trade_date": day})
    scores = baseline_scores(factors, rows, NAMES)
    assert scores["ts_code"].tolist() == ["c", "x", "a", "b"]  # the rows' order
    assert scores.loc[1, NAMES].isna().all()  # no bars for x: not picked
    # ranks a, b, c: reversal 1/3 2/3 1, volatility 1 1/3 2/3, amount 1/3 1 2/3
    np.testing.assert_allclose(scores.loc[[2, 3, 0], "blend"], [5 / 9, 2 / 3, 7 / 9])
    assert scores.loc[0, "reversal_20"] == 0.3


def test_history_start_is_20_market_days_before_the_first_signal_day() -> None:
    days = pd.Series(pd.bdate_range("2023-01-02", periods=30))
    assert history_start(days, "20230202") == "20230105"  # Feb 2 is day 24 -> day 4
    assert history_start(days, "20230104") == "20230102"  # not before the data


def test_an_unknown_baseline_is_a_one_line_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="'backtest.baselines'='momentum_12'") as err:
        BacktestConfig(baselines=["reversal_20", "momentum_12"])
    assert "\n" not in str(err.value)
    assert BacktestConfig().baselines == NAMES
    assert BacktestConfig(baselines=[]).baselines == []


def small_market(n_stocks: int = 8, n_days: int = 70) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    days = pd.bdate_range("2023-01-02", periods=n_days + 1)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_days, n_stocks)), axis=0))
    bars = pd.DataFrame(
        {
            "ts_code": np.tile([f"{i:06d}.SZ" for i in range(n_stocks)], n_days),
            "trade_date": np.repeat(days[1:], n_stocks),
            "open": (close * np.exp(rng.normal(0, 0.005, close.shape))).ravel(),
            "close": close.ravel(),
            "amount": rng.uniform(1e3, 1e5, close.size),
            "open_limit_up": False,
            "open_limit_down": False,
            "one_price_down": False,
        }
    )
    level = 5000 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days + 1)))
    return bars, pd.DataFrame({"ts_code": "000905.SH", "trade_date": days, "close": level})


def test_the_comparison_has_the_model_and_one_row_per_baseline(tmp_path: Path) -> None:
    bars, index = small_market()
    cfg = BacktestConfig(top_k=2, n_drop=1).with_label(LabelConfig())
    inputs = BacktestInputs(bars, index, cfg)
    rows = bars.loc[bars["trade_date"] >= bars["trade_date"].unique()[25]]
    rng = np.random.default_rng(0)
    model = run_window_backtest(inputs, signal_scores(rows, rng.random(len(rows)), 0.5), "test")
    labelled = rows[["ts_code", "trade_date"]].assign(
        label=rng.integers(0, 2, len(rows)).astype(float),
        fwd_return=rng.normal(0, 0.03, len(rows)),
        score=rng.random(len(rows)),
    )
    result = compare.compare_baselines(inputs, model, rows, labelled, top_k=3)
    assert result.table.index.tolist() == ["model", *NAMES]
    assert list(result.table.columns) == list(compare.TABLE_COLUMNS)
    for name in NAMES:
        for metric in ("rank_ic_mean", "topk_precision_mean", "bt_excess_return"):
            assert f"test_baseline_{name}_{metric}" in result.metrics
        assert np.isfinite(result.metrics[f"test_baseline_{name}_bt_excess_return_exposure"])
        # logged: the baseline's row of the table, not each of its 30 statistics
        logged = [k for k in result.metrics if k.startswith(f"test_baseline_{name}_")]
        assert sorted(logged) == sorted(
            f"test_baseline_{name}_{m}" for m in compare.TABLE_COLUMNS.values()
        )
    # every statistic of every contender, in one table
    everything = compare.all_metrics(result)
    assert everything.index.tolist() == ["model", *NAMES]
    assert everything.loc["model", "bt_trades"] == model.metrics["test_bt_trades"]
    assert everything.loc[NAMES[0], "bt_volatility"] > 0
    # the table reads the model's own account
    assert result.table.loc["model", "excess"] == model.metrics["test_bt_excess_return"]
    markdown = compare.comparison_markdown(result)
    assert result.verdict in markdown and "| reversal_20 |" in markdown
    path = compare.write_comparison_plot(result, model.benchmark, tmp_path / "baselines.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_verdict_names_each_baseline_the_model_does_not_beat() -> None:
    table = pd.DataFrame(
        {"excess_at_exposure": [0.05, 0.02, 0.08, 0.05]},
        index=["model", "reversal_20", "volatility_20", "amount_20"],
    )
    assert compare.verdict(table) == (
        "model does not beat: volatility_20 (excess at exposure +8.0% vs +5.0%), "
        "amount_20 (excess at exposure +5.0% vs +5.0%)"
    )
    beaten = table.drop(index=["volatility_20", "amount_20"])
    assert compare.verdict(beaten) == (
        "model beats all baselines on excess at exposure (after costs): +5.0% a year "
        "vs best reversal_20 +2.0%"
    )
