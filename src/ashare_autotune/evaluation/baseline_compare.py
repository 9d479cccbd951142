"""The model beside the one-line baselines: the same signal metrics and the same account for
each, one comparison table, one plot and a one-line verdict. Pure: no MLflow here.

The verdict compares the excess return after costs over the benchmark held at each account's
own exposure (`bt_excess_return_exposure`): the plain excess would reward sitting in cash in a
falling market, and the pre-cost signal metrics ignore what trading them costs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ashare_autotune.config.backtest import BacktestConfig, Strategy
from ashare_autotune.evaluation.backtest_report import DPI, strategy_returns
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    BacktestReport,
    run_window_backtest,
)
from ashare_autotune.evaluation.baselines import baseline_factors, baseline_scores, take_rows
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.modelling.dataset import Dataset

log = logging.getLogger(__name__)

VERDICT_METRIC = "bt_excess_return_exposure"
SIGNAL_METRICS = ("rank_ic_mean", "rank_ic_ir", "ic_mean", "topk_precision_mean")
SIGNAL_METRICS += ("topk_excess_return_mean",)
# comparison table: column -> metric (signal metrics unprefixed, account metrics bt_*)
TABLE_COLUMNS = {
    "rank_ic": "rank_ic_mean",
    "topk_precision": "topk_precision_mean",
    "annual_return": "bt_annual_return",
    "excess": "bt_excess_return",
    "excess_at_exposure": "bt_excess_return_exposure",
    "ir": "bt_information_ratio",
    "ir_at_exposure": "bt_information_ratio_exposure",
    "invested": "bt_invested_mean",
    "beta": "bt_beta",
    "alpha": "bt_alpha",
    "max_drawdown": "bt_max_drawdown",
    "turnover": "bt_turnover",
    "sharpe": "bt_sharpe",
}
# What a baseline logs as metrics: its row of the table. Its every statistic (those of the
# model's own `bt_*`: trades, costs, volatility, the benchmark's return again, ...) is in the
# `all_metrics` table (backtest/baselines_all.csv), not 30 lone scalars a baseline in the UI.
LOGGED_METRICS = tuple(TABLE_COLUMNS.values())


@dataclass
class Contender:
    """One row of the comparison: the model or a baseline, its account and its metrics
    (signal summary unprefixed, account `bt_*`)."""

    name: str
    report: BacktestReport
    metrics: dict[str, float]


@dataclass
class Comparison:
    """The model and the baselines on one window, logged as `<prefix>_baseline_<name>_*`."""

    prefix: str
    contenders: list[Contender]  # the model first
    metrics: dict[str, float]
    table: pd.DataFrame
    verdict: str


def compare_baselines(
    inputs: BacktestInputs,
    model: BacktestReport,
    candidates: pd.DataFrame,
    labelled: pd.DataFrame,
    top_k: int,
) -> Comparison:
    """Run each baseline of `inputs.cfg.baselines` through the model's account and metrics.

    Args:
        inputs: the model's backtest inputs (bars with close and amount from at least 20 market
            days before the window, benchmark, configuration).
        model: the model's finished backtest (its prefix names the metrics' segment).
        candidates: ts_code, trade_date of every row the model scored (the account's signals).
        labelled: ts_code, trade_date, label, fwd_return, score (the model's) and fillable
            of the rows the signal metrics read (the record's: every candidate).
        top_k: the top-k size of the signal metrics' precision.

    Returns:
        The `Comparison`.
    """
    names = list(inputs.cfg.baselines)
    factors = baseline_factors(inputs.bars)
    at_candidates = baseline_scores(factors, candidates, names)
    at_labelled = take_rows(at_candidates, labelled, names)  # the blend ranked on candidates
    contenders = [Contender("model", model, _signal(labelled, top_k) | _account(model))]
    for name in names:
        signals = _signals(at_candidates, name, inputs.cfg)
        if signals.empty:
            log.warning("baseline %s: no value on any scored row (too little history?)", name)
            continue
        report = run_window_backtest(inputs, signals, _prefix(model.prefix, name))
        scored = labelled.assign(score=at_labelled[name].to_numpy())
        contenders.append(Contender(name, report, _signal(scored, top_k) | _account(report)))
    metrics = {
        f"{_prefix(model.prefix, c.name)}_{k}": c.metrics[k]
        for c in contenders[1:]
        for k in LOGGED_METRICS
        if k in c.metrics
    }
    table = comparison_table(contenders)
    return Comparison(model.prefix, contenders, metrics, table, verdict(table))


def window_comparison(
    inputs: BacktestInputs,
    report: BacktestReport,
    candidates: pd.DataFrame,
    labelled: pd.DataFrame,
    top_k: int,
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


def segment_comparison(
    ds: Dataset,
    segment: str,
    inputs: BacktestInputs,
    report: BacktestReport,
    probability: np.ndarray,
    top_k: int,
) -> Comparison | None:
    """The model beside the baselines on one scored segment of the dataset (`window_comparison`;
    the signal metrics rank every candidate, as the records do: `signal.daily_signal`).

    Args:
        ds: the dataset.
        segment: "test" (or "val").
        inputs: the backtest's bars, benchmark and configuration.
        report: the model's backtest of the segment (`backtest_window.segment_backtest`).
        probability: the model's score of every candidate of the segment, in row order.
        top_k: the top-k size of the comparison's precision (`trading.top_k`).
    """
    columns = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
    scored = ds.segment_rows(segment, columns, all_rows=True).assign(score=probability)
    return window_comparison(inputs, report, scored[["ts_code", "trade_date"]], scored, top_k)


def comparison_table(contenders: list[Contender]) -> pd.DataFrame:
    """One row per contender (the model first), the `TABLE_COLUMNS`."""
    rows = {
        c.name: {col: c.metrics.get(m, np.nan) for col, m in TABLE_COLUMNS.items()}
        for c in contenders
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "name"
    return table


def all_metrics(comparison: Comparison) -> pd.DataFrame:
    """Every metric of every contender (the model first): one row each, a column a metric."""
    rows = {c.name: c.metrics for c in comparison.contenders}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "name"
    return table


def verdict(table: pd.DataFrame) -> str:
    """One line: does the model beat every baseline on the exposure-matched excess after costs?

    Args:
        table: `comparison_table` (row "model" and one per baseline).

    Returns:
        "model beats all baselines on excess at exposure (after costs): +x% vs best <name> +y%"
        or "model does not beat: <name> (excess at exposure +y% vs +x%), ...".
    """
    column = "excess_at_exposure"
    mine = float(table.loc["model", column])
    others = table.drop(index="model")[column]
    if others.empty:
        return "no baseline to compare the model with"
    beaten = others[~(others < mine)]  # a NaN model beats nothing
    if beaten.empty:
        best = others.idxmax()
        return (
            f"model beats all baselines on excess at exposure (after costs): {mine:+.1%} a year "
            f"vs best {best} {others[best]:+.1%}"
        )
    listed = ", ".join(
        f"{n} (excess at exposure {v:+.1%} vs {mine:+.1%})" for n, v in beaten.items()
    )
    return f"model does not beat: {listed}"


def comparison_markdown(comparison: Comparison) -> str:
    """The table as markdown, with the verdict and what each column means."""
    table = comparison.table
    lines = [
        f"Model vs baselines ({comparison.prefix or 'window'}), same candidates and account",
        "",
        f"**{comparison.verdict}**",
        "",
        "| name | " + " | ".join(table.columns) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    lines += [
        "",
        "rank_ic and topk_precision: daily means over every candidate (an unfillable pick is "
        "not bought); the rest: the account "
        "after costs (annualised with the market's own calendar). excess_at_exposure: over the "
        "benchmark held at the account's invested fraction of the previous close.",
    ]
    return "\n".join(lines) + "\n"


def write_comparison_plot(comparison: Comparison, benchmark: pd.Series, path: Path) -> Path:
    """Equity curves (start = 1) of the model, each baseline and the benchmark on one axes."""
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for contender in comparison.contenders:
        growth = (1 + strategy_returns(contender.report.result)).cumprod()
        width = 2.0 if contender.name == "model" else 1.0
        ax.plot(growth.index, growth.to_numpy(), label=contender.name, linewidth=width)
    model = strategy_returns(comparison.contenders[0].report.result)
    bench = pd.Series(benchmark.to_numpy(np.float64), index=model.index)
    name = str(benchmark.name or "benchmark")
    ax.plot(bench.index, (1 + bench).cumprod(), label=name, color="black", linestyle="--")
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set(title="Model vs one-line baselines, after costs (start = 1)", ylabel="growth of 1")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _prefix(segment: str, name: str) -> str:
    return f"{segment}_baseline_{name}" if segment else f"baseline_{name}"


def _signals(scores: pd.DataFrame, name: str, cfg: BacktestConfig) -> pd.DataFrame:
    """The baseline's account signals: rows with a value; `pick` = the day's top k (what the
    threshold strategy buys: a baseline has no threshold; the other strategies ignore it)."""
    rows = scores.loc[scores[name].notna(), ["ts_code", "trade_date", name]]
    rows = rows.rename(columns={name: "score"}).reset_index(drop=True)
    if cfg.strategy != Strategy.THRESHOLD:
        return rows.assign(pick=True)
    rank = rows.groupby("trade_date")["score"].rank(method="first", ascending=False)
    return rows.assign(pick=(rank <= cfg.top_k).to_numpy())


def _signal(labelled: pd.DataFrame, top_k: int) -> dict[str, float]:
    summary = summarise_signal(daily_signal(labelled, top_k))
    return {k: summary[k] for k in SIGNAL_METRICS}


def _account(report: BacktestReport) -> dict[str, float]:
    start = f"{report.prefix}_" if report.prefix else ""
    return {k.removeprefix(start): v for k, v in report.metrics.items()}
