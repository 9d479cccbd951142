"""Two commands at once (issue 20): training processes started together on the same stores
neither crash nor duplicate. A fresh directory's stores are created once (the loser of the race
waits); a second all-in-one process on a live study refuses with one line; the study holds
`tuning.n_trials` finished trials, one MLflow run each under one parent, and one registered
version; a rerun of the complete study registers nothing; a killed run's lock does not block."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError
from ashare_autotune.jobs.pipeline import PARENT_RUN_ATTR, run_training
from ashare_autotune.store_locks import hold_study, study_lock_path
from ashare_autotune.tracking import experiment
from ashare_autotune.tracking.study_record import REGISTERED_ATTR
from ashare_autotune.tuning.study import FINISHED_STATES
from tests import test_workers
from tests.conftest import cli_env, train_command
from tests.test_resume import SLOWER_TRIALS, kill_mid_trial, trial_runs

MODEL = "concurrency-model"
# test_workers' fixture `pg_databases` (two fresh PostgreSQL databases; skips without a server)
pg_stores = test_workers.pg_databases


def refusal(study: str, lock: Path) -> str:
    """The one line a second all-in-one process on a live study prints (README `study-in-use`)."""
    return (
        f"error: study {study!r} is being run by another process (it holds {lock}); wait for "
        "it to finish, or add trials to it in parallel with tuning.mode=worker"
    )


def start_two(tmp_path: Path, uri: str, *overrides: str) -> list[tuple[int, str, str]]:
    """Start two identical training commands at the same moment; (exit code, stdout, stderr)."""
    procs = [
        subprocess.Popen(
            train_command(tmp_path / f"h{i}", f"registry.model_name={MODEL}", *overrides),
            cwd=tmp_path,
            env=cli_env(uri),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


def check_one_study(
    tmp_path: Path, uri: str, results: list[tuple[int, str, str]], n_trials: int, name: str = ""
) -> optuna.Study:
    """Of two processes started together, one ran the study and the other left it alone:
    refused with the one line, or (had it started after the first finished) found the study
    complete and registered. The study (`name`, else the only one) then keeps every promise."""
    for _, out, err in results:
        assert "Traceback" not in out + err, (out + err)[-3000:]
    said = [out + err for _, out, err in results]  # Hydra logs to stdout
    done = [("done: run" in s and "nothing to run" not in s) for s in said]
    ran = [r for r, d in zip(results, done, strict=True) if d]
    assert len(ran) == 1 and ran[0][0] == 0, [s[-2000:] for s in said]
    other = next(r for r in results if r is not ran[0])
    mlflow.set_tracking_uri(uri)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    if not name:
        (only,) = optuna.get_all_study_summaries(storage)
        name = only.study_name
    study = optuna.load_study(study_name=name, storage=storage)
    if other[0] == 2:  # refused: one stderr line, exit 2
        lock = study_lock_path(str(tmp_path / "optuna.db"), name)
        assert other[2].strip().splitlines() == [refusal(name, Path(lock))]
    else:  # started after the first one finished
        assert other[0] == 0 and "is complete" in other[1], other[1][-2000:]
    finished = [t for t in study.trials if t.state in FINISHED_STATES]
    assert len(finished) == n_trials
    parent = mlflow.get_run(study.user_attrs[PARENT_RUN_ATTR])
    experiment = parent.info.experiment_id
    assert trial_runs(parent.info.run_id, experiment) == sorted(t.number for t in finished)
    parents = mlflow.search_runs(
        experiment_ids=[experiment], filter_string=f"tags.study_name = '{name}'"
    )
    assert list(parents["run_id"]) == [parent.info.run_id]  # the refused process left no run
    return study


def registered_versions() -> list[str]:
    """The versions of the test's registered model, as strings."""
    versions = MlflowClient().search_model_versions(f"name='{MODEL}'")
    return sorted(str(v.version) for v in versions)


@pytest.mark.slow
def test_two_runs_started_together_neither_crash_nor_duplicate(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # no store yet: both processes create it

    fresh = check_one_study(tmp_path, uri, start_two(tmp_path, uri), n_trials=2)
    assert registered_versions() == ["1"]
    assert fresh.user_attrs[REGISTERED_ATTR]["version"] == "1"

    again = ("tuning.study_name=same", "tuning.n_trials=3")
    check_one_study(tmp_path, uri, start_two(tmp_path, uri, *again), n_trials=3, name="same")
    assert registered_versions() == ["1", "2"]  # one version per completed study

    rerun = subprocess.run(
        train_command(tmp_path / "h3", f"registry.model_name={MODEL}", *again),
        cwd=tmp_path,
        env=cli_env(uri),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (
        "study 'same' is complete (3 finished trials) and registered as version 2 of "
        f"{MODEL}: nothing to run or register" in rerun.stdout
    )
    assert "model version 2" in rerun.stdout.split("done: run")[1]
    assert registered_versions() == ["1", "2"]


@pytest.mark.slow
def test_a_killed_runs_study_lock_does_not_block_the_rerun(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = train_command(
        tmp_path / "h",
        "tuning.n_trials=2",
        "tuning.study_name=killed",
        "tuning.heartbeat_interval=1",
        "tuning.grace_period=2",
        f"registry.model_name={MODEL}",
        *SLOWER_TRIALS,
    )
    db = tmp_path / "optuna.db"
    first = subprocess.Popen(
        cmd, cwd=tmp_path, env=cli_env(uri), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_mid_trial(first, db, min_finished=0)
    assert first.returncode == -signal.SIGKILL
    assert Path(study_lock_path(str(db), "killed")).exists()  # left behind, but not held
    time.sleep(2)  # past the grace period: the killed trial is retried

    rerun = subprocess.run(
        cmd, cwd=tmp_path, env=cli_env(uri), capture_output=True, text=True, timeout=300
    )

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{db}")
    assert len([t for t in study.trials if t.state in FINISHED_STATES]) == 2
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.FAIL) == 1  # retried
    mlflow.set_tracking_uri(uri)
    assert registered_versions() == ["1"]


def test_a_second_hold_on_a_study_is_refused_until_the_first_is_released(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with hold_study(storage, "busy"):
        with pytest.raises(UserError, match="study 'busy' is being run by another process"):
            hold_study(storage, "busy")
        hold_study(storage, "other").release()  # another study is not blocked
    hold_study(storage, "busy").release()


def test_a_study_name_unfit_for_a_file_name_gets_a_safe_unique_lock_file() -> None:
    assert study_lock_path("/d/optuna.db", "daily") == "/d/optuna.db.daily.lock"
    a, b = study_lock_path("/d/o.db", "a/b"), study_lock_path("/d/o.db", "a:b")
    assert a != b and "/" not in a.removeprefix("/d/") and a.startswith("/d/o.db.a_b-")


START_AT_ONCE = """
import sys, time
from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.tracking import runs
from ashare_autotune.tuning.study import make_storage
mlflow_uri, optuna_uri, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
runs.setup(mlflow_uri, "race")
make_storage(TuningConfig(), optuna_uri)
print("ready")
"""


def create_at_once(mlflow_uri: str, optuna_uri: str, cwd: Path) -> list[str]:
    """Two processes creating both stores at the same instant; what each printed."""
    start = time.time() + 4  # both have imported MLflow by then
    args = [sys.executable, "-c", START_AT_ONCE, mlflow_uri, optuna_uri, str(start)]
    procs = [
        subprocess.Popen(args, cwd=cwd, env=cli_env(mlflow_uri), text=True, **PIPES)
        for _ in range(2)
    ]
    return [p.communicate(timeout=120)[0] for p in procs]


PIPES = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}


@pytest.mark.slow
def test_two_processes_create_the_sqlite_stores_at_the_same_instant(tmp_path: Path) -> None:
    outputs = create_at_once(
        f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}", tmp_path
    )
    assert [o.strip().splitlines()[-1:] for o in outputs] == [["ready"], ["ready"]], outputs


@pytest.mark.slow  # as its SQLite twin: two processes (~10 CPU-s) started 4 s ahead
def test_two_processes_create_the_postgresql_stores_at_the_same_instant(
    pg_stores: tuple[str, str], tmp_path: Path
) -> None:
    """Without the advisory lock MLflow's and Optuna's table creation collide on PostgreSQL
    (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`)."""
    optuna_uri, mlflow_uri = pg_stores
    outputs = create_at_once(mlflow_uri, optuna_uri, tmp_path)
    assert [o.strip().splitlines()[-1:] for o in outputs] == [["ready"], ["ready"]], outputs


def test_a_postgresql_study_is_held_by_one_session_at_a_time(
    pg_stores: tuple[str, str],
) -> None:
    storage = pg_stores[0]
    held = hold_study(storage, "shared")
    with pytest.raises(UserError, match="study 'shared' is being run by another process"):
        hold_study(storage, "shared")
    held.release()  # the session ends: the server releases the lock
    hold_study(storage, "shared").release()


@pytest.mark.slow
def test_a_complete_registered_study_registers_once_until_asked_for_more_trials(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("tuning.study_name=once", f"registry.model_name={MODEL}")  # 2 trials
    first = run_training(app)

    again = run_training(app)

    assert registered_versions() == ["1"]
    assert (again.model_version, again.run_id, again.n_trials) == ("1", first.run_id, 2)
    assert again.metrics["test_precision"] == pytest.approx(first.metrics["test_precision"])
    assert again.threshold.threshold == pytest.approx(first.threshold.threshold)
    more = run_training(
        compose_app("tuning.study_name=once", "tuning.n_trials=3", f"registry.model_name={MODEL}")
    )
    assert (more.model_version, more.n_trials) == ("2", 3)
    assert registered_versions() == ["1", "2"]


def test_a_process_that_loses_the_race_to_tag_the_experiment_starts_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers on one MLflow server both find the experiment untagged; the second insert
    # violates PostgreSQL's unique key (CI, 2026-12-06). Here the other writer's tag lands and
    # ours is refused, as it was there.
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = mlflow.set_experiment("race").experiment_id
    real_set = MlflowClient.set_experiment_tag

    def lose_the_race(self: MlflowClient, exp: str, key: str, value: str) -> None:
        real_set(self, exp, key, value)  # the other process
        raise mlflow.exceptions.MlflowException("duplicate key value violates unique constraint")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", lose_the_race)
    experiment.mark_experiment(experiment_id)
    assert experiment.KIND_TAG in mlflow.get_experiment(experiment_id).tags

    def fail(self: MlflowClient, exp: str, key: str, value: str) -> None:
        raise mlflow.exceptions.MlflowException("the store refused the tag")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", fail)
    fresh = mlflow.set_experiment("untagged").experiment_id
    with pytest.raises(mlflow.exceptions.MlflowException, match="refused the tag"):
        experiment.mark_experiment(fresh)  # a tag still missing is an error
