"""The training job as plain functions (no Hydra): prepare -> tune -> fit -> evaluate -> log ->
register. Each step returns what the next one needs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna
from mlflow.entities import Run
from mlflow.models.model import ModelInfo

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import caveat_tags
from ashare_autotune.errors import ConfigError, UserError
from ashare_autotune.evaluation.backtest_window import BacktestInputs, segment_backtest
from ashare_autotune.evaluation.baseline_compare import segment_comparison
from ashare_autotune.evaluation.candidates import candidates, scored_segments, segment_days
from ashare_autotune.evaluation.metrics import segment_metrics
from ashare_autotune.evaluation.records import segment_records
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.evaluation.trading import trading_view
from ashare_autotune.jobs.pipeline_data import PARENT_RUN_ATTR, Job, StudyData, prepare
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import FittedModel
from ashare_autotune.runtime import scratch_dir
from ashare_autotune.tracking import reports, trial_runs
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.backtest_log import log_backtest
from ashare_autotune.tracking.experiment import SWEEP_NAME_TAG, parent_run_name
from ashare_autotune.tracking.project_run import record_nothing_to_run
from ashare_autotune.tracking.promotion import Decision
from ashare_autotune.tracking.registration import register_and_promote
from ashare_autotune.tracking.study_record import (
    already_registered,
    complete_message,
    decision_settings,
    record_registration,
)
from ashare_autotune.tuning import scoring
from ashare_autotune.tuning.objective import make_objective, make_walk_forward_objective
from ashare_autotune.tuning.refit import fit_best
from ashare_autotune.tuning.study import (
    FINISHED_STATES,
    finished_trials,
    redact_uri,
    run_more_trials,
    run_study,
)
from ashare_autotune.tuning.walk_forward import walk_forward_report

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "ashare-autotune-features-"  # the job-private feature store under $TMPDIR


@dataclass
class TrainResult:
    """What a training run produced."""

    run_id: str
    experiment_id: str
    study_name: str
    n_trials: int
    best_params: dict[str, Any]
    threshold: ThresholdChoice
    metrics: dict[str, float]
    model_uri: str
    model_version: str | None
    champion: bool
    promotion_reason: str = ""


@dataclass
class Evaluation:
    """The final model on val and test: threshold, metrics, (labels, probabilities, days)."""

    choice: ThresholdChoice
    metrics: dict[str, float]
    val: tuple[np.ndarray, np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray, np.ndarray]


def run_training(
    app: AppConfig, config_yaml: str | None = None, run_tags: dict[str, str] | None = None
) -> TrainResult:
    """Load data, build features/labels/split, tune, pick the threshold, evaluate, register.

    Args:
        app: the validated configuration.
        config_yaml: the resolved config as YAML, logged as an artifact when given.
        run_tags: extra tags for the parent run (e.g. the Hydra overrides of a sweep job).
    """
    if app.tuning.mode == "worker":
        raise ConfigError("tuning.mode=worker: use run_worker(), it registers nothing")
    # the features of a single split live on disk for the job (`pipeline_data.prepare`); the
    # directory goes with the job, also when it fails
    with scratch_dir(SCRATCH_PREFIX) as scratch:
        market, ds, data, job = prepare(app, scratch)
        study = job.study
        with job.lock or nullcontext():
            if done := already_registered(study, app.tuning, app.registry, app.threshold):
                message = complete_message(study.study_name, app.registry.model_name, done)
                record_nothing_to_run(message, done.run_id)
                return TrainResult(experiment_id=job.experiment_id, **vars(done))
            name = _run_name(app, market, run_tags or {})
            with tracking.parent_run(job.experiment_id, name, job.resume_run_id) as run:
                study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
                log_setup(app, market, ds, data, job, config_yaml, run_tags or {})
                fitted = tune_and_fit(app, job, run, data)
                result = evaluate(app, market, ds, data, study, fitted)
                info, meta = log_results(app, market, ds, study, fitted, result)
                version, decision = register(app, info.model_uri, result, meta)
                if version:  # a rerun of the complete study registers nothing
                    settings = decision_settings(app.threshold, app.registry)
                    reg_name, run_id = app.registry.model_name, run.info.run_id
                    record_registration(study, reg_name, version, run_id, settings)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=job.experiment_id,
        study_name=study.study_name,
        n_trials=finished_trials(study),
        best_params=dict(study.best_params),
        threshold=result.choice,
        metrics=result.metrics,
        model_uri=info.model_uri,
        model_version=version,
        champion=bool(decision and decision.promote),
        promotion_reason=decision.reason
        if decision
        else "not registered (registry.register=false)",
    )


@dataclass
class WorkerResult:
    """What one worker process added to a shared study."""

    run_id: str
    study_name: str
    n_trials_run: int
    n_trials_total: int


def run_worker(app: AppConfig, config_yaml: str | None = None) -> WorkerResult:
    """Run `tuning.n_trials` more trials in the shared study, each logged under its parent run.

    Several workers (processes or machines) may run at once on one `tuning.storage` database;
    none picks a threshold or registers (`tuning.mode=finalize` does, once they are done).

    Args:
        app: the validated configuration (`tuning.mode=worker`).
        config_yaml: the resolved config as YAML, logged as an artifact when given.
    """
    with scratch_dir(SCRATCH_PREFIX) as scratch:
        market, ds, data, job = prepare(app, scratch)
        name = _run_name(app, market, {})
        with tracking.parent_run(job.experiment_id, name, job.resume_run_id) as run:
            if job.resume_run_id != run.info.run_id:
                job.study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
            log_setup(app, market, ds, data, job, config_yaml, {})
            objective = _objective(app, data)
            callback = trial_runs.trial_callback(run, scoring.TRIAL_METRICS[app.tuning.metric])
            ran = run_more_trials(job.study, objective, app.tuning, [callback])
    return WorkerResult(run.info.run_id, job.study.study_name, ran, finished_trials(job.study))


def tune_and_fit(app: AppConfig, job: Job, run: Run, data: StudyData) -> FittedModel:
    """Run the study to `tuning.n_trials` (mode `all`), leave one MLflow run per finished trial
    and refit the best trial's parameters on all training rows."""
    job.study.set_user_attr("objective_metric", scoring.TRIAL_METRICS[app.tuning.metric])
    callback = trial_runs.trial_callback(run, scoring.TRIAL_METRICS[app.tuning.metric])
    if app.tuning.mode == "all":
        run_study(job.study, _objective(app, data), app.tuning, [callback])
    _check_has_best_trial(job.study, job.storage)
    done = job.study.get_trials(deepcopy=False, states=FINISHED_STATES)
    trial_runs.reconcile_trial_runs(run, job.study, done, callback)
    tu = app.tuning
    return fit_best(data.model, data.matrices, job.study, tu.eval_every, tu.refit_learning_rate)


def evaluate(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    data: StudyData,
    study: optuna.Study,
    fitted: FittedModel,
) -> Evaluation:
    """Choose the threshold on validation; measure val, test and the walk-forward windows; log
    the records, the trading view and the backtests of val (metrics) and test (`reports`,
    `backtest_log`)."""
    top_k, cap = app.trading.top_k, app.threshold.max_picks_per_day
    wf: dict[str, float] = {}
    if data.windows:
        wf, files = walk_forward_report(ds, data.windows, study, data.model, app.threshold, top_k)
        for path, text in files.items():
            tracking.log_text(text, path)
    # every candidate once (the record and the backtest's signals; an ensemble's picks rule in
    # its score); the fillable, labelled ones are measured by label
    choice, scored = scored_segments(ds, fitted, app.model, app.threshold)
    all_val, all_test = scored["val"], scored["test"]
    val, test = candidates(ds, "val", all_val), candidates(ds, "test", all_test)
    metrics = segment_metrics(val, test, choice, cap)
    # the objective's and its AUC (none for a ranking or regression objective)
    metrics |= scoring.best_trial_metrics(study, app.tuning.metric)
    metrics |= wf
    if wf:  # same quantity as the trials' val_auc (the objective): sort together
        metrics["val_auc"] = wf["val_wf_auc"]
    metrics |= log_scored(market, ds, choice.threshold, scored, top_k, cap)
    # the validation account too (metrics only): promotion may compare it, test never
    # the threshold strategy buys at most `cap` a day, as the threshold was chosen
    val_bt = segment_backtest(ds, "val", data.backtest, all_val, choice.threshold, cap)
    metrics |= val_bt.metrics if val_bt else {}
    metrics |= log_test_backtest(
        ds, data.backtest, all_test, choice.threshold, top_k, cap, app.mlflow.figures
    )
    plotted = {
        seg: _labelled(ds, seg, scores) for seg, scores in (("val", all_val), ("test", all_test))
    }
    return Evaluation(choice, metrics, plotted["val"], plotted["test"])


def log_scored(
    market: Market,
    ds: Dataset,
    threshold: float,
    scores: dict[str, np.ndarray],
    top_k: int,
    cap: int,
) -> dict[str, float]:
    """Log each scored segment's record (`predictions/<segment>.parquet`: every candidate, with
    `fillable`) and the test segment's trading view; their signal and trading metrics.

    Args:
        market: the market (its index: the trading view's regimes; its source).
        ds: the dataset whose val/test candidates were scored, in row order.
        threshold: the pick threshold.
        scores: the final model's score of every candidate by segment ("val", "test").
        top_k: the day's top-k list (`trading.top_k`).
        cap: the picks a day that count (`threshold.max_picks_per_day`).
    """
    records, signal = segment_records(ds, scores, threshold, top_k, cap)
    reports.log_predictions(records)
    test = scores["test"]
    view = trading_view(ds, "test", test, threshold, market.index, signal, top_k, cap)
    reports.log_trading_view(view, signal, market.source)
    return signal | view.metrics


def log_test_backtest(
    ds: Dataset,
    inputs: BacktestInputs | None,
    scores: np.ndarray,
    threshold: float,
    top_k: int,
    cap: int | None = None,
    figures: bool = True,
) -> dict[str, float]:
    """Backtest the test segment and log its report beside the baselines; the `test_bt_*` and
    `test_baseline_<name>_*` metrics ({} with `backtest.enabled=false`); `cap`: the threshold
    strategy's picks a day (`threshold.max_picks_per_day`); `figures`: its PNGs and tear sheet
    too (`mlflow.figures`)."""
    report = segment_backtest(ds, "test", inputs, scores, threshold, cap)
    if report is None or inputs is None:
        return {}
    comparison = segment_comparison(ds, "test", inputs, report, scores, top_k)
    start, end = ds.date_range("test")
    return log_backtest(report, f"test segment {start}..{end}", comparison, figures)


def _labelled(
    ds: Dataset, segment: str, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, days) of a segment's labelled rows (the plots)."""
    return (
        ds.labels(segment),
        scores[ds.positions(segment)],
        segment_days(ds, segment),
    )


def log_results(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    study: optuna.Study,
    fitted: FittedModel,
    result: Evaluation,
) -> tuple[ModelInfo, dict[str, Any]]:
    """Log the metrics, the threshold's status, the plots and the model (with val_/test_ metrics).

    Returns:
        (the logged model, its meta.json facts).
    """
    choice, metrics = result.choice, result.metrics
    tracking.log_metrics(metrics)
    reports.log_threshold_status(choice, app.threshold)
    binary = app.model.objective == "binary"  # only its scores are probabilities
    if app.mlflow.figures:
        reports.log_plots(study, fitted, choice, result.val, result.test, app.threshold, binary)
    reports.log_shap(fitted, ds, app.tuning.seed, app.mlflow.figures)
    meta = reports.model_meta(app, market, ds, study.best_params, choice, metrics)
    example = reports.input_example(ds)
    info = tracking.log_pick_model(fitted, meta, example)
    segments = {k: v for k, v in metrics.items() if k.startswith(("val_", "test_"))}
    tracking.log_metrics(segments, model_id=info.model_id)
    return info, meta


def register(
    app: AppConfig, model_uri: str, result: Evaluation, meta: dict[str, Any]
) -> tuple[str | None, Decision | None]:
    """Register the model as champion or challenger by the promotion policy; (None, None) with
    `registry.register=false`."""
    if not app.registry.register:
        return None, None
    return register_and_promote(
        app.registry, app.threshold, model_uri, result.choice, result.metrics, meta
    )


def _run_name(app: AppConfig, market: Market, run_tags: dict[str, str]) -> str:
    """`mlflow.run_name`, else what the run trains (`excess/full xgboost 50 trials
    20150105..20230316`) and, in a sweep, the job's overrides."""
    if app.mlflow.run_name:
        return app.mlflow.run_name
    facts, m = market.describe(), app.model
    what = (app.label.kind, app.features.sets, m._target_, m.objective, app.tuning.n_trials)
    name = parent_run_name(*what, (str(facts["start"]), str(facts["end"])))
    sweep = run_tags.get(SWEEP_NAME_TAG)
    return f"{name} {sweep}" if sweep else name


def _objective(app: AppConfig, data: StudyData) -> Callable[[optuna.Trial], float]:
    """Validation AUC of one split (or `tuning.metric` per day), or its mean AUC over the
    walk-forward windows."""
    tu, top_k, model = app.tuning, app.trading.top_k, data.model
    if data.windows:
        return make_walk_forward_objective(data.windows, model, tu.eval_every)
    signal, bt = data.signal, data.backtest
    score = scoring.trial_scorer(tu.metric, model, data.matrices, signal, top_k, bt)
    return make_objective(data.matrices, model, tu.eval_every, score)


def _check_has_best_trial(study: optuna.Study, storage: str) -> None:
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise UserError(
            f"study {study.study_name!r} in {redact_uri(storage)} has no complete trial "
            "(all pruned or failed): nothing to register; run more trials"
        )


def log_setup(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    data: StudyData,
    job: Job,
    config_yaml: str | None,
    run_tags: dict[str, str],
) -> None:
    """Log the job's configuration as params, the study, data and split as tags, the resolved
    config as an artifact and the segments as dataset inputs."""
    params: dict[str, Any] = {}
    for group in ("data", "label", "universe", "split", "model", "threshold", "backtest"):
        for key, value in asdict(getattr(app, group)).items():
            params[f"{group}.{key}"] = value
    params.update(
        {
            "tuning.n_trials": app.tuning.n_trials,
            "tuning.seed": app.tuning.seed,
            "tuning.pruner": app.tuning.pruner,
            "features": ",".join(ds.feature_names),
        }
    )
    tracking.log_params(params)
    tracking.set_tags(
        {
            "study_name": job.study.study_name,
            "optuna_storage": redact_uri(job.storage),
            **{f"data_{k}": v for k, v in market.describe().items()},
            **{f"split_{k}": v for k, v in data.summary.items()},
            **caveat_tags(market.source),
        }
    )
    if config_yaml:
        tracking.log_text(config_yaml, "config/resolved_config.yaml")
    tracking.set_tags(run_tags)
    tracking.log_inputs(data.inputs)
