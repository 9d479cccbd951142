"""Collect a finished rolling run into one benchmark result (issue 26): the record by year (signal,
the accounts after costs beside 000905.SH, the one-line baselines and the model trained once),
the totals, the windows, and the run's cost from its own log and `/usr/bin/time -v`.

Run the job first (whole market: under `flock /tmp/wholemarket.lock`, `/usr/bin/time -v`, its
stdout and stderr kept), then:

    python -m benchmarks.rolling_record --tracking-uri sqlite:///mlflow.db --run-id RUN \\
        --log job.out --time-v job.err --command "python -m ashare_autotune.rolling ..." \\
        --load-start "..." --load-end "..." --out benchmarks/results/rolling_whole_market.json \\
        --figures docs/img/rolling_whole_market

It reads the run's artifacts (`rolling/by_year.csv`, `rolling/returns_by_year.csv`,
`rolling/windows.csv`, `backtest/baselines.csv`, the figures) and metrics; it measures nothing
itself. `--figures P` copies the job's own figures: `P_baselines.png` (the record's account
against 000905.SH and the baselines) and `P_cumulative_ic.png`. `--profile R` embeds an earlier
result of this script (e.g. a short profiling run) under "profile".
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from benchmarks.common import write_result

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+\]")
TIME_V = {
    "wall": "Elapsed (wall clock) time (h:mm:ss or m:ss)",
    "peak_rss_kib": "Maximum resident set size (kbytes)",
    "cpu_percent": "Percent of CPU this job got",
}
TOTALS = ("rank_ic_mean", "rank_ic_t", "topk_precision_mean", "pick_precision")
ACCOUNT = ("annual_return", "excess_return", "excess_return_exposure", "information_ratio")
ACCOUNT += ("max_drawdown", "beta", "invested_mean", "turnover")


def stamped(log: str, pattern: str) -> list[datetime]:
    """The times of the log lines that match `pattern`."""
    found = []
    for line in log.splitlines():
        m = STAMP.match(line)
        if m and re.search(pattern, line):
            found.append(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
    return found


def phases(log: str) -> dict[str, Any]:
    """Seconds of each phase, from the job's log lines: data and features (to the study's
    start), the study (one tuning round: what a re-tune costs), each window (its fit, refit and
    scoring; the first from the study's end), and the judge (the accounts, baselines, the
    model trained once, registration)."""
    start = stamped(log, r"market data:")[0]
    study = stamped(log, r"running \d+ trial")
    tuned = stamped(log, r"rolling\.tune\].*best")
    windows = stamped(log, r"window \d+: fit")
    done = stamped(log, r"- done: run")[-1]
    first = tuned[0] if tuned else start
    ticks = [first, *windows]
    return {
        "load_and_features_s": (study[0] if study else windows[0]).timestamp() - start.timestamp(),
        "tuning_round_s": [(b - a).total_seconds() for a, b in zip(study, tuned, strict=False)],
        "windows_s": [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)],
        "judge_and_register_s": (done - windows[-1]).total_seconds(),
        "note": "from the job's log timestamps; data loading before its first line is not in it",
    }


def time_v(text: str) -> dict[str, Any]:
    """Wall clock, peak RSS and CPU share from `/usr/bin/time -v`'s report."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        for key, label in TIME_V.items():
            if line.strip().startswith(label):
                out[key] = line.split(": ", 1)[1].strip()
    out["peak_rss_gb"] = round(int(out["peak_rss_kib"]) * 1024 / 1e9, 2)
    return out


def records(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """A by-year table as {year: {column: value}} (JSON-ready, rounded)."""
    return {str(i): {c: round(float(v), 5) for c, v in row.items()} for i, row in table.iterrows()}


def collect(args: argparse.Namespace) -> dict[str, Any]:
    mlflow.set_tracking_uri(args.tracking_uri)
    run = mlflow.MlflowClient().get_run(args.run_id)
    art = Path(mlflow.artifacts.download_artifacts(run_id=args.run_id))
    metrics = run.data.metrics
    log = Path(args.log).read_text()
    by_year = pd.read_csv(art / "rolling" / "by_year.csv", index_col="year")
    returns = pd.read_csv(art / "rolling" / "returns_by_year.csv", index_col="year")
    windows = pd.read_csv(art / "rolling" / "windows.csv")
    baselines = pd.read_csv(art / "backtest" / "baselines.csv", index_col="name")
    return {
        "script": "benchmarks.rolling_record",
        "command": args.command,
        "run_id": args.run_id,
        "params": {k: v for k, v in run.data.params.items() if not k.startswith("features")},
        "load_start": args.load_start,
        "load_end": args.load_end,
        "time_v": time_v(Path(args.time_v).read_text()),
        "phases": phases(log),
        "signal_by_year": records(by_year),
        "returns_by_year_after_costs": records(returns),
        "total": {
            "rolling": {m: metrics.get(f"roll_{m}") for m in TOTALS}
            | {f"bt_{m}": metrics.get(f"roll_bt_{m}") for m in ACCOUNT},
            "trained_once": {m: metrics.get(f"once_{m}") for m in TOTALS}
            | {f"bt_{m}": metrics.get(f"once_bt_{m}") for m in ACCOUNT},
        },
        "baselines_total": records(baselines),
        "windows": windows.to_dict(orient="records"),
        "artifacts": str(art),
    }


def year_label(year: str, first: str, last: str) -> str:
    """'2019 (Jul-Dec)' for a year the record covers in part (YYYYMMDD first and last days)."""
    if year == "total":
        return "total (a year)"
    lo = first[4:6] if first[:4] == year else "01"
    hi = last[4:6] if last[:4] == year else "12"
    if (lo, hi) == ("01", "12"):
        return year
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return f"{year} ({months[int(lo) - 1]}-{months[int(hi) - 1]})"


def markdown(result: dict[str, Any]) -> str:
    """The README's table: by calendar year and in total, the signal (daily Rank IC and its t,
    top-k precision) and the accounts after costs (the record's, the model trained once,
    000905.SH, each baseline)."""
    signal, returns = result["signal_by_year"], result["returns_by_year_after_costs"]
    first = str(min(w["score_start"] for w in result["windows"]))
    last = str(max(w["score_end"] for w in result["windows"]))
    names = [n for n in next(iter(returns.values())) if n != "model"]
    head = ["year", "daily Rank IC (t)", "trained once: Rank IC", "top-k precision"]
    head += ["account", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for year, row in signal.items():
        money = returns.get(year) or returns.get("total (a year)" if year == "total" else year)
        cells = [
            year_label(year, first, last),
            f"{row['rank_ic_mean']:+.3f} ({row['rank_ic_t']:+.1f})",
            f"{row.get('once_rank_ic_mean', float('nan')):+.3f}",
            f"{row['topk_precision_mean']:.3f}",
        ]
        cells += [f"{money[n]:+.1%}" if money else "" for n in ["model", *names]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def copy_figures(art: Path, prefix: str) -> None:
    """The job's own figures, under `prefix` (e.g. docs/img/rolling_whole_market)."""
    shutil.copyfile(art / "backtest" / "baselines.png", f"{prefix}_baselines.png")
    shutil.copyfile(art / "rolling" / "cumulative_ic.png", f"{prefix}_cumulative_ic.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--log", required=True, help="the job's log (its stdout)")
    p.add_argument("--time-v", required=True, help="the stderr of /usr/bin/time -v")
    p.add_argument("--command", required=True)
    p.add_argument("--load-start", default="")
    p.add_argument("--load-end", default="")
    p.add_argument("--out", type=Path)
    p.add_argument("--figures", help="copy the job's figures to <this>_baselines.png, ...")
    p.add_argument("--markdown", type=Path, help="write the README's by-year table here")
    p.add_argument("--profile", type=Path, help="an earlier result of this script to embed")
    args = p.parse_args()
    result = collect(args)
    if args.profile:
        result["profile"] = json.loads(args.profile.read_text())
    if args.markdown:
        args.markdown.write_text(markdown(result) + "\n")
    if args.figures:
        copy_figures(Path(result["artifacts"]), args.figures)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
