"""A backtest's report on the active MLflow run: `<segment>_bt_*` metrics and, under
`backtest/`, the plots, the HTML tear sheet, the statistics table and the trades and daily
account as parquet; with baselines, `<segment>_baseline_<name>_*` metrics, the comparison
table (baselines.md/.csv), its plot (baselines.png) and the verdict in summary.md."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ashare_autotune.config.trading import TradingConfig
from ashare_autotune.data.synthetic import CAVEAT_TAG
from ashare_autotune.evaluation.backtest_report import write_backtest_plots, write_tearsheet
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    BacktestReport,
    run_window_backtest,
    signal_scores,
    stats_markdown,
)
from ashare_autotune.evaluation.baseline_compare import (
    Comparison,
    compare_baselines,
    comparison_markdown,
    write_comparison_plot,
)
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.tracking import runs as tracking

ARTIFACT_DIR = "backtest"
SIGNAL_TOP_K = TradingConfig.top_k  # the baselines' top-k precision where none is given

log = logging.getLogger(__name__)


def log_backtest(
    report: BacktestReport,
    title: str,
    comparison: Comparison | None = None,
    figures: bool = True,
) -> dict[str, float]:
    """Log the report's metrics and artifacts on the active run.

    Artifacts: backtest/equity.png, drawdown.png, monthly_returns.png, tearsheet.html,
    summary.md, trades.parquet, daily.parquet (and with a comparison baselines.md,
    baselines.csv, baselines.png).

    Args:
        report: the finished backtest.
        title: the tear sheet's title (e.g. "ashare-autotune v3, test 2021-07..2023-03").
        comparison: the model beside the baselines on the same window, or None.
        figures: write the PNGs and the tear sheet too (`mlflow.figures`).

    Returns:
        The metrics logged.
    """
    metrics = report.metrics | (comparison.metrics if comparison else {})
    tracking.log_metrics(metrics)
    log_backtest_artifacts(report, title, comparison, figures)
    return metrics


def log_backtest_artifacts(
    report: BacktestReport,
    title: str,
    comparison: Comparison | None = None,
    figures: bool = True,
) -> None:
    """Log the report's files under `backtest/` on the active run (see `log_backtest`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if figures:
            for path in write_backtest_plots(report.result, report.benchmark, out):
                path.rename(out / path.name.removeprefix("backtest_"))
            write_tearsheet(report.result, report.benchmark, out / "tearsheet.html", title)
        summary = stats_markdown(report)
        if comparison is not None:
            summary = f"{comparison.verdict}\n\n{summary}\n{comparison_markdown(comparison)}"
            (out / "baselines.md").write_text(comparison_markdown(comparison))
            comparison.table.to_csv(out / "baselines.csv")
            if figures:
                write_comparison_plot(comparison, report.benchmark, out / "baselines.png")
        (out / "summary.md").write_text(with_active_caveat(summary))
        report.result.trades.to_parquet(out / "trades.parquet", index=False)
        report.result.daily.to_parquet(out / "daily.parquet", index=False)
        tracking.log_artifacts(out, ARTIFACT_DIR)


def window_comparison(
    inputs: BacktestInputs,
    report: BacktestReport,
    candidates: pd.DataFrame,
    labelled: pd.DataFrame,
    top_k: int = SIGNAL_TOP_K,
) -> Comparison | None:
    """The model beside `backtest.baselines` on its window, the verdict logged (a warning when
    the model does not beat them); None without baselines. Arguments: `compare_baselines`."""
    if not inputs.cfg.baselines:
        return None
    comparison = compare_baselines(inputs, report, candidates, labelled, top_k)
    beats = comparison.verdict.startswith("model beats")
    log.log(
        logging.INFO if beats else logging.WARNING,
        "%s: %s",
        report.prefix or "window",
        comparison.verdict,
    )
    return comparison


def log_segment_backtest(
    ds: Dataset,
    segment: str,
    inputs: BacktestInputs | None,
    probability: np.ndarray,
    threshold: float,
    top_k: int = SIGNAL_TOP_K,
    figures: bool = True,
) -> dict[str, float]:
    """Backtest one scored segment of the dataset and log its report beside the baselines
    (nothing without inputs: `backtest.enabled=false`).

    Every row of the segment is a signal, also one whose next-open entry will not fill: the
    signal at T cannot know that; the simulation decides the fills.

    Args:
        ds: the dataset.
        segment: "test" (or "val").
        inputs: bars, benchmark and configuration (`backtest_window.prepare_backtest`), or None.
        probability: the model's probability of every row of the segment, unfillable ones
            included, in row order (`Dataset.predict(..., all_rows=True)`).
        threshold: the pick threshold (strategy `threshold`).
        top_k: the top-k size of the comparison's precision (`trading.top_k`).
        figures: log the report's figures too (`mlflow.figures`).

    Returns:
        The `<segment>_bt_*` and `<segment>_baseline_<name>_*` metrics ({} without inputs).
    """
    report = segment_backtest(ds, segment, inputs, probability, threshold)
    if report is None or inputs is None:
        return {}
    # the signal metrics rank every candidate, as the records do (`signal.daily_signal`)
    columns = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
    scored = ds.segment_rows(segment, columns, all_rows=True).assign(score=probability)
    candidates = scored[["ts_code", "trade_date"]]
    comparison = window_comparison(inputs, report, candidates, scored, top_k)
    start, end = ds.date_range(segment)
    return log_backtest(report, f"{segment} segment {start}..{end}", comparison, figures)


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


def with_active_caveat(summary: str) -> str:
    """`summary` headed by the active run's `data_caveat` tag, when it has one."""
    run = mlflow.active_run()
    caveat = mlflow.get_run(run.info.run_id).data.tags.get(CAVEAT_TAG) if run else None
    return f"{caveat}\n\n{summary}" if caveat else summary
