"""The end of a rolling run: the stitched record judged over the span and by calendar year
(signal, threshold picks, the account beside the one-line baselines), logged on the parent run,
and the latest window's model registered with the record's metrics.

Promotion stays on what was known before the promoted model's own step: its `val_*` metrics are
its validation's and the stitched record's before its step (`val_roll_*`); its step is its
`test_*`, and the whole record's `roll_*` metrics are tags (reported, never compared).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Run

from ashare_autotune.config.rolling import RollingAppConfig
from ashare_autotune.data.market import Market
from ashare_autotune.evaluation.backtest_report import strategy_returns
from ashare_autotune.evaluation.backtest_window import BacktestInputs, run_window_backtest
from ashare_autotune.evaluation.baseline_compare import window_comparison
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.jobs.rolling import record as rec
from ashare_autotune.jobs.rolling.ab import ab_row, update_ab
from ashare_autotune.jobs.rolling.state import RollingState
from ashare_autotune.jobs.rolling.window import SEGMENT, rows_in, scored_record, window_view
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.modelling.rolling_schedule import RollWindow
from ashare_autotune.tracking import registry, reports
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.backtest_log import log_backtest
from ashare_autotune.tracking.input_checks import profile_inputs, sample_rows
from ashare_autotune.tracking.registration import register_and_promote

log = logging.getLogger(__name__)
RECORD_ARTIFACT = "predictions/rolling.parquet"
# the per-window table's markdown: spans, the fit, validation and the step's results
WINDOW_COLUMNS = ["fit_start", "fit_end", "score_start", "score_end", "rounds", "threshold"]
WINDOW_COLUMNS += ["val_auc", "val_precision", "step_auc", "step_rank_ic_mean", "step_rank_ic_t"]
WINDOW_COLUMNS += ["step_topk_precision_mean", "step_precision", "step_n_picks"]
TAGGED = ("rank_ic_mean", "rank_ic_t", "ic_mean", "topk_precision_mean", "pick_precision")


@dataclass
class RollingOutcome:
    """What a rolling run produced."""

    run_id: str
    n_windows: int
    metrics: dict[str, float]  # roll_* (whole record), val_roll_* (before the last step)
    by_year: pd.DataFrame  # signal and picks by calendar year (and total)
    returns: pd.DataFrame  # the accounts' returns by calendar year (empty without backtest)
    model_uri: str
    model_version: str | None
    record_path: Path  # the stitched record on disk


def judge_and_register(
    app: RollingAppConfig,
    market: Market,
    ds: Dataset,
    state: RollingState,
    schedule: list[RollWindow],
    bt: BacktestInputs | None,
    run: Run,
    sweep: tuple[Path, str] | None = None,
) -> RollingOutcome:
    """Stitch the windows' records, measure and log them, register the latest window's model;
    in a `-m` sweep (`sweep`: its directory and this job's overrides) update the A/B table."""
    record = state.record()
    top_k = app.trading.top_k
    metrics = rec.record_metrics(record, top_k, "roll")
    last = int(record["window"].max())
    before = record.loc[record["window"] < last]
    if len(before):
        metrics |= rec.record_metrics(before, top_k, "val_roll")
    by_year = rec.by_year(record, top_k)
    windows = rec.windows_table(state.finished())
    frozen = _trained_once(app, ds, state, schedule)
    if frozen is not None:
        metrics |= rec.record_metrics(frozen, top_k, "once")
        by_year["once_rank_ic_mean"] = rec.by_year(frozen, top_k)["rank_ic_mean"]
    returns = pd.DataFrame()
    account: dict[str, Any] = {}
    if bt is not None:
        metrics |= _account(bt, record, top_k, "roll", account)
        returns = account["table"]
        if len(before):
            metrics |= _account(bt, before, top_k, "val_roll", None)
        if frozen is not None:
            once = run_window_backtest(bt, _scores(frozen), "once")
            metrics |= once.metrics
            returns.insert(
                1,
                "trained once",
                rec.yearly_returns(None, strategy_returns(once.result), once.benchmark)["model"],
            )
    path = state.directory / "predictions" / "rolling.parquet"
    path.parent.mkdir(exist_ok=True)
    record.to_parquet(path, index=False)
    tracking.log_artifact(path, "predictions")
    _log_tables(record, by_year, windows, returns, top_k)
    tracking.log_metrics(metrics)
    if sweep is not None:
        row = ab_row(sweep[1], metrics, by_year)
        for path in update_ab(sweep[0], row, account.get("returns")).values():
            tracking.log_artifact(path, "rolling/ab")
    if (done := state.registered()) is not None:  # a rerun of a finished run
        log.info("already registered as %s version %s: nothing registered", *done[:2])
        version, uri = done[1], done[2]
    else:
        version, uri = _register(app, market, ds, state, schedule[-1], metrics)
        state.set_registered(app.registry.model_name, version, uri)
    return RollingOutcome(
        run.info.run_id, len(schedule), metrics, by_year, returns, uri, version, path
    )


def _trained_once(
    app: RollingAppConfig, ds: Dataset, state: RollingState, schedule: list[RollWindow]
) -> pd.DataFrame | None:
    """The whole span scored by the first window's model, never refitted (the same model
    trained once), at its threshold; None when the run kept no first model."""
    fitted = state.first_model()
    if fitted is None:
        return None
    first = state.finished()[1]
    span = (schedule[0].score[0], schedule[-1].score[1])
    fit_span = schedule[0].fit_span(app.rolling.refit_on_val)
    return scored_record(app, ds, span, fitted, first["threshold"], 1, fit_span)[0]


def _scores(record: pd.DataFrame) -> pd.DataFrame:
    """The account's signals: every candidate, its score and the threshold's pick."""
    return record[["ts_code", "trade_date", "probability", "pick"]].rename(
        columns={"probability": "score"}
    )


def _account(
    bt: BacktestInputs,
    record: pd.DataFrame,
    top_k: int,
    prefix: str,
    out: dict[str, Any] | None,
) -> dict[str, float]:
    """The fully invested account of a record; with `out`, beside the baselines, logged (plots,
    tear sheet), its daily returns put in `out["returns"]` and by year in `out["table"]`."""
    report = run_window_backtest(bt, _scores(record), prefix)
    if out is None:
        return report.metrics
    scored = record.rename(columns={"probability": "score"})
    comparison = window_comparison(bt, report, scored[["ts_code", "trade_date"]], scored, top_k)
    span = f"{record['trade_date'].min():%Y-%m-%d}..{record['trade_date'].max():%Y-%m-%d}"
    logged = log_backtest(report, f"rolling retrain {span}", comparison)
    out["returns"] = strategy_returns(report.result)
    out["table"] = rec.yearly_returns(comparison, out["returns"], report.benchmark)
    return logged


def _log_tables(
    record: pd.DataFrame,
    by_year: pd.DataFrame,
    windows: pd.DataFrame,
    returns: pd.DataFrame,
    top_k: int,
) -> None:
    """rolling/by_year, windows and returns_by_year (.csv and .md) and the cumulative IC plot."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        tables = {"by_year": by_year, "windows": windows, "returns_by_year": returns}
        for name, table in tables.items():
            if table.empty:
                continue
            table.to_csv(out / f"{name}.csv")
            shown = (
                table[[c for c in WINDOW_COLUMNS if c in table]] if name == "windows" else table
            )
            (out / f"{name}.md").write_text(
                rec.markdown(shown.select_dtypes(["number", "object"]))
            )
        rec.save_figure(
            rec.cumulative_ic_figure(record, top_k, windows), out / "cumulative_ic.png"
        )
        tracking.log_artifacts(out, "rolling")


def _register(
    app: RollingAppConfig,
    market: Market,
    ds: Dataset,
    state: RollingState,
    w: RollWindow,
    metrics: dict[str, float],
) -> tuple[str | None, str]:
    """Log the latest window's model (pyfunc, as `train`'s) and register it by the promotion
    policy; the record's `roll_*` metrics become the version's tags."""
    facts = state.finished()[w.k]
    model_metrics = {k: v for k, v in facts["metrics"].items() if k.startswith("val_")}
    model_metrics |= {
        f"test_{k[5:]}": v for k, v in facts["metrics"].items() if k.startswith("step_")
    }
    model_metrics |= {k: v for k, v in metrics.items() if k.startswith("val_roll_")}
    choice = ThresholdChoice(**facts["choice"])
    fitted = state.latest_model()
    # the window's segments (its input profile is read below from the span's store)
    view = window_view(ds, w)
    meta = reports.model_meta(app, market, view, facts["params"], choice, model_metrics)
    fit_rows = rows_in(ds, w.fit_span(app.rolling.refit_on_val))
    meta["segments"] = {
        "train": (facts["fit_start"], facts["fit_end"]),
        "val": (facts["val_start"], facts["val_end"]),
        "test": (facts["score_start"], facts["score_end"]),
    }
    meta["input_profile"] = profile_inputs(
        ds.features(SEGMENT, fit_rows[sample_rows(len(fit_rows))])
    )
    meta["rolling"] = {
        "window": w.k,
        "record_metrics": {k: v for k, v in metrics.items() if k.startswith("roll_")},
    }
    example = ds.features(SEGMENT, fit_rows[:5])
    info = tracking.log_pick_model(fitted, meta, example)
    tracking.log_metrics(model_metrics, model_id=info.model_id)
    if not app.registry.register:
        return None, info.model_uri
    version, decision = register_and_promote(
        app.registry, app.threshold, info.model_uri, choice, model_metrics, meta
    )
    tags = {
        f"roll_{m}": round(metrics[f"roll_{m}"], 4)
        for m in TAGGED
        if np.isfinite(metrics.get(f"roll_{m}", np.nan))
    }
    tags |= {
        k: round(v, 4) for k, v in metrics.items() if k.startswith("roll_bt_") and np.isfinite(v)
    }
    tags["rolling_window"] = w.k
    registry.set_version_tags(app.registry.model_name, version, tags)
    log.info("registered %s version %s (%s)", app.registry.model_name, version, decision.reason)
    return version, info.model_uri
