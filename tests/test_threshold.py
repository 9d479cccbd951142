"""Threshold: maximise recall subject to precision >= target, or report that none does."""

from __future__ import annotations

import numpy as np
import pytest

from ashare_autotune.evaluation.threshold import pick_threshold, precision_recall_at


def _scores(n: int = 5000, signal: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    logit = signal * (y - 0.5) + rng.normal(0, 1, n) - 1
    return y, 1 / (1 + np.exp(-logit))


def test_chosen_threshold_meets_precision_and_has_the_best_recall_of_all_that_do() -> None:
    y, p = _scores()
    choice = pick_threshold(y, p, target_precision=0.6, step=0.01, min_picks=20)
    assert choice.feasible
    picked = p >= choice.threshold
    assert y[picked].mean() >= 0.6 and picked.sum() >= 20
    assert choice.precision == pytest.approx(y[picked].mean())
    assert choice.recall == pytest.approx(y[picked].sum() / y.sum())
    for t in np.arange(0.05, 0.951, 0.01):  # brute force over the same grid
        sel = p >= t
        if sel.sum() >= 20 and y[sel].mean() >= 0.6:
            assert y[sel].sum() / y.sum() <= choice.recall + 1e-12


def test_infeasible_target_is_reported_with_the_best_precision_reached() -> None:
    y, p = _scores(signal=0.2)
    choice = pick_threshold(y, p, target_precision=0.95, min_picks=20)
    assert not choice.feasible
    assert choice.best_precision < 0.95
    assert choice.precision == pytest.approx(choice.best_precision)


def test_a_few_lucky_picks_do_not_satisfy_the_constraint() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    assert not pick_threshold(y, p, 0.6, min_picks=5).feasible
    assert pick_threshold(y, p, 0.6, min_picks=2).feasible


def test_vectorised_precision_recall_match_a_direct_count() -> None:
    y, p = _scores(n=300)
    grid = np.linspace(0, 1, 41)
    precision, recall, picks = precision_recall_at(y, p, grid)
    for t, prec, rec, k in zip(grid, precision, recall, picks, strict=True):
        sel = p >= t
        assert k == sel.sum()
        assert prec == pytest.approx(y[sel].mean() if sel.any() else 0.0)
        assert rec == pytest.approx(y[sel].sum() / y.sum())
