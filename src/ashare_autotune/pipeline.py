"""The training pipeline as one plain function, so tests and scripts need no Hydra."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna

from ashare_autotune.config.schema import AppConfig, config_fingerprint
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError, UserError
from ashare_autotune.evaluation import walk_forward
from ashare_autotune.evaluation.metrics import classification_metrics
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.modelling.dataset import Dataset, build_dataset
from ashare_autotune.tracking import registry, reports
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.promotion import Decision, decide_promotion
from ashare_autotune.tuning.booster import fit_best
from ashare_autotune.tuning.matrices import Matrices, build_matrices_in_batches
from ashare_autotune.tuning.objective import make_objective, make_walk_forward_objective
from ashare_autotune.tuning.study import (
    FINISHED_STATES,
    finished_trials,
    load_existing_study,
    open_or_create_study,
    redact_uri,
    run_more_trials,
    run_study,
)

log = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"


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
    experiment_id, market, ds, (study, storage, resume) = _prepare(app)
    study_name = study.study_name
    with tracking.parent_run(experiment_id, app.mlflow.run_name or study_name, resume) as run:
        study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
        _log_setup(app, market, ds, study_name, storage, config_yaml)
        tracking.set_tags(run_tags or {})
        matrices, windows = _study_matrices(app, market, ds)
        callback = tracking.trial_callback(run)
        if app.tuning.mode == "all":
            run_study(study, _objective(app, matrices, windows), app.tuning, [callback])
        _check_has_best_trial(study, storage)
        done = study.get_trials(deepcopy=False, states=FINISHED_STATES)
        tracking.reconcile_trial_runs(run, study, done, callback)
        booster = fit_best(matrices, app.model, study, app.tuning.eval_every)
        wf_metrics = walk_forward.walk_forward_report(ds, windows, app, study) if windows else {}
        del matrices, windows
        x_val, y_val = ds.segment("val")
        val_proba = booster.inplace_predict(x_val)
        choice = walk_forward.choose_threshold(app, y_val, val_proba)
        x_test, y_test = ds.segment("test")
        test_proba = booster.inplace_predict(x_test)
        metrics = _segment_metrics(study.best_value, y_val, val_proba, y_test, test_proba, choice)
        metrics |= wf_metrics
        if wf_metrics:  # same quantity as the trials' val_auc (the objective): sort together
            metrics["val_auc"] = wf_metrics["val_wf_auc"]
        metrics |= reports.trading_view(app, market, ds, test_proba, choice.threshold)
        tracking.log_metrics(metrics)
        _log_threshold(choice)
        reports.log_plots(study, booster, choice, (y_val, val_proba), (y_test, test_proba))
        meta = _model_meta(app, market, ds, study.best_params, choice, metrics)
        info = tracking.log_pick_model(booster, meta, x_val.dropna().head(5))
        tracking.log_metrics(
            {k: v for k, v in metrics.items() if k.startswith("test_")}, model_id=info.model_id
        )
        version, decision = (
            register_and_promote(app, info.model_uri, choice, metrics, meta)
            if app.registry.register
            else (None, None)
        )
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        study_name=study_name,
        n_trials=finished_trials(study),
        best_params=dict(study.best_params),
        threshold=choice,
        metrics=metrics,
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
    experiment_id, market, ds, (study, storage, resume) = _prepare(app)
    name = study.study_name
    with tracking.parent_run(experiment_id, app.mlflow.run_name or name, resume) as run:
        if resume != run.info.run_id:
            study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
        _log_setup(app, market, ds, name, storage, config_yaml)
        matrices, windows = _study_matrices(app, market, ds)
        objective = _objective(app, matrices, windows)
        ran = run_more_trials(study, objective, app.tuning, [tracking.trial_callback(run)])
    return WorkerResult(run.info.run_id, name, ran, finished_trials(study))


def _prepare(
    app: AppConfig,
) -> tuple[str, Market, Dataset, tuple[optuna.Study, str, str | None]]:
    """Check the tracking store (before any work), load the data, build the dataset and open
    the study: (experiment id, market without its bars, dataset, `_open_study`'s answer)."""
    experiment_id = tracking.setup(
        app.mlflow.tracking_uri, app.mlflow.experiment_name, app.mlflow.sqlite_wal
    )
    market = load_market(app.data)
    ds = build_dataset(market, app.features.names, app.label, app.split)
    market = market.without_bars()  # the rows the job needs are in ds.frame now
    return experiment_id, market, ds, _open_study(app, market)


def _study_matrices(
    app: AppConfig, market: Market, ds: Dataset
) -> tuple[Matrices, list[Matrices]]:
    """Quantise train/validation once per study (and every walk-forward window, oldest first,
    the split's own last); log the segments as dataset inputs. With a single split the train
    rows then leave `ds`, so they are freed once quantised (benchmarks/README.md)."""
    earlier = walk_forward.walk_forward_matrices(ds, app)  # needs the train rows still in ds
    # Walk-forward re-scores every window after the study, on rows inside this train range:
    # keep them. A single split never reads its train rows again: free them once quantised.
    train = ds.segment_rows("train") if ds.windows else ds.split_off("train")
    reports.log_datasets(market, ds, train)
    matrices = build_matrices_in_batches(
        (train, np.arange(len(train))),
        (ds.frame, np.flatnonzero(ds.masks()["val"])),
        ds.feature_names,
        "label",
        app.model.max_bin,
        app.model.n_jobs,
        watch_rows=app.tuning.watch_rows,
        # walk-forward windows are each trained in full: the sample is for one large split
        trial_rows=None if ds.windows else app.tuning.trial_rows,
        seed=app.tuning.seed,
    )
    return matrices, ([*earlier, matrices] if ds.windows else [])


def _objective(
    app: AppConfig, matrices: Matrices, windows: list[Matrices]
) -> Callable[[optuna.Trial], float]:
    """Validation AUC of one split, or its mean over the walk-forward windows."""
    if windows:
        return make_walk_forward_objective(
            windows, app.model, app.tuning.space, app.tuning.eval_every
        )
    return make_objective(matrices, app.model, app.tuning.space, app.tuning.eval_every)


def _open_study(app: AppConfig, market: Market) -> tuple[optuna.Study, str, str | None]:
    """(study, storage URL, the study's parent MLflow run id if it has one)."""
    tu = app.tuning
    name = tu.study_name or _default_study_name(app, market)
    storage = tu.storage or tracking.default_study_storage(app.mlflow.tracking_uri)
    if tu.mode == "finalize":
        study = load_existing_study(tu, name, storage)
        return study, storage, study.user_attrs.get(PARENT_RUN_ATTR)
    study, created = open_or_create_study(tu, name, storage)
    parent = study.user_attrs.get(PARENT_RUN_ATTR)
    if parent is None and not created and tu.mode == "worker":
        parent = _wait_for_parent(study, tu.parent_wait)
    return study, storage, parent


def _wait_for_parent(study: optuna.Study, timeout: float) -> str | None:
    """Wait for the worker that created the study to record its parent run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parent = study.user_attrs.get(PARENT_RUN_ATTR)
        if parent:
            return parent
        time.sleep(0.5)
    log.warning("study %s has no parent run after %.0f s: starting one", study.study_name, timeout)
    return None


def _check_has_best_trial(study: optuna.Study, storage: str) -> None:
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise UserError(
            f"study {study.study_name!r} in {redact_uri(storage)} has no complete trial "
            "(all pruned or failed): nothing to register; run more trials"
        )


def _default_study_name(app: AppConfig, market: Market) -> str:
    """Same config and same data -> same study, so a rerun resumes rather than restarts."""
    data = market.describe()
    return f"{app.mlflow.experiment_name}-{config_fingerprint(app, data)}"


def _log_setup(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    study_name: str,
    storage: str,
    config_yaml: str | None,
) -> None:
    params: dict[str, Any] = {}
    for group in ("data", "label", "split", "model", "threshold"):
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
    summary = ds.summary()
    tracking.set_tags(
        {
            "study_name": study_name,
            "optuna_storage": redact_uri(storage),
            **{f"data_{k}": v for k, v in market.describe().items()},
            **{f"split_{k}": v for k, v in summary.items()},
        }
    )
    if config_yaml:
        tracking.log_text(config_yaml, "config/resolved_config.yaml")


def _segment_metrics(
    best_val_auc: float,
    y_val: np.ndarray,
    val_proba: np.ndarray,
    y_test: np.ndarray,
    test_proba: np.ndarray,
    choice: ThresholdChoice,
) -> dict[str, float]:
    metrics = {
        "best_trial_val_auc": float(best_val_auc),
        "threshold": choice.threshold,
        "val_best_precision": choice.best_precision,
    }
    metrics |= classification_metrics(y_val, val_proba, choice.threshold, "val")
    metrics |= classification_metrics(y_test, test_proba, choice.threshold, "test")
    log.info(
        "test at threshold %.3f: AUC %.4f precision %.4f recall %.4f picks %d",
        choice.threshold,
        metrics["test_auc"],
        metrics["test_precision"],
        metrics["test_recall"],
        metrics["test_n_picks"],
    )
    return metrics


def _log_threshold(choice: ThresholdChoice) -> None:
    status = (
        f"threshold {choice.threshold:.3f} meets precision >= {choice.target_precision:.2f} on "
        f"validation (precision {choice.precision:.4f}, recall {choice.recall:.4f})"
        if choice.feasible
        else f"NO threshold reaches precision >= {choice.target_precision:.2f} on validation; "
        f"best precision reached {choice.best_precision:.4f}. The model is registered "
        f"as a challenger, not champion"
    )
    (log.info if choice.feasible else log.warning)("%s", status)
    tracking.set_tags(
        {"threshold_feasible": str(choice.feasible).lower(), "threshold_status": status}
    )


def _model_meta(
    app: AppConfig,
    market: Market,
    ds: Dataset,
    params: dict[str, Any],
    choice: ThresholdChoice,
    metrics: dict[str, float],
) -> dict[str, Any]:
    return {
        "features": ds.feature_names,
        "threshold": choice.threshold,
        "threshold_feasible": choice.feasible,
        "target_precision": choice.target_precision,
        "label": asdict(app.label),
        "data": market.describe(),
        "segments": {name: ds.date_range(name) for name in ("train", "val", "test")},
        "params": params,
        "metrics": {k: v for k, v in metrics.items() if k.startswith(("val_", "test_"))},
    }


def register_and_promote(
    app: AppConfig,
    model_uri: str,
    choice: ThresholdChoice,
    metrics: dict[str, float],
    meta: dict[str, Any],
) -> tuple[str, Decision]:
    """Register a logged model and give it the champion or challenger alias by the policy.

    Args:
        app: the configuration (registry names, promotion metrics, precision target).
        model_uri: the logged model to register.
        choice: the threshold chosen on validation.
        metrics: val_/test_ metrics of the model at that threshold.
        meta: the model's meta.json facts (label, data range, segments), for the description.

    Returns:
        (the new version number, the promotion `Decision`).
    """
    name = app.registry.model_name
    decision = _decide(app, choice, metrics)
    tags = {
        "test_precision": round(metrics["test_precision"], 4),
        "test_recall": round(metrics["test_recall"], 4),
        "test_auc": round(metrics["test_auc"], 4),
        "threshold": choice.threshold,
        "threshold_feasible": str(choice.feasible).lower(),
        "val_precision": round(choice.precision, 4),
        "label": _label_text(meta["label"]),
        "data_range": f"{meta['data']['start']}..{meta['data']['end']}",
        "promotion": decision.role,
        "promotion_reason": decision.reason,
    }
    description = f"{_describe(meta, metrics)} Promotion: {decision.role}, {decision.reason}."
    version = registry.register_version(model_uri, name, tags, description)
    alias = app.registry.champion_alias if decision.promote else app.registry.challenger_alias
    registry.set_alias(name, alias, version.version)
    (log.info if decision.promote else log.warning)(
        "version %s is %s@%s: %s", version.version, name, alias, decision.reason
    )
    return str(version.version), decision


def _decide(app: AppConfig, choice: ThresholdChoice, metrics: dict[str, float]) -> Decision:
    """Apply the promotion policy against the version currently holding the champion alias."""
    champion = registry.alias_version(app.registry.model_name, app.registry.champion_alias)
    return decide_promotion(
        metrics,
        threshold_feasible=choice.feasible,
        target_precision=app.threshold.target_precision,
        min_picks=app.threshold.min_picks,
        compare=list(app.registry.promotion_metrics),
        champion=registry.version_metrics(champion) if champion else None,
        champion_version=champion.version if champion else None,
    )


def _label_text(label: dict[str, Any]) -> str:
    return f"max close T+{label['min_days']}..T+{label['max_days']} >= +{label['min_return']:.1%}"


def _describe(meta: dict[str, Any], metrics: dict[str, float]) -> str:
    lab, data = meta["label"], meta["data"]
    segments = ", ".join(f"{name} {lo}..{hi}" for name, (lo, hi) in meta["segments"].items())
    met = "met" if meta["threshold_feasible"] else "NOT met"
    return (
        f"XGBoost stock picker. Data {data['source']} {data['start']}..{data['end']}, "
        f"{data['n_stocks']} stocks. Label: max close over T+{lab['min_days']}..T+"
        f"{lab['max_days']} >= +{lab['min_return']:.1%}. Segments: {segments}. "
        f"Threshold {meta['threshold']:.3f} (target precision {meta['target_precision']:.2f}, "
        f"{met} on validation). Test: AUC {metrics['test_auc']:.4f}, precision "
        f"{metrics['test_precision']:.4f}, recall {metrics['test_recall']:.4f}, "
        f"{int(metrics['test_n_picks'])} picks."
    )
