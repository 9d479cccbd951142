"""A study survives SIGKILL: rerunning the same command fails the trial the dead process left
RUNNING (heartbeat), retries it, stops at exactly `tuning.n_trials` finished trials, leaves one
MLflow run per finished trial under the study's parent run, removes the dead process's feature
store and registers the best of them all."""

from __future__ import annotations

import errno
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError, disk_full, report_io_faults, unwritable
from ashare_autotune.jobs.pipeline import PARENT_RUN_ATTR, SCRATCH_PREFIX, run_training
from ashare_autotune.runtime import owner_pid
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.trial_runs import child_runs
from ashare_autotune.tuning.scoring import TRIAL_METRICS
from ashare_autotune.tuning.study import (
    FINISHED_STATES,
    check_objective,
    open_or_create_study,
    run_study,
)
from tests.conftest import ROOT, cli_env, train_command

N_TRIALS = 5
MODEL = "resume-model"
# A few hundred rounds without early stopping or pruning: long enough to be killed mid-trial.
SLOWER_TRIALS = (
    "model.num_boost_round=150",
    "model.early_stopping_rounds=150",
    "tuning.pruner=none",
)


TRIALS_SQL = """SELECT t.number, t.state,
(SELECT COUNT(*) FROM trial_params p WHERE p.trial_id = t.trial_id)
* (SELECT COUNT(*) FROM trial_heartbeats h WHERE h.trial_id = t.trial_id) FROM trials t"""


SPACE_SIZE = len(yaml.safe_load((ROOT / "conf/model/xgboost.yaml").read_text())["space"])


def trial_states(db: Path) -> dict[int, tuple[str, int]]:
    """Trial number -> (state, parameters sampled so far, or 0 before its first heartbeat),
    read straight from the Optuna SQLite file (empty before it exists)."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return {n: (state, k) for n, state, k in con.execute(TRIALS_SQL).fetchall()}
    except sqlite3.OperationalError:  # tables not created yet, or a writer holds the lock
        return {}


def kill_mid_trial(
    proc: subprocess.Popen, db: Path, min_finished: int, sig: int = signal.SIGKILL
) -> int:
    """Send `sig` (SIGKILL) to `proc` while a trial trains (parameters sampled, heartbeat
    beating) after `min_finished` trials finished; returns the cut trial's number."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        states = trial_states(db)
        running = [n for n, (s, k) in states.items() if s == "RUNNING" and k >= SPACE_SIZE]
        done = sum(s in ("COMPLETE", "PRUNED") for s, _ in states.values())
        if running and done >= min_finished:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()  # never leave it training after the test
                raise
            return running[0]
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no trial was running after {min_finished} finished (exit {proc.poll()})")


def trial_runs(parent_run_id: str, experiment_id: str) -> list[int]:
    """Trial numbers of the finished trial runs nested under the parent, one entry per run."""
    runs = child_runs(parent_run_id, experiment_id)
    done = runs[runs["tags.state"].isin(["COMPLETE", "PRUNED"])]
    return sorted(done["tags.number"].astype(int))


@pytest.mark.slow
def test_sigkilled_study_resumes_to_n_trials_and_registers_the_best(
    tmp_path: Path, tracking_uri: str
) -> None:
    cmd = train_command(
        tmp_path,
        f"tuning.n_trials={N_TRIALS}",
        "tuning.study_name=resume",
        "tuning.heartbeat_interval=1",
        "tuning.grace_period=2",
        f"registry.model_name={MODEL}",
        *SLOWER_TRIALS,
    )
    db = tmp_path / "optuna.db"
    scratch = tmp_path / "tmp"  # the jobs' $TMPDIR
    scratch.mkdir()
    env = cli_env(tracking_uri) | {"TMPDIR": str(scratch)}
    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=out)
        killed = kill_mid_trial(first, db, min_finished=2)
    assert first.returncode == -signal.SIGKILL
    assert trial_states(db)[killed][0] == "RUNNING"
    left = [p.name for p in scratch.iterdir()]  # a SIGKILLed process cannot clean up
    assert [owner_pid(name, SCRATCH_PREFIX) for name in left] == [first.pid]
    time.sleep(2)  # past the grace period: the killed trial's heartbeat is now stale

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not list(scratch.iterdir()), "the dead process's feature store is removed"

    study = optuna.load_study(study_name="resume", storage=f"sqlite:///{db}")
    assert {s for s, _ in trial_states(db).values()} <= {"COMPLETE", "PRUNED", "FAIL"}
    finished = [t for t in study.trials if t.state in FINISHED_STATES]
    assert len(finished) == N_TRIALS
    assert study.trials[killed].state == optuna.trial.TrialState.FAIL
    retry = [t for t in finished if t.system_attrs.get("failed_trial") == killed]
    assert len(retry) == 1 and retry[0].params == study.trials[killed].params
    # The resumed sampler does not replay the first process's start-up points.
    assert len({tuple(sorted(t.params.items())) for t in finished}) == N_TRIALS

    parent = mlflow.get_run(study.user_attrs[PARENT_RUN_ATTR])
    assert trial_runs(parent.info.run_id, parent.info.experiment_id) == sorted(
        t.number for t in finished
    )
    assert parent.data.metrics["best_trial_val_auc"] == pytest.approx(
        max(t.value for t in finished if t.value is not None)
    )
    versions = MlflowClient().search_model_versions(f"name='{MODEL}'")
    assert len(versions) == 1
    _, meta = tracking.load_pick_model(f"models:/{MODEL}/{versions[0].version}")
    assert meta["params"] == study.best_params


@pytest.mark.slow
def test_rerun_of_a_full_study_repairs_missing_and_duplicate_trial_runs(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("tuning.n_trials=3", "tuning.study_name=repair", "registry.register=false")
    first = run_training(app)
    client = MlflowClient()
    runs = child_runs(first.run_id, first.experiment_id)
    by_number = dict(zip(runs["tags.number"].astype(int), runs["run_id"], strict=True))
    client.delete_run(by_number[0])  # as if killed before trial 0's run was logged
    copy = client.create_run(
        first.experiment_id,
        run_name="1",
        tags={"mlflow.parentRunId": first.run_id, "number": "1", "state": "COMPLETE"},
    )  # a second, unfinished run for trial 1: as if killed while it was being logged

    second = run_training(app)

    assert second.run_id == first.run_id
    assert trial_runs(first.run_id, first.experiment_id) == [0, 1, 2]
    assert client.get_run(copy.info.run_id).info.lifecycle_stage == "deleted"


def test_losing_the_study_database_mid_study_is_one_clear_error(
    compose_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    db = tmp_path / "study.db"
    app = compose_app("tuning.n_trials=3")
    study, _ = open_or_create_study(app.tuning, "lost", f"sqlite:///{db}")

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        with sqlite3.connect(db) as con:  # the database goes away under the running study
            con.execute("DROP TABLE trial_values")
        return 0.5

    with pytest.raises(UserError, match="a database stopped working during study 'lost'"):
        run_study(study, objective, app.tuning)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "mlruns/1/x.ubj"), "mlruns/1/x.ubj"),
        (RuntimeError("(sqlite3.OperationalError) database or disk is full"), "SQLite"),
    ],
)
def test_a_full_disk_anywhere_in_the_error_chain_is_recognised(
    error: Exception, said: str
) -> None:
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("while logging the model") from inner
    except RuntimeError as outer:
        assert said in (disk_full(outer) or "")
    assert disk_full(RuntimeError("database is locked")) is None


def _versions(model: str) -> list[str]:
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name='{model}'"))


@pytest.mark.slow
def test_another_tuning_metric_is_another_study_or_refused_when_the_name_is_given(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    auc = run_training(compose_app())  # default study name, tuning.metric=auc
    rank_ic = run_training(compose_app("tuning.metric=rank_ic"))
    assert rank_ic.study_name != auc.study_name  # the default name is derived from the metric
    assert _versions("ashare-autotune-debug") == ["1", "2"]
    runs_before = len(mlflow.search_runs([auc.experiment_id]))

    # naming the AUC study explicitly with the other metric: refused before any run or trial
    named = compose_app(f"tuning.study_name={auc.study_name}", "tuning.metric=rank_ic")
    with pytest.raises(UserError, match=r"holds trials scored with tuning\.metric=auc; this run"):
        run_training(named)

    study = optuna.load_study(study_name=auc.study_name, storage="sqlite:///optuna.db")
    assert len(study.trials) == 2
    assert study.user_attrs["objective"] == {"tuning.metric": "auc", "direction": "maximize"}
    assert len(mlflow.search_runs([auc.experiment_id])) == runs_before
    assert _versions("ashare-autotune-debug") == ["1", "2"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("threshold.target_precision=0.999", "threshold.target_precision=0.25; this run has"),
        ("registry.promotion_metrics=[val_recall]", "registry.promotion_metrics=['val_"),
    ],
)
def test_a_registered_study_rerun_with_other_decision_settings_is_refused(
    override: str, key: str, compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("tuning.study_name=decided", f"registry.model_name={MODEL}")
    first = run_training(app)
    with pytest.raises(UserError, match=re.escape(f"decided with {key}")):
        run_training(
            compose_app("tuning.study_name=decided", f"registry.model_name={MODEL}", override)
        )
    assert _versions(MODEL) == ["1"]
    again = run_training(app)  # the version's own settings: that version, nothing new
    assert (again.model_version, again.run_id) == ("1", first.run_id)


def test_a_study_from_before_the_objective_was_recorded_is_checked_on_its_trial_metric() -> None:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("objective_metric", "val_auc")  # what such a study holds
    rank_ic = {"tuning.metric": "rank_ic", "direction": "maximize"}
    with pytest.raises(UserError, match=r"scored with tuning\.metric=auc; this run has tuning"):
        check_objective(study, rank_ic, TRIAL_METRICS)
    assert "objective" not in study.user_attrs
    auc = {"tuning.metric": "auc", "direction": "maximize"}
    check_objective(study, auc, TRIAL_METRICS)
    assert study.user_attrs["objective"] == auc


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            OSError(errno.EROFS, "Read-only file system", "mlruns/1/x.png"),
            "write mlruns/1/x.png: Read-only file system (errno 30)",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "cache/000001.SZ.parquet"),
            "read or write cache/000001.SZ.parquet: Permission denied (errno 13)",
        ),
        (OSError(errno.EPERM, "Operation not permitted"), "read or write a file: Operation"),
        (
            RuntimeError("(sqlite3.OperationalError) attempt to write a readonly database"),
            "write a SQLite store (mlflow.tracking_uri or tuning.storage)",
        ),
    ],
)
def test_an_unwritable_file_or_store_anywhere_in_the_error_chain_is_recognised(
    error: Exception, said: str
) -> None:
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("while logging the model") from inner
    except RuntimeError as outer:
        assert (unwritable(outer) or "").startswith(said)
    assert unwritable(OSError(errno.ENOENT, "No such file or directory", "x")) is None


def test_a_read_only_artifact_store_stops_the_job_in_one_line(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """EROFS raised where the artifacts are written (root is not stopped by chmod; a real
    read-only mount is in test_validation's `read-only-file-system` case)."""

    def read_only(src: str, dst: str, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", dst)

    monkeypatch.setattr("ashare_autotune.tracking.artifact_files.shutil.copytree", read_only)
    with mlflow.start_run(experiment_id="0"), pytest.raises(SystemExit) as stopped:
        report_io_faults(tracking.log_artifacts)(ROOT / "conf", "config")
    assert stopped.value.code == 2
    line = capsys.readouterr().err
    assert line.count("\n") == 1
    assert re.fullmatch(
        r"error: cannot write \S+/artifacts/\.partial-\d+-config: Read-only file system "
        r"\(errno 30\); make it writable or point the setting that names it \(mlflow\."
        r"tracking_uri, tuning\.storage, data\.cache_dir, hydra\.run\.dir\) elsewhere, then run "
        r"the same command again\n",
        line,
    ), line
