"""One registered version per completed study: the version a study was registered as is kept
on the study (a user attribute), so a rerun of a complete, registered study registers nothing;
a rerun that would decide otherwise (other threshold or promotion settings) is refused."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient

from ashare_autotune.config.schema import RegistryConfig, ThresholdConfig, TuningConfig
from ashare_autotune.errors import UserError
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.tracking import registry

log = logging.getLogger(__name__)

REGISTERED_ATTR = "registered_version"
# The registry settings that decide promotion (the model name is checked on its own).
PROMOTION_KEYS = ("champion_alias", "challenger_alias", "promotion_metrics")


@dataclass(frozen=True)
class RegisteredStudy:
    """A complete study's registered version, in the fields of `pipeline.TrainResult` (all
    but the experiment id): what the run that registered it measured."""

    run_id: str  # the parent run that logged the model
    study_name: str
    n_trials: int  # the study's finished trials when it was registered (and still now)
    best_params: dict[str, Any]
    threshold: ThresholdChoice  # the threshold it chose on validation, as logged
    metrics: dict[str, float]  # that run's metrics (val_*, test_*, threshold, ...)
    model_uri: str  # models:/<model_name>/<version>
    model_version: str
    champion: bool  # the version holds the champion alias now
    promotion_reason: str  # its promotion reason when registered


def record_registration(
    study: optuna.Study,
    model_name: str,
    version: str,
    run_id: str,
    settings: dict[str, Any] | None = None,
) -> None:
    """Keep on the study which version it was registered as, at how many finished trials and
    with which decision settings.

    Args:
        study: the study just registered.
        model_name: the registered model (`registry.model_name`).
        version: the new version.
        run_id: the parent run that logged the model.
        settings: the threshold and promotion settings it was decided with
            (`decision_settings`).
    """
    record = {
        "model_name": model_name,
        "version": str(version),
        "n_finished": _finished(study),
        "run_id": run_id,
        "settings": settings,
    }
    study.set_user_attr(REGISTERED_ATTR, record)


def decision_settings(target: ThresholdConfig, reg: RegistryConfig) -> dict[str, Any]:
    """The settings that decide a complete study's version: every `threshold` key and the
    promotion keys of `registry`, as "group.key" -> value."""
    settings = {f"threshold.{k}": v for k, v in asdict(target).items()}
    return settings | {f"registry.{k}": getattr(reg, k) for k in PROMOTION_KEYS}


def already_registered(
    study: optuna.Study, tuning: TuningConfig, reg: RegistryConfig, target: ThresholdConfig
) -> RegisteredStudy | None:
    """The version a complete study was registered as, if nothing changed since; else None.

    A study counts as already registered when it is complete (it holds `tuning.n_trials`
    finished trials; in finalize mode, whatever the workers ran), registration is on, its record
    names `reg.model_name`, it holds as many finished trials as when it was registered (workers
    adding trials since make it a new result) and the version and its run still exist. Then
    the one line of `complete_message` is logged.

    Args:
        study: the study.
        tuning: the `tuning` group (mode, n_trials).
        reg: the `registry` group (register, model name, champion alias).
        target: the `threshold` group (its target precision goes into the threshold choice).

    Raises:
        UserError: the study is complete and registered, but this run's threshold or promotion
            settings differ from those its version was decided with (one line naming the key).
    """
    n_finished = _finished(study)
    complete = tuning.mode == "finalize" or n_finished >= tuning.n_trials
    record = study.user_attrs.get(REGISTERED_ATTR)
    if not (complete and reg.register and isinstance(record, dict)):
        return None
    if record.get("model_name") != reg.model_name or record.get("n_finished") != n_finished:
        return None
    client = MlflowClient()
    try:
        version = client.get_model_version(reg.model_name, record["version"])
        run = client.get_run(record["run_id"])
    except mlflow.exceptions.MlflowException:
        log.warning(
            "study %s was registered as version %s of %s, which (or whose run) no longer "
            "exists: registering it again",
            study.study_name,
            record["version"],
            reg.model_name,
        )
        return None
    _check_same_decision(study, reg.model_name, record, run.data.params, target, reg)
    champion = registry.alias_version(reg.model_name, reg.champion_alias)
    done = RegisteredStudy(
        run_id=run.info.run_id,
        study_name=study.study_name,
        n_trials=n_finished,
        best_params=dict(study.best_params),
        threshold=_choice(run.data.metrics, run.data.tags, target.target_precision),
        metrics=_metrics(run.data.metrics),
        model_uri=f"models:/{reg.model_name}/{version.version}",
        model_version=str(version.version),
        champion=champion is not None and champion.version == version.version,
        promotion_reason=version.tags.get("promotion_reason", ""),
    )
    log.info("%s", complete_message(study.study_name, reg.model_name, done))
    return done


def _check_same_decision(
    study: optuna.Study,
    model_name: str,
    record: dict[str, Any],
    params: dict[str, str],
    target: ThresholdConfig,
    reg: RegistryConfig,
) -> None:
    """Refuse a rerun whose threshold or promotion settings differ from the version's.

    Records made before the settings were kept are compared on the threshold.* params their
    run logged; a key added to the settings since compares with its default.
    """
    now = decision_settings(target, reg)
    if isinstance(record.get("settings"), dict):
        before = decision_settings(ThresholdConfig(), RegistryConfig()) | record["settings"]
    else:
        before = {k: v for k, v in params.items() if k in now}
    for key in sorted(before.keys() & now.keys()):
        if str(before[key]) != str(now[key]):
            raise UserError(
                f"study {study.study_name!r} is complete and registered as version "
                f"{record['version']} of {model_name}, decided with {key}={before[key]}; this "
                f"run has {key}={now[key]}: a complete study is decided once (rerun with "
                f"{key}={before[key]} to get that version, or give another tuning.study_name "
                f"to tune a study decided with {key}={now[key]})"
            )


def _finished(study: optuna.Study) -> int:
    """Trials that ran to the end (complete or pruned), as `tuning.study.finished_trials`."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _metrics(logged: dict[str, float]) -> dict[str, float]:
    # Only finite metrics are logged: a missing one was NaN (e.g. AUC on one class).
    nan = float("nan")
    return {"test_precision": nan, "test_recall": nan, "test_auc": nan} | dict(logged)


def _choice(metrics: dict[str, float], tags: dict[str, str], target: float) -> ThresholdChoice:
    """The threshold choice as the run logged it."""
    nan = float("nan")
    return ThresholdChoice(
        threshold=metrics.get("threshold", nan),
        precision=metrics.get("val_precision", nan),
        recall=metrics.get("val_recall", nan),
        n_picks=int(metrics.get("val_n_picks", 0)),
        n_days=int(metrics.get("val_n_pick_days", 0)),
        feasible=tags.get("threshold_feasible") == "true",
        target_precision=target,
        best_precision=metrics.get("val_best_precision", nan),
    )


def complete_message(study_name: str, model_name: str, done: RegisteredStudy) -> str:
    """The one log line of a rerun that finds its study complete and registered."""
    return (
        f"study {study_name!r} is complete ({done.n_trials} finished trials) and registered "
        f"as version {done.model_version} of {model_name}: nothing to run or register (a "
        "higher tuning.n_trials continues it, another tuning.study_name starts a new one)"
    )
