"""How our whole job's wall time and peak memory grow with the number of stocks.

Runs `benchmarks.run_pipeline` once per universe size, each in its own process (peak RSS from
`wait4`), on the synthetic market, and prints a markdown table with the machine load.

    python -m benchmarks.scaling --sizes 150 500 1500 5000 --n-days 2000 --trials 50
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from benchmarks.compare import run_job

HEADER = (
    "| stocks | rows | wall (s) | per trial (s) | trials (complete/pruned) | features rows/s "
    "| boosting share | peak RSS (GB) | load before -> after |"
)


def row(r: dict[str, Any]) -> str:
    """One markdown row of a run_pipeline result."""
    states = r["trial_states"]
    return (
        f"| {r['stocks']:,} | {r['rows']:,} | {r['process_wall_s']:.0f} | {r['per_trial_s']:.2f} "
        f"| {states.get('complete', 0)}/{states.get('pruned', 0)} "
        f"| {r['features_rows_per_s']:,} | {r['boosting_share']:.0%} "
        f"| {r['process_peak_rss_gb']:.2f} | {r['load_before'][0]} -> {r['load_after'][0]} |"
    )


def main() -> None:
    """Run the job at each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 500, 1500, 5000])
    parser.add_argument("--n-days", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--include", type=Path, nargs="*", default=[], help="earlier results")
    parser.add_argument("--out", type=Path)
    parser.add_argument("override", nargs="*", help="Hydra overrides for our pipeline")
    args = parser.parse_args()
    results = [json.loads(p.read_text(encoding="utf-8")) for p in args.include]
    results = [r.get("pipeline", r) for r in results]  # a compare result holds it as "pipeline"
    with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
        for n in args.sizes:
            argv = [f"--n-stocks={n}", f"--n-days={args.n_days}", f"--trials={args.trials}"]
            out = Path(tmp) / f"{n}.json"
            results.append(run_job("benchmarks.run_pipeline", [*argv, *args.override], out))
            print(row(results[-1]), flush=True)
    results.sort(key=lambda r: r["stocks"])
    print("\n".join([HEADER, "|" + "---|" * 9, *map(row, results)]))
    write_result({"runs": results}, args.out)


if __name__ == "__main__":
    main()
