"""The stitched record judged: signal metrics over the span and by calendar year, the
threshold picks' precision, the accounts' returns by year, the per-window table, the plots.
Pure: frames in, numbers, tables and figures out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ashare_autotune.evaluation.backtest_report import DPI, strategy_returns
from ashare_autotune.evaluation.baseline_compare import Comparison
from ashare_autotune.evaluation.records import signal_metrics
from ashare_autotune.evaluation.signal import daily_signal

YEAR_SIGNAL = ("rank_ic_mean", "rank_ic_t", "ic_mean", "topk_precision_mean", "days")


def picks_precision(record: pd.DataFrame) -> tuple[float, int]:
    """(precision, count) of the threshold's picks that fill and have a label."""
    counted = record["pick"].to_numpy(bool) & record["fillable"].to_numpy(bool)
    counted &= record["label"].notna().to_numpy()
    n = int(counted.sum())
    return (float(record["label"].to_numpy()[counted].mean()) if n else float("nan")), n


def record_metrics(record: pd.DataFrame, top_k: int, prefix: str) -> dict[str, float]:
    """`<prefix>_*` signal metrics of a record and its picks' precision."""
    precision, n = picks_precision(record)
    out = signal_metrics(record, top_k, prefix)
    return out | {f"{prefix}_pick_precision": precision, f"{prefix}_n_picks": float(n)}


def by_year(record: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One row per calendar year of the record (and "total"): daily Rank IC (mean, t), IC,
    top-k precision, the threshold picks' precision and the days."""
    years = pd.to_datetime(record["trade_date"]).dt.year
    rows = {str(y): _year_row(record.loc[years == y], top_k) for y in sorted(years.unique())}
    rows["total"] = _year_row(record, top_k)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "year"
    return table


def _year_row(record: pd.DataFrame, top_k: int) -> dict[str, float]:
    metrics = record_metrics(record, top_k, "r")
    row = {m: metrics[f"r_{m}"] for m in YEAR_SIGNAL}
    return row | {"pick_precision": metrics["r_pick_precision"], "n_picks": metrics["r_n_picks"]}


def yearly_returns(
    comparison: Comparison | None, model: pd.Series, bench: pd.Series
) -> pd.DataFrame:
    """Each account's compounded return per calendar year (and "total", a year's rate):
    the model, the benchmark, and each baseline of `comparison`."""
    series = {"model": model, str(bench.name or "benchmark"): bench}
    for c in comparison.contenders[1:] if comparison else []:
        series[c.name] = strategy_returns(c.report.result)
    frame = pd.DataFrame(series).fillna(0.0)
    yearly = (1 + frame).groupby(frame.index.year).prod() - 1
    yearly.index = yearly.index.astype(str)
    growth = (1 + frame).prod()
    years = len(frame) / 244
    yearly.loc["total (a year)"] = growth ** (1 / years) - 1 if years > 0 else np.nan
    yearly.index.name = "year"
    return yearly


def windows_table(windows: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """One row per window: its spans, rounds, threshold, validation and step metrics."""
    rows = []
    for k in sorted(windows):
        facts = windows[k]
        flat = {key: v for key, v in facts.items() if not isinstance(v, dict)}
        rows.append({"window": k, **flat, **facts.get("metrics", {})})
    return pd.DataFrame(rows).set_index("window")


def markdown(table: pd.DataFrame, fmt: str = "{:.4f}") -> str:
    """A table as markdown (numbers with `fmt`)."""
    head = f"| {table.index.name or ''} | " + " | ".join(map(str, table.columns)) + " |"
    lines = [head, "|---|" + "---:|" * len(table.columns)]
    for name, row in table.iterrows():
        cells = [fmt.format(v) if isinstance(v, float | np.floating) else str(v) for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cumulative_ic_figure(record: pd.DataFrame, top_k: int, windows: pd.DataFrame) -> Figure:
    """Cumulative daily IC and Rank IC over the span, each refit marked."""
    daily = daily_signal(record.rename(columns={"probability": "score"}), top_k)
    days = pd.to_datetime(daily.index)
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    ax.plot(days, daily["rank_ic"].fillna(0).cumsum(), label="cumulative Rank IC")
    ax.plot(days, daily["ic"].fillna(0).cumsum(), label="cumulative IC", linewidth=1)
    for start in pd.to_datetime(windows["score_start"]):
        ax.axvline(start, color="grey", linewidth=0.5, linestyle=":")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(title="Rolling retrain: cumulative daily IC (dotted: refits)", ylabel="sum of daily IC")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
