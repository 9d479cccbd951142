"""The trials' MLflow runs: one run nested under the study's parent run per finished trial,
with the trial's own start and end times, and their repair after a killed process."""

from __future__ import annotations

import logging
import warnings
from datetime import datetime
from typing import Any

import mlflow
import optuna
import pandas as pd
from mlflow.entities import Run
from optuna_integration.mlflow import MLflowCallback

log = logging.getLogger(__name__)

TRIAL_METRIC = "val_auc"


class TrialRunCallback(MLflowCallback):
    """optuna-integration's callback, its runs timed as the trials were: the UI's durations
    are the trials' (seconds), not the few milliseconds the callback takes to log them."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Log the finished trial as a run from its start to its end."""
        with self._lock:
            client = mlflow.MlflowClient()
            kwargs = self._mlflow_kwargs
            run = client.create_run(
                kwargs["experiment_id"],
                start_time=_epoch_ms(trial.datetime_start),
                tags=kwargs.get("tags"),
                run_name=str(trial.number),
            )
            with mlflow.start_run(run_id=run.info.run_id, nested=True):
                self._log_metrics(trial.values)
                self._log_params(trial.params)
                self._set_tags(trial, study)
            end = _epoch_ms(trial.datetime_complete)
            client.set_terminated(run.info.run_id, "FINISHED", end_time=end)


def _epoch_ms(moment: datetime | None) -> int | None:
    """Milliseconds since the epoch of an Optuna time (local, naive); None stays None."""
    return None if moment is None else int(moment.timestamp() * 1000)


def trial_callback(parent: Run, metric_name: str = TRIAL_METRIC) -> MLflowCallback:
    """optuna-integration's callback logging each trial as a run nested under `parent`, its
    value as `metric_name` (the study's objective, e.g. val_auc)."""
    # Deprecated upstream in 4.9 (moving to OptunaHub), removed in 6.0: pinned <5.1 in pyproject.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _mlflow_callback(parent, metric_name)


def _mlflow_callback(parent: Run, metric_name: str) -> MLflowCallback:
    return TrialRunCallback(
        metric_name=metric_name,
        create_experiment=False,
        tag_trial_user_attrs=True,
        mlflow_kwargs={
            "nested": True,
            "experiment_id": parent.info.experiment_id,
            # Explicit so that trials run in worker threads still nest under the parent.
            "tags": {"mlflow.parentRunId": parent.info.run_id},
        },
    )


def child_runs(parent_run_id: str, experiment_id: str) -> pd.DataFrame:
    """The runs nested under a parent run."""
    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
    )


def reconcile_trial_runs(
    parent: Run,
    study: optuna.Study,
    done: list[optuna.trial.FrozenTrial],
    callback: MLflowCallback,
) -> None:
    """Leave exactly one finished MLflow run per finished trial (`done`) under `parent`.

    A process killed between a trial's end and the end of its MLflow run leaves the run
    RUNNING (or the trial without a run): such runs and any duplicate of a trial number are
    deleted, and every finished trial without a run is logged again through `callback`.
    Only call this when no other worker is running trials for the study.
    """
    finished = {t.number: t for t in done}
    kept: set[int] = set()
    client = mlflow.MlflowClient()
    runs = child_runs(parent.info.run_id, parent.info.experiment_id)
    for run in runs.sort_values("start_time").to_dict("records") if len(runs) else []:
        number = _trial_number(run)
        if number is None:
            continue
        if run["status"] != "FINISHED" or number in kept:
            client.delete_run(run["run_id"])
            log.warning("deleted MLflow run %s: partial or duplicate of trial %d", *_id(run))
        else:
            kept.add(number)
    missing = sorted(set(finished) - kept)
    for number in missing:
        callback(study, finished[number])
    if missing:
        log.warning(
            "logged %d finished trial(s) that had no MLflow run: %s", len(missing), missing
        )


def _trial_number(run: dict[str, Any]) -> int | None:
    """The Optuna trial number of an MLflowCallback run (named after it), else None."""
    name = run.get("tags.number") or run.get("tags.mlflow.runName")
    return int(name) if isinstance(name, str) and name.isdigit() else None


def _id(run: dict[str, Any]) -> tuple[str, int]:
    return run["run_id"], int(_trial_number(run) or -1)
