"""The benchmarks' bookkeeping: which job runs first and the summary over pairs (compare);
the ranking designs' relevance and parameters (signal_compare)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from benchmarks.compare import pair_orders, summary, summary_table
from benchmarks.signal_compare import day_quintiles, ranker_params

from ashare_autotune.config.schema import AppConfig


def test_pairs_alternate_which_job_runs_first() -> None:
    assert pair_orders(4, ours_first=False) == [False, True, False, True]
    assert pair_orders(3, ours_first=True) == [True, False, True]
    assert pair_orders(1, ours_first=False) == [False]


def test_summary_gives_median_lowest_and_highest_of_each_ratio() -> None:
    pairs = [
        {"job_wall_speedup": 2.3, "test_auc_diff": 0.002},
        {"job_wall_speedup": 1.9, "test_auc_diff": 0.004},
        {"job_wall_speedup": 2.1, "test_auc_diff": 0.003},
        {"job_wall_speedup": 2.6, "test_auc_diff": 0.003},
    ]

    stats = summary(pairs)

    assert stats["job_wall_speedup"] == {"median": 2.2, "min": 1.9, "max": 2.6}
    assert stats["test_auc_diff"] == {"median": 0.003, "min": 0.002, "max": 0.004}
    table = summary_table(stats, len(pairs))
    assert "| over 4 pairs | median | lowest | highest |" in table
    assert "| job_wall_speedup | 2.2 | 1.9 | 2.6 |" in table


def test_ranking_relevance_is_the_days_own_quintile_of_the_forward_return() -> None:
    day = np.repeat([0, 1], 10)
    fwd = np.concatenate([np.arange(10.0), np.arange(10.0) * 100])  # day 1: other scale
    q = day_quintiles(fwd, day)
    expected = np.repeat(np.arange(5), 2).astype(np.float32)
    np.testing.assert_array_equal(q, np.concatenate([expected, expected]))  # within the day
    fwd[:10] = fwd[:10][::-1]  # reorder day 0 only: day 1 keeps its quintiles
    np.testing.assert_array_equal(day_quintiles(fwd, day)[10:], expected)


def test_a_ranker_spec_names_objective_pairs_and_early_stopping_metric(
    compose_app: Callable[..., AppConfig],
) -> None:
    app = compose_app()
    params = ranker_params("rank:pairwise/quintile/mean/8/rank_ic", app)
    assert params["objective"] == "rank:pairwise" and params["lambdarank_pair_method"] == "mean"
    assert params["lambdarank_num_pair_per_sample"] == 8
    assert params["eval_metric"] is None  # fit_ranker's own daily Rank IC
    assert ranker_params("rank:pairwise/quintile///auc", app)["eval_metric"] == "auc"
    assert ranker_params("rank:ndcg/label", app)["eval_metric"] == f"ndcg@{app.trading.top_k}"
