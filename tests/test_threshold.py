"""Threshold: maximise recall subject to precision >= target, counted on what a trader buys (at
most `max_picks_per_day` picks a day, the day's best scores, over at least `min_days` days), or
report that none does and the best precision reachable."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest_window import signal_scores
from ashare_autotune.evaluation.candidates import choose_threshold
from ashare_autotune.evaluation.threshold import (
    capped_picks,
    pick_threshold,
    precision_recall_at,
    score_grid,
    signal_picks,
    threshold_frontier,
)


def _scores(
    n: int = 5000, signal: float = 1.5, seed: int = 0, n_days: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    logit = signal * (y - 0.5) + rng.normal(0, 1, n) - 1
    return y, 1 / (1 + np.exp(-logit)), rng.integers(0, n_days, n)


def _bought(p: np.ndarray, days: np.ndarray, t: float, cap: int) -> np.ndarray:
    """The picks counted one day at a time: the day's `cap` best scores >= t."""
    picked = np.zeros(len(p), bool)
    for day in np.unique(days):
        rows = np.flatnonzero((days == day) & (p >= t))
        picked[rows[np.argsort(-p[rows], kind="stable")][:cap]] = True
    return picked


# Three days, at most two picks a day; five positives in all:
#   day 1: 0.9 hit, 0.8 miss, 0.7 hit (third best: never counted)
#   day 2: 0.6 hit, 0.4 hit
#   day 3: 0.3 miss, 0.2 hit
HAND_Y = np.array([1, 0, 1, 1, 1, 0, 1])
HAND_P = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2])
HAND_DAYS = np.array(["2024-01-02"] * 3 + ["2024-01-03"] * 2 + ["2024-01-04"] * 2)


@pytest.mark.parametrize(
    ("t", "precision", "recall", "picks", "days"),
    [
        (0.75, 1 / 2, 1 / 5, 2, 1),  # day 1's 0.9 and 0.8
        (0.5, 2 / 3, 2 / 5, 3, 2),  # + day 2's 0.6; day 1's 0.7 is past the cap
        (0.35, 3 / 4, 3 / 5, 4, 2),  # + day 2's 0.4
        (0.1, 4 / 6, 4 / 5, 6, 3),  # + day 3's two
    ],
)
def test_frontier_counts_by_hand_under_a_cap_of_two_a_day(
    t: float, precision: float, recall: float, picks: int, days: int
) -> None:
    row = threshold_frontier(HAND_Y, HAND_P, HAND_DAYS, np.array([t]), 2).iloc[0]
    assert (row["n_picks"], row["n_days"]) == (picks, days)
    assert row["precision"] == pytest.approx(precision)
    assert row["recall"] == pytest.approx(recall)


def test_the_cap_keeps_the_best_scores_of_a_day_wherever_they_sit_in_the_rows() -> None:
    p = np.array([0.5, 0.9, 0.6, 0.8, 0.7])  # one day, rows not in score order
    picked = capped_picks(p, np.zeros(5, int), 0.55, 2)
    assert picked.tolist() == [False, True, False, True, False]  # 0.9 and 0.8, not 0.7 / 0.6


def test_an_unfillable_pick_takes_its_slot_but_is_neither_hit_nor_miss() -> None:
    y = np.array([np.nan, 1, 0, 1])  # the unfillable row has no label
    p = np.array([0.9, 0.8, 0.7, 0.2])
    fillable = np.array([False, True, True, True])
    days = np.zeros(4, int)
    # cap 2: the unfillable 0.9 and the 0.8 take the slots; the 0.7 miss is not bought
    assert capped_picks(p, days, 0.5, 2, fillable).tolist() == [False, True, False, False]
    row = threshold_frontier(y, p, days, np.array([0.5]), 2, fillable).iloc[0]
    assert (row["n_picks"], row["n_days"], row["precision"], row["recall"]) == (1, 1, 1.0, 0.5)
    everything_fills = threshold_frontier(np.nan_to_num(y), p, days, np.array([0.5]), 2)
    assert everything_fills["precision"].iat[0] == 0.5  # the 0.9 then counts as a miss


def test_a_models_signal_picks_at_most_its_cap_a_day_the_days_best() -> None:
    """predict, evaluate and the `threshold` strategy pick as the threshold was chosen."""
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.3])
    days = np.array([0, 0, 0, 0, 1, 1])
    assert signal_picks(p, days, 0.5, 2).tolist() == [True, True, False, False, True, False]
    assert signal_picks(p, days, 0.5, None).tolist() == (p >= 0.5).tolist()  # an older model
    # a row outside the universe takes no slot: the day's two best of the others are picked
    eligible = np.array([False, True, True, True, True, True])
    picked = signal_picks(p, days, 0.5, 2, eligible)
    assert picked.tolist() == [False, True, True, False, True, False]
    rows = pd.DataFrame({"ts_code": list("abcdef"), "trade_date": days})
    assert (
        signal_scores(rows, p, 0.5, 2)["pick"].tolist() == signal_picks(p, days, 0.5, 2).tolist()
    )


def test_one_crowded_day_cannot_satisfy_the_target_alone() -> None:
    # day 0: 50 hits scored 0.9 (the 809-of-1,106 day in miniature); days 1..9: ten rows at
    # 0.55 with two hits each
    y = np.r_[np.ones(50), np.tile([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 9)]
    p = np.r_[np.full(50, 0.9), np.full(90, 0.55)]
    days = np.r_[np.zeros(50, int), np.repeat(np.arange(1, 10), 10)]
    pooled = pick_threshold(y, p, days, 0.6, min_picks=20, max_picks_per_day=1000, min_days=1)
    assert pooled.feasible and (pooled.threshold, pooled.precision, pooled.n_days) == (0.9, 1, 1)
    capped = pick_threshold(y, p, days, 0.6, min_picks=20, max_picks_per_day=10, min_days=3)
    # above 0.55: 10 picks on one day (too few picks, too few days); at or below: day 0's ten
    # hits and 9 x 2 hits of 100 picks
    assert not capped.feasible
    assert capped.best_precision == pytest.approx(28 / 100)
    assert (capped.precision, capped.n_picks, capped.n_days) == (pytest.approx(0.28), 100, 10)


def test_chosen_threshold_meets_precision_and_has_the_best_recall_of_all_that_do() -> None:
    y, p, days = _scores()
    choice = pick_threshold(y, p, days, 0.6, step=0.01, max_picks_per_day=5, min_days=20)
    assert choice.feasible
    picked = _bought(p, days, choice.threshold, 5)
    assert y[picked].mean() >= 0.6 and picked.sum() >= 20
    assert len(np.unique(days[picked])) == choice.n_days >= 20
    assert choice.precision == pytest.approx(y[picked].mean())
    assert choice.recall == pytest.approx(y[picked].sum() / y.sum())
    for t in np.arange(0.05, 0.951, 0.01):  # brute force over the same grid
        sel = _bought(p, days, t, 5)
        if sel.sum() >= 20 and len(np.unique(days[sel])) >= 20 and y[sel].mean() >= 0.6:
            assert y[sel].sum() / y.sum() <= choice.recall + 1e-12


def test_infeasible_target_is_reported_with_the_best_precision_reachable() -> None:
    y, p, days = _scores(signal=0.2)
    choice = pick_threshold(y, p, days, target_precision=0.95)
    assert not choice.feasible
    assert choice.best_precision < 0.95
    assert choice.precision == pytest.approx(choice.best_precision)
    frontier = choice.frontier
    assert frontier is not None and not frontier["meets"].any()
    assert frontier.loc[frontier["enough"], "precision"].max() == choice.best_precision


def test_a_few_lucky_picks_do_not_satisfy_the_constraint() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    days = np.arange(10)
    assert not pick_threshold(y, p, days, 0.6, min_picks=5, min_days=1).feasible
    assert pick_threshold(y, p, days, 0.6, min_picks=2, min_days=1).feasible
    assert not pick_threshold(y, p, days, 0.6, min_picks=2, min_days=3).feasible


def test_vectorised_frontier_matches_a_count_one_day_at_a_time() -> None:
    y, p, days = _scores(n=600, n_days=15)
    grid = np.linspace(0, 1, 41)
    frontier = threshold_frontier(y, p, days, grid, 3)
    for t, row in zip(grid, frontier.itertuples(), strict=True):
        sel = _bought(p, days, t, 3)
        assert (row.n_picks, row.n_days) == (sel.sum(), len(np.unique(days[sel])))
        assert row.precision == pytest.approx(y[sel].mean() if sel.any() else 0.0)
        assert row.recall == pytest.approx(y[sel].sum() / y.sum())


def test_pooled_precision_recall_match_a_direct_count() -> None:
    y, p, _ = _scores(n=300)
    grid = np.linspace(0, 1, 41)
    precision, recall, picks = precision_recall_at(y, p, grid)
    for t, prec, rec, k in zip(grid, precision, recall, picks, strict=True):
        sel = p >= t
        assert k == sel.sum()
        assert prec == pytest.approx(y[sel].mean() if sel.any() else 0.0)
        assert rec == pytest.approx(y[sel].sum() / y.sum())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("threshold.max_picks_per_day=0", "config key 'threshold.max_picks_per_day'=0"),
        ("threshold.min_days=0", "config key 'threshold.min_days'=0"),
    ],
)
def test_a_cap_or_day_count_below_one_is_a_one_line_error(
    override: str, message: str, compose_app: Callable[..., AppConfig]
) -> None:
    with pytest.raises(ConfigError) as err:
        compose_app(override)
    assert message in str(err.value) and "must be >= 1" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_defaults_count_a_top_10_list_over_20_days(
    compose_app: Callable[..., AppConfig],
) -> None:
    th = compose_app(debug=False).threshold
    assert (th.max_picks_per_day, th.min_days) == (10, 20)
    assert th.describe() == "with >= 20 picks over >= 20 days (at most 10 a day)"


def test_a_scores_grid_is_its_quantiles_at_the_configured_levels() -> None:
    scores = np.array([-3.0, -1.0, 0.0, 2.0, 5.0, np.nan])  # NaN: not scored, ignored
    # levels 0, 0.25, ..., 1 of the five known scores are the scores themselves
    assert score_grid(scores, 0.0, 1.0, 0.25).tolist() == [-3.0, -1.0, 0.0, 2.0, 5.0]
    # levels 0.5 and 0.625 (interpolated: 0 + 0.5 * (2 - 0)); a repeated quantile once
    assert score_grid(scores, 0.5, 0.625, 0.125).tolist() == [0.0, 1.0]
    assert score_grid(np.array([1.0, 1.0, 1.0]), 0.1, 0.9, 0.1).tolist() == [1.0]


def test_a_ranker_scores_threshold_is_chosen_among_its_validation_quantiles(
    compose_app: Callable[..., AppConfig],
) -> None:
    y, proba, days = _scores()
    scores = 40 * proba - 7  # a ranker's margin: the same order, not a probability
    app = compose_app("model=lightgbm", "model.objective=lambdarank")
    ranked = choose_threshold(app.threshold, app.model.objective, y, scores, days)
    grid = score_grid(scores, app.threshold.low, app.threshold.high, app.threshold.step)
    assert ranked.threshold in grid and ranked.feasible
    assert ranked.precision >= app.threshold.target_precision
    # the same picks as the probability at the matching cut: the order is all that counts
    frontier = ranked.frontier
    i = int(np.flatnonzero(frontier["threshold"].to_numpy() == ranked.threshold)[0])
    same = pick_threshold(y, proba, days, 0.6, grid=(grid + 7) / 40, min_picks=5)
    assert same.frontier["n_picks"].iat[i] == frontier["n_picks"].iat[i]
    # the probability grid [0.05, 0.95] would have picked every row of a score above 0.95
    assert (scores > app.threshold.high).mean() > 0.5
