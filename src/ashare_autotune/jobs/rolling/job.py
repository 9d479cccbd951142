"""The rolling retrain as plain functions (no Hydra): load, build the features once for the
span, then window by window (one window's matrices in memory at a time): tune when its round
starts, fit, score its step, keep it on disk; then judge the stitched record and register the
latest window's model (`rolling.report`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Run

from ashare_autotune.config.loading import config_fingerprint
from ashare_autotune.config.rolling import RollingAppConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market, training_data
from ashare_autotune.data.synthetic import caveat_tags
from ashare_autotune.evaluation.backtest_window import BacktestInputs, window_inputs
from ashare_autotune.evaluation.baselines import history_start
from ashare_autotune.jobs.pipeline_data import check_objective_settings
from ashare_autotune.jobs.rolling.report import RollingOutcome, judge_and_register
from ashare_autotune.jobs.rolling.state import RollingState, holding
from ashare_autotune.jobs.rolling.tune import tune_round
from ashare_autotune.jobs.rolling.window import fit_window, step_record, window_matrices
from ashare_autotune.modelling.dataset import Dataset, span_dataset
from ashare_autotune.modelling.rolling_schedule import RollWindow, rolling_windows, span_dates
from ashare_autotune.modelling.targets import make_target
from ashare_autotune.models.base import ScoreModel
from ashare_autotune.models.build import build_model
from ashare_autotune.runtime import scratch_dir
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.child_run import child_run

log = logging.getLogger(__name__)
SCRATCH_PREFIX = "ashare-autotune-rolling-"
# groups that do not change what a window fits or scores (the account is judged afterwards)
NOT_IDENTITY = ("mlflow", "registry", "backtest")


@dataclass
class RollingJob:
    """What every window reads: the configuration, the span's dataset, the model, the state."""

    app: RollingAppConfig
    ds: Dataset
    model: ScoreModel
    target: np.ndarray
    state: RollingState
    study_prefix: str
    storage: str


def run_rolling(
    app: RollingAppConfig,
    config_yaml: str | None = None,
    run_tags: dict[str, str] | None = None,
    stop_after: int | None = None,
    sweep: tuple[Path, str] | None = None,
) -> RollingOutcome:
    """Refit over `rolling.start..end`, score every step, judge and register.

    Args:
        app: the validated configuration.
        config_yaml: the resolved config as YAML, logged as an artifact when given.
        run_tags: extra tags for the parent run (a sweep job's overrides).
        stop_after: raise after fitting this many windows in this call (tests: a killed run).
        sweep: in a `-m` sweep, its directory and this job's overrides (the A/B table).
    """
    model = build_model(app.model)
    check_objective_settings(app.model, app.tuning)
    experiment_id = tracking.setup(
        app.mlflow.tracking_uri, app.mlflow.experiment_name, app.mlflow.sqlite_wal
    )
    app = replace(app, data=training_data(app.data))
    market = load_market(app.data)
    key = run_identity(app, market.describe())
    name = f"{app.mlflow.experiment_name}-rolling-{key}"
    directory = Path(app.rolling.state_dir) / name
    bench = label_benchmark(app.data, app.label, market)
    bt_index = (
        load_benchmark(app.data, market, app.backtest.benchmark) if app.backtest.enabled else None
    )
    with holding(directory), scratch_dir(SCRATCH_PREFIX) as scratch:
        rules = app.universe.rules()
        ds = span_dataset(market, app.features, app.label, rules, bench, scratch)
        day = ds.frame["day"].to_numpy()
        schedule = rolling_windows(
            ds.calendar, int(day.min()), int(day.max()), app.rolling, app.label.max_days
        )
        bt = _backtest_inputs(app, bt_index, market, ds, schedule)
        market = market.without_bars()
        state = RollingState(directory, {"key": key})
        m = app.model
        target = make_target(ds.frame, m.objective, m.target_norm, m.relevance_bins)
        storage = app.tuning.storage or tracking.default_study_storage(app.mlflow.tracking_uri)
        job = RollingJob(app, ds, model, target, state, name, storage)
        with tracking.parent_run(
            experiment_id, app.mlflow.run_name or name, state.parent_run_id
        ) as run:
            if state.parent_run_id != run.info.run_id:
                state.set_parent_run(run.info.run_id)
            _log_setup(job, market.describe(), schedule, config_yaml, run_tags or {})
            fitted_now = 0
            for w in schedule:
                if w.k in state.finished():
                    log.info("window %d: finished before, not refitted", w.k)
                    continue
                run_window(job, w, run)
                fitted_now += 1
                if stop_after is not None and fitted_now >= stop_after:
                    raise KeyboardInterrupt(f"stopped after {fitted_now} window(s) (stop_after)")
            return judge_and_register(app, market, ds, state, schedule, bt, run, sweep)


def run_identity(app: RollingAppConfig, data: dict[str, Any]) -> str:
    """A short hash of everything that decides the windows' fits and scores: the training
    config (`config_fingerprint`), the tuning, threshold and trading groups, the rolling
    group but its state directory, and the data loaded."""
    parts = {
        k: dataclasses.asdict(getattr(app, k))
        for k in ("tuning", "threshold", "trading", "rolling")
    }
    parts["rolling"].pop("state_dir")
    parts["fingerprint"] = config_fingerprint(app, data)
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def run_window(job: RollingJob, w: RollWindow, run: Run) -> None:
    """Fit window `w` (tuning first when its round has no parameters yet), score its step,
    log a nested run and keep it on disk. One window's matrices live at a time."""
    app, ds, state = job.app, job.ds, job.state
    params = state.tuned(w.tune_round)
    tuning = params is None
    n = app.rolling.fit_rows
    data = window_matrices(app, ds, job.model, job.target, w.train, w, tuning, n)
    if params is None:
        warm = state.tuned(w.tune_round - 1) if w.tune_round else None
        study = f"{job.study_prefix}-t{w.tune_round}"
        params = tune_round(app, job.model, data, study, job.storage, warm, run)
        state.set_tuned(w.tune_round, params)
    fit = fit_window(app, ds, job.model, data, params, w)
    fitted = fit.fitted
    del data
    fit_span = w.fit_span(app.rolling.refit_on_val)
    if app.rolling.refit_on_val:
        full = window_matrices(app, ds, job.model, job.target, fit_span, w, False, n)
        fitted = job.model.refit(params, full.matrices.full_train(), fit.rounds)
        del full
    record, step = step_record(app, ds, w, fitted, fit, fit_span)
    cal = ds.calendar
    facts: dict[str, Any] = {
        "train_start": span_dates(cal, w.train)[0],
        "train_end": span_dates(cal, w.train)[1],
        "val_start": span_dates(cal, w.val)[0],
        "val_end": span_dates(cal, w.val)[1],
        "fit_start": span_dates(cal, fit_span)[0],
        "fit_end": span_dates(cal, fit_span)[1],
        "score_start": span_dates(cal, w.score)[0],
        "score_end": span_dates(cal, w.score)[1],
        "rounds": fit.rounds,
        "threshold": fit.threshold,
        "threshold_feasible": fit.feasible,
        "choice": fit.choice,
        "tune_round": w.tune_round,
        "tuned_here": tuning,
        "params": params,
        "metrics": fit.metrics | step,
    }
    with child_run(run, f"window {w.k:02d} {facts['score_start']}..{facts['score_end']}"):
        tracking.log_params({f"param.{k}": v for k, v in params.items()} | {"window": w.k})
        tracking.set_tags({k: v for k, v in facts.items() if not isinstance(v, dict)})
        tracking.log_metrics(
            facts["metrics"] | {"rounds": float(fit.rounds), "threshold": fit.threshold}
        )
    log.info(
        "window %d: fit %s..%s (%d rounds), scored %s..%s: Rank IC %.4f, val AUC %.4f",
        w.k, facts["fit_start"], facts["fit_end"], fit.rounds, facts["score_start"],
        facts["score_end"], step["step_rank_ic_mean"], fit.metrics["val_auc"],
    )  # fmt: skip
    state.save_window(w.k, record, facts, fitted)


def _backtest_inputs(
    app: RollingAppConfig,
    bt_index: Any,
    market: Any,
    ds: Dataset,
    schedule: list[RollWindow],
) -> BacktestInputs | None:
    """The bars from 20 market days before the first scored day (the baselines' history)."""
    if bt_index is None:
        return None
    first = span_dates(ds.calendar, schedule[0].score)[0]
    return window_inputs(
        app.backtest, bt_index, market, history_start(market.daily["trade_date"], first)
    )


def _log_setup(
    job: RollingJob,
    data: dict[str, Any],
    schedule: list[RollWindow],
    config_yaml: str | None,
    run_tags: dict[str, str],
) -> None:
    """The parent run's params (every group's keys), tags (data, schedule) and config."""
    app = job.app
    params: dict[str, Any] = {}
    for group in ("data", "label", "universe", "model", "threshold", "backtest", "rolling"):
        for key, value in dataclasses.asdict(getattr(app, group)).items():
            params[f"{group}.{key}"] = value
    params |= {"tuning.n_trials": app.tuning.n_trials, "tuning.seed": app.tuning.seed}
    params["features"] = ",".join(job.ds.feature_names)
    tracking.log_params(params)
    tags = {f"data_{k}": v for k, v in data.items()} | caveat_tags(data.get("source", ""))
    tags |= {"rolling_windows": len(schedule), "rolling_state": str(job.state.directory)}
    tracking.set_tags(tags | run_tags)
    if config_yaml:
        tracking.log_text(config_yaml, "config/resolved_config.yaml")
