"""How long the threshold choice takes under the per-day cap (issue 24, item 6): the grid's
precision, recall, picks and days with a pick at each of ~180 thresholds, on a validation
segment the size of the whole market (1M rows over 400 days, ~2,500 stocks a day).

Scores are seeded noise with a weak label link: the point is the speed, not the threshold.

    python -m benchmarks.threshold_speed --out benchmarks/results/threshold_speed.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ashare_autotune.config.schema import ThresholdConfig
from ashare_autotune.evaluation.threshold import pick_threshold
from benchmarks.common import load, write_result


def measure(n_rows: int, n_days: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Seconds of `pick_threshold` with the default config (best and median of `repeats`)."""
    rng = np.random.default_rng(seed)
    days = np.datetime64("2021-01-04") + np.sort(rng.integers(0, n_days, n_rows))
    y = (rng.random(n_rows) < 0.3).astype(np.float32)
    proba = 1 / (1 + np.exp(-(0.8 * (y - 0.5) + rng.normal(0, 1, n_rows) - 1)))
    th = ThresholdConfig()
    args = (th.target_precision, th.low, th.high, th.step, th.min_picks)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        choice = pick_threshold(y, proba, days, *args, th.max_picks_per_day, th.min_days)
        seconds.append(time.perf_counter() - start)
    return {
        "n_rows": n_rows,
        "n_days": n_days,
        "grid_size": int(len(np.arange(th.low, th.high + th.step / 2, th.step))),
        "seconds_best": round(min(seconds), 3),
        "seconds_median": round(float(np.median(seconds)), 3),
        "threshold": choice.threshold,
        "n_picks": choice.n_picks,
        "n_days_with_picks": choice.n_days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = measure(args.rows, args.days, args.repeats) | {"load_before": load()}
    write_result(result, args.out)


if __name__ == "__main__":
    main()
