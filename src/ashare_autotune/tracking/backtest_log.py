"""A backtest's report on the active MLflow run: `<segment>_bt_*` metrics and, under
`backtest/`, the plots, the HTML tear sheet, the statistics table and the trades and daily
account as parquet."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ashare_autotune.evaluation.backtest_report import write_backtest_plots, write_tearsheet
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    BacktestReport,
    run_window_backtest,
    signal_scores,
    stats_markdown,
)
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.tracking import runs as tracking

ARTIFACT_DIR = "backtest"


def log_backtest(report: BacktestReport, title: str) -> dict[str, float]:
    """Log the report's metrics and artifacts on the active run.

    Artifacts: backtest/equity.png, drawdown.png, monthly_returns.png, tearsheet.html,
    summary.md, trades.parquet, daily.parquet.

    Args:
        report: the finished backtest.
        title: the tear sheet's title (e.g. "ashare-autotune-xgb v3, test 2021-07..2023-03").

    Returns:
        The metrics logged.
    """
    tracking.log_metrics(report.metrics)
    log_backtest_artifacts(report, title)
    return report.metrics


def log_backtest_artifacts(report: BacktestReport, title: str) -> None:
    """Log the report's files under `backtest/` on the active run (see `log_backtest`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for path in write_backtest_plots(report.result, report.benchmark, out):
            path.rename(out / path.name.removeprefix("backtest_"))
        write_tearsheet(report.result, report.benchmark, out / "tearsheet.html", title)
        (out / "summary.md").write_text(stats_markdown(report))
        report.result.trades.to_parquet(out / "trades.parquet", index=False)
        report.result.daily.to_parquet(out / "daily.parquet", index=False)
        tracking.log_artifacts(out, ARTIFACT_DIR)


def log_segment_backtest(
    ds: Dataset,
    segment: str,
    inputs: BacktestInputs | None,
    probability: np.ndarray,
    threshold: float,
) -> dict[str, float]:
    """Backtest one scored segment of the dataset and log its report (nothing without inputs:
    `backtest.enabled=false`).

    Every row of the segment is a signal, also one whose next-open entry will not fill: the
    signal at T cannot know that; the simulation decides the fills.

    Args:
        ds: the dataset.
        segment: "test" (or "val").
        inputs: bars, benchmark and configuration (`backtest_window.prepare_backtest`), or None.
        probability: the model's probability of every row of the segment, unfillable ones
            included, in row order (`Dataset.predict(..., all_rows=True)`).
        threshold: the pick threshold (strategy `threshold`).

    Returns:
        The `<segment>_bt_*` metrics ({} without inputs).
    """
    report = segment_backtest(ds, segment, inputs, probability, threshold)
    if report is None:
        return {}
    start, end = ds.date_range(segment)
    return log_backtest(report, f"{segment} segment {start}..{end}")


def segment_backtest(
    ds: Dataset,
    segment: str,
    inputs: BacktestInputs | None,
    probability: np.ndarray,
    threshold: float,
) -> BacktestReport | None:
    """The backtest of one scored segment, not logged (None without inputs); arguments as
    `log_segment_backtest`'s."""
    if inputs is None:
        return None
    rows = ds.segment_rows(segment, ["ts_code", "trade_date"], all_rows=True)
    return run_window_backtest(inputs, signal_scores(rows, probability, threshold), segment)
