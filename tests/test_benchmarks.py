"""The side-by-side benchmark's bookkeeping: which job runs first, and the summary over pairs."""

from __future__ import annotations

from benchmarks.compare import pair_orders, summary, summary_table


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
