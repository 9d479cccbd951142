"""A backtest's report on the active MLflow run: `<segment>_bt_*` metrics and, under
`backtest/`, the plots, the HTML tear sheet, the statistics table and the trades and daily
account as parquet; with baselines, `<segment>_baseline_<name>_*` metrics (a baseline's row of
the comparison table), the table (baselines.md/.csv), every contender's every metric
(baselines_all.csv), its plot (baselines.png) and the verdict in summary.md. It logs what
it is handed: the backtest and the comparison are computed in `evaluation`."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow

from ashare_autotune.data.synthetic import CAVEAT_TAG
from ashare_autotune.evaluation.backtest_report import write_backtest_plots, write_tearsheet
from ashare_autotune.evaluation.backtest_window import BacktestReport, stats_markdown
from ashare_autotune.evaluation.baseline_compare import (
    Comparison,
    all_metrics,
    comparison_markdown,
    write_comparison_plot,
)
from ashare_autotune.tracking import runs as tracking

ARTIFACT_DIR = "backtest"

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
    baselines.csv, baselines_all.csv, baselines.png).

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
            all_metrics(comparison).to_csv(out / "baselines_all.csv")
            if figures:
                write_comparison_plot(comparison, report.benchmark, out / "baselines.png")
        (out / "summary.md").write_text(with_active_caveat(summary))
        report.result.trades.to_parquet(out / "trades.parquet", index=False)
        report.result.daily.to_parquet(out / "daily.parquet", index=False)
        tracking.log_artifacts(out, ARTIFACT_DIR)


def with_active_caveat(summary: str) -> str:
    """`summary` headed by the active run's `data_caveat` tag, when it has one."""
    run = mlflow.active_run()
    caveat = mlflow.get_run(run.info.run_id).data.tags.get(CAVEAT_TAG) if run else None
    return f"{caveat}\n\n{summary}" if caveat else summary
