"""The naive reference and our pipeline side by side, in one run, on the same data.

Each job runs in its own subprocess (so its peak RSS is its own, read from `wait4`), one after
the other (the reference first; ours first with `--ours-first`), and the machine's load average
is recorded before and after each. Prints a table of wall time, time per trial, peak RSS, best
validation AUC and test AUC, and our/reference ratios.

The machine is shared and its speed moves from minute to minute, so one pair is one sample.
`--pairs N` runs N pairs in one go, alternating which job goes first, and adds the median,
lowest and highest of each ratio over the pairs.

    python -m benchmarks.compare --source files --n-stocks 150 --trials 50
    python -m benchmarks.compare --source files --n-stocks 150 --trials 50 --pairs 6
    python -m benchmarks.compare --source synthetic --n-stocks 5000 --n-days 2000 \\
        --trials 50 --ref-trials 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import add_data_args, load, write_result

ROWS = (
    ("process wall (s)", "process_wall_s", "{:.1f}"),
    ("job wall (s)", "wall_s", "{:.1f}"),
    ("process CPU, user + system (s)", "process_cpu_s", "{:.1f}"),
    ("trials", "trials", "{}"),
    ("time per trial (s)", "per_trial_s", "{:.2f}"),
    ("features (s)", "features_s", "{:.1f}"),
    ("features rows/s", "features_rows_per_s", "{:,.0f}"),
    ("peak RSS (GB)", "process_peak_rss_gb", "{:.2f}"),
    ("best trial's val AUC", "best_val_auc", "{:.4f}"),
    ("final model's val AUC", "val_auc", "{:.4f}"),
    ("test AUC", "test_auc", "{:.4f}"),
    ("load avg before", "load_before", "{}"),
    ("load avg after", "load_after", "{}"),
)


def data_args(args: argparse.Namespace) -> list[str]:
    """The data options, passed identically to both jobs."""
    return [
        f"--source={args.source}",
        f"--n-stocks={args.n_stocks}",
        f"--n-days={args.n_days}",
        f"--data-dir={args.data_dir}",
        f"--n-jobs={args.n_jobs}",
    ]


def run_job(
    module: str, argv: list[str], out: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `python -m module argv --out out` in its own process; add its wall time and peak RSS.

    Args:
        module: benchmarks.naive_reference or benchmarks.run_pipeline.
        argv: its options.
        out: where it writes its JSON result.
        env: extra environment variables for the job.
    """
    before, start = load(), time.perf_counter()
    cmd = [sys.executable, "-m", module, *argv, f"--out={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=os.environ | (env or {}))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{module} failed with exit status {proc.returncode}: {' '.join(cmd)}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["process_wall_s"] = round(time.perf_counter() - start, 2)
    result["process_peak_rss_gb"] = round(usage.ru_maxrss * 1024 / 1e9, 3)
    # CPU seconds (user + system, all threads): the machine's speed moves them too, but not
    # the time the process waited for a core or for the disk
    result["process_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["features_s"] = result["phases_s"].get("features")
    result["load_before"], result["load_after"] = before, load()
    result["env"] = env or {}
    return result


def create_store(workdir: Path) -> None:
    """Create the MLflow SQLite store (schema, no runs) our job will use, in its own process,
    so that our job finds its tables made and migrated, as on every run after a user's first."""
    workdir.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, mlflow\n"
        "mlflow.MlflowClient(f'sqlite:///{sys.argv[1]}/mlflow.db').search_experiments()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(workdir)], check=True, capture_output=True)


def ratios(ref: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    """Reference / ours for times and memory (higher is better for us), and AUC differences."""
    return {
        "per_trial_speedup": round(ref["per_trial_s"] / ours["per_trial_s"], 2),
        "wall_speedup": round(ref["process_wall_s"] / ours["process_wall_s"], 2),
        "job_wall_speedup": round(ref["wall_s"] / ours["wall_s"], 2),
        "cpu_speedup": round(ref["process_cpu_s"] / ours["process_cpu_s"], 2),
        "features_speedup": round(ref["features_s"] / ours["features_s"], 2),
        "peak_rss_ratio": round(ref["process_peak_rss_gb"] / ours["process_peak_rss_gb"], 2),
        "best_val_auc_diff": round(ours["best_val_auc"] - ref["best_val_auc"], 4),
        "final_val_auc_diff": round(ours["val_auc"] - ref["val_auc"], 4),
        "test_auc_diff": round(ours["test_auc"] - ref["test_auc"], 4),
    }


def pair_orders(pairs: int, ours_first: bool) -> list[bool]:
    """For each pair, whether our job runs first: alternating, starting as `ours_first` says."""
    return [ours_first != (i % 2 == 1) for i in range(pairs)]


def summary(pair_ratios: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, lowest and highest of each ratio over the pairs."""
    stats = {}
    for key in pair_ratios[0]:
        values = [r[key] for r in pair_ratios]
        stats[key] = {
            "median": round(statistics.median(values), 4),
            "min": min(values),
            "max": max(values),
        }
    return stats


def summary_table(stats: dict[str, dict[str, float]], pairs: int) -> str:
    """A markdown table of the ratios over the pairs."""
    lines = [f"| over {pairs} pairs | median | lowest | highest |", "|---|---|---|---|"]
    for key, s in stats.items():
        lines.append(f"| {key} | {s['median']:g} | {s['min']:g} | {s['max']:g} |")
    return "\n".join(lines)


def table(ref: dict[str, Any], ours: dict[str, Any]) -> str:
    """A markdown table of both jobs."""
    lines = ["| | naive reference | pipeline |", "|---|---|---|"]
    for label, key, fmt in ROWS:
        cells = [fmt.format(job[key]) if job.get(key) is not None else "-" for job in (ref, ours)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    """Run both jobs on the same data and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(parser)
    parser.add_argument("--ref-trials", type=int, help="reference trials (default: --trials)")
    parser.add_argument(
        "--ref-env",
        nargs="*",
        default=[],
        help="NAME=VALUE for the reference only, e.g. OMP_WAIT_POLICY=PASSIVE",
    )
    parser.add_argument("--workdir", type=Path, help="keep our job's stores here (see progress)")
    parser.add_argument(
        "--existing-store",
        action="store_true",
        help="create our job's (empty) MLflow store before it starts, as after a user's first run",
    )
    parser.add_argument(
        "--ours-first",
        action="store_true",
        help="run our job before the reference (alternate to see any order effect)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="run this many pairs, alternating which job goes first, and summarise the ratios",
    )
    parser.add_argument("override", nargs="*", help="Hydra overrides for our pipeline")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, not {args.pairs}")
    results = []
    for number, ours_first in enumerate(pair_orders(args.pairs, args.ours_first), start=1):
        if args.pairs > 1:
            order = "ours first" if ours_first else "reference first"
            print(f"pair {number} of {args.pairs} ({order})", flush=True)
        results.append(run_pair(args, ours_first, number))
        print(table(results[-1]["reference"], results[-1]["pipeline"]), flush=True)
    if args.pairs == 1:
        write_result(results[0], args.out)
        return
    stats = summary([r["ratios"] for r in results])
    print(summary_table(stats, args.pairs))
    write_result({"pairs": results, "summary": stats}, args.out)


def run_pair(args: argparse.Namespace, ours_first: bool, number: int) -> dict[str, Any]:
    """The reference and our job once each, on fresh stores; both results and their ratios."""
    common = data_args(args)
    suffix = f"_{number}" if args.pairs > 1 else ""
    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        ours_dir = args.workdir or (Path(tmp) / "ours" if args.existing_store else None)
        if ours_dir is not None and args.pairs > 1:
            ours_dir = ours_dir / f"pair{number}"  # a fresh study in every pair
        workdir = [f"--workdir={ours_dir}"] if ours_dir else []

        def reference() -> dict[str, Any]:
            result = run_job(
                "benchmarks.naive_reference",
                [*common, f"--trials={args.ref_trials or args.trials}"],
                Path(tmp) / "ref.json",
                dict(item.split("=", 1) for item in args.ref_env),
            )
            if args.out:  # the reference's result survives even if our job is stopped
                name = f"{args.out.stem}{suffix}.reference.json"
                write_result(result, args.out.with_name(name))
            return result

        def pipeline() -> dict[str, Any]:
            if args.existing_store:
                create_store(ours_dir)
            return run_job(
                "benchmarks.run_pipeline",
                [*common, f"--trials={args.trials}", *workdir, *args.override],
                Path(tmp) / "ours.json",
            )

        if ours_first:
            ours, ref = pipeline(), reference()
        else:
            ref, ours = reference(), pipeline()
    ours["existing_store"] = args.existing_store
    ours["ran_first"] = ours_first
    return {"reference": ref, "pipeline": ours, "ratios": ratios(ref, ours)}


if __name__ == "__main__":
    main()
