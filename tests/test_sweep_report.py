"""A multirun's comparison table is a file in the sweep's folder and an artifact of every job's
parent run (what a reader finds in the MLflow UI), read back from a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from ashare_autotune.tracking.sweep_report import SWEEP_DIR_TAG, TABLE_FILE, write_sweep_table


def _job_run(sweep_dir: Path, job: int, val_auc: float) -> str:
    tags = {SWEEP_DIR_TAG: str(sweep_dir), "hydra_job": str(job), "sweep_job": f"x={job}"}
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_metric("val_auc", val_auc)
    return run.info.run_id


def test_the_table_is_written_and_attached_to_each_job_of_the_sweep_only(
    tracking_uri: str, tmp_path: Path
) -> None:
    mlflow.set_experiment("sweeps")
    sweep, other = tmp_path / "multirun", tmp_path / "another"
    sweep.mkdir()
    jobs = [_job_run(sweep, 0, 0.61), _job_run(sweep, 1, 0.62)]
    elsewhere = _job_run(other, 0, 0.5)

    path = write_sweep_table("sweeps", str(sweep))

    assert path == sweep / TABLE_FILE
    text = path.read_text()
    assert len(text.splitlines()) == 4  # header, rule, one row a job
    assert "| 0 | x=0 | 0.6100 |" in text and "| 1 | x=1 | 0.6200 |" in text
    for run_id in jobs:
        assert mlflow.artifacts.load_text(f"runs:/{run_id}/{TABLE_FILE}") == text
    assert not mlflow.MlflowClient().list_artifacts(elsewhere)


def test_a_sweep_without_runs_writes_and_attaches_nothing(
    tracking_uri: str, tmp_path: Path
) -> None:
    mlflow.set_experiment("sweeps")
    assert write_sweep_table("sweeps", str(tmp_path)) is None
    assert not (tmp_path / TABLE_FILE).exists()
