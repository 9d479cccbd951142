"""The run `mlflow run .` makes before the job starts (MLFLOW_RUN_ID): the job's parent run when
it is in the job's experiment; otherwise (MLflow's Default experiment: no --experiment-name)
the job logs in its own experiment and the project run says where, and a job that had nothing
to run says so on it, so that no project run is an empty success."""

from __future__ import annotations

import os

import mlflow
from mlflow.entities import Run

DEFAULT_EXPERIMENT_ID = "0"  # where `mlflow run` puts a run without --experiment-name/-id
NOTE_TAG = "mlflow.note.content"  # the run's description in the UI
OUTCOME_TAG = "outcome"


def project_run_id() -> str | None:
    """The `mlflow run` project run of this process, if any."""
    return os.environ.get("MLFLOW_RUN_ID")


def job_experiment(project_run: str, experiment_name: str) -> str:
    """The experiment the job logs to under `mlflow run`: the project run's, unless that is
    MLflow's Default experiment (no --experiment-name given): then `experiment_name`."""
    experiment_id = mlflow.get_run(project_run).info.experiment_id
    if experiment_id != DEFAULT_EXPERIMENT_ID:
        return experiment_id
    return mlflow.set_experiment(experiment_name).experiment_id


def adopts(project_run: str | None, experiment_id: str) -> bool:
    """Whether the project run is the job's parent run (it is in the job's experiment)."""
    if not project_run:
        return False
    return mlflow.get_run(project_run).info.experiment_id == experiment_id


def point_to(project_run: str, run: Run) -> None:
    """Name the project run after the job's run and tag where that run is."""
    experiment = mlflow.get_experiment(run.info.experiment_id).name
    name = run.info.run_name or run.info.run_id
    mlflow.MlflowClient().log_batch(project_run, tags=_tags({
        "mlflow.runName": f"{name} (in {experiment})",
        "job_run_id": run.info.run_id,
        "job_experiment": experiment,
        NOTE_TAG: (
            f"This project run started the job; its run is {run.info.run_id} ({name}) in "
            f"the experiment {experiment}. `mlflow run . --experiment-name {experiment}` logs "
            "the job in the project run itself."
        ),
    }))  # fmt: skip


def record_nothing_to_run(message: str, job_run_id: str | None) -> None:
    """Under `mlflow run`: say on the project run that the job had nothing to run, and which
    run holds what it would have made (no effect outside `mlflow run`)."""
    project_run = project_run_id()
    if not project_run:
        return
    tags = {
        "mlflow.runName": "nothing to run",
        OUTCOME_TAG: "nothing to run",
        NOTE_TAG: message,
    }
    if job_run_id:
        tags["job_run_id"] = job_run_id
    mlflow.MlflowClient().log_batch(project_run, tags=_tags(tags))


def _tags(tags: dict[str, str]) -> list[mlflow.entities.RunTag]:
    return [mlflow.entities.RunTag(k, v) for k, v in tags.items()]
