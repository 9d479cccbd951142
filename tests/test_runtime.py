"""Process-level behaviour of the entry points (runtime.py): the garbage collector kept off the
imported modules, feature stores that do not outlive their process, Ctrl-C and SIGTERM that end
in one line with the parent run KILLED and the trial they cut failed and queued again, and a
SIGKILLed process's runs and trials ended by the next process that opens the stores."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import INTERRUPTED
from ashare_autotune.jobs.pipeline import SCRATCH_PREFIX
from ashare_autotune.runtime import (
    clean_up_on_stop,
    owner,
    owner_gone,
    owner_pid,
    remove_orphans,
    scratch_dir,
    settle_imports,
)
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.run_owners import HOST_TAG, PID_TAG
from ashare_autotune.tracking.runs import log_artifacts
from ashare_autotune.tuning.study import open_or_create_study
from ashare_autotune.tuning.trial_owners import OWNER_ATTR
from tests.conftest import ROOT, cli_env, train_command
from tests.test_resume import SLOWER_TRIALS, kill_mid_trial, trial_states


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.me = self


def test_settling_freezes_what_is_alive_and_still_collects_what_comes_later() -> None:
    alive_before = Node()
    try:
        settle_imports()
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive_before for obj in gc.get_objects()), "out of the GC's sight"
        later = Node()
        watch = weakref.ref(later)
        del later
        gc.collect()
        assert watch() is None, "a cycle made after settling is still collected"
    finally:
        gc.unfreeze()
        atexit.unregister(gc.freeze)


def test_the_command_line_wrapper_settles_the_imports_before_running_the_app() -> None:
    code = (
        "import gc\n"
        "from ashare_autotune.errors import run_cli\n"
        "run_cli(lambda: print(gc.get_freeze_count()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) > 0  # 0 while nothing is frozen


def test_the_job_imports_are_settled_once_a_process_not_again_in_a_sweeps_later_jobs() -> None:
    code = (
        "import gc\n"
        "from ashare_autotune.runtime import settle_job_imports\n"
        "settle_job_imports()\n"
        "first = gc.get_freeze_count()\n"
        "later_job = [[] for _ in range(1000)]\n"
        "settle_job_imports()\n"
        "print(first, gc.get_freeze_count())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    first, after_second = map(int, out.stdout.split())
    assert first > 0 and after_second == first


def test_a_dead_processs_feature_store_is_removed_and_a_live_ones_left(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now names no process (reused only after the kernel wraps around)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stores = {
            who: tmp_path / f"{SCRATCH_PREFIX}{pid}-abc"
            for who, pid in (("dead", dead.pid), ("live", live.pid), ("self", os.getpid()))
        }
        stores["legacy"] = tmp_path / f"{SCRATCH_PREFIX}k9duym6q"  # no pid: not judged
        for path in stores.values():
            (path / "features").mkdir(parents=True)
            (path / "features" / "train.f32").write_bytes(b"\0" * 64)
        assert remove_orphans(SCRATCH_PREFIX, str(tmp_path)) == [stores["dead"]]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            stores[w].name for w in ("live", "self", "legacy")
        )
    finally:
        live.kill()
        live.wait()


def test_a_scratch_dir_names_its_owner_and_goes_with_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_dir(SCRATCH_PREFIX) as path:
        assert owner_pid(path.name, SCRATCH_PREFIX) == os.getpid()
    assert not path.exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_signal(tmp_path: Path, tracking_uri: str, sig: int) -> tuple[int, str, Path, int]:
    """Start a long debug training, send `sig` while a trial trains after one has finished
    (the parent run is open); returns (exit status, stderr, the job's TMPDIR, the cut trial)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = cli_env(tracking_uri) | {"TMPDIR": str(scratch)}
    overrides = ("tuning.n_trials=500", "tuning.study_name=stopped", *SLOWER_TRIALS)
    cmd = train_command(tmp_path, *overrides)
    with open(tmp_path / "stderr.log", "w") as err:
        # Ctrl-C as from a terminal: a job started in the background of a non-interactive
        # shell (CI's `make test &`) inherits SIGINT ignored, and the app keeps an ignored SIGINT
        job = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_default_sigint,
        )
        cut = kill_mid_trial(job, tmp_path / "optuna.db", min_finished=1, sig=sig)
    return job.returncode, (tmp_path / "stderr.log").read_text(), scratch, cut


def _run_states(tracking_uri: str) -> dict[str, list[str]]:
    """ "parent" and "trial" -> the statuses of those runs in every experiment of the store."""
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    states: dict[str, list[str]] = {"parent": [], "trial": []}
    for run in runs:
        states["trial" if "mlflow.parentRunId" in run.data.tags else "parent"].append(
            run.info.status
        )
    return states


def _assert_cut_trial_failed_and_queued(db: Path, cut: int) -> None:
    """Nothing RUNNING in the study: the cut trial FAIL, its parameters queued again."""
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{db}")
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert study.trials[cut].state == optuna.trial.TrialState.FAIL
    queued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["failed_trial"] for t in queued] == [cut]
    assert queued[0].params == study.trials[cut].params


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_leaves_nothing_running(
    tmp_path: Path, tracking_uri: str
) -> None:
    status, stderr, scratch, cut = _start_and_signal(tmp_path, tracking_uri, signal.SIGINT)
    assert status == 130
    assert "Traceback" not in stderr, stderr[-3000:]
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        f"error: {INTERRUPTED}"
    ]
    states = _run_states(tracking_uri)
    assert states["parent"] == ["KILLED"] and set(states["trial"]) == {"FINISHED"}
    _assert_cut_trial_failed_and_queued(tmp_path / "optuna.db", cut)
    assert not list(scratch.iterdir()), "no feature store left in $TMPDIR"


@pytest.mark.slow
def test_sigterm_marks_the_parent_run_killed_and_fails_the_trial_it_cut(
    tmp_path: Path, tracking_uri: str
) -> None:
    status, _, scratch, cut = _start_and_signal(tmp_path, tracking_uri, signal.SIGTERM)
    assert status == -signal.SIGTERM  # it still dies of the signal
    states = _run_states(tracking_uri)
    assert states["parent"] == ["KILLED"] and set(states["trial"]) == {"FINISHED"}
    _assert_cut_trial_failed_and_queued(tmp_path / "optuna.db", cut)
    assert not list(scratch.iterdir())


@pytest.mark.slow
def test_after_sigkill_the_next_start_ends_the_dead_runs_and_trials(
    tmp_path: Path, tracking_uri: str, compose_app: Callable[..., AppConfig]
) -> None:
    """A SIGKILLed process cleans nothing up: the next process to open the stores marks its
    parent run KILLED and fails (and re-queues) its trial at once, whatever it runs."""
    status, _, _, cut = _start_and_signal(tmp_path, tracking_uri, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert _run_states(tracking_uri)["parent"] == ["RUNNING"]  # what the dead process left
    assert trial_states(tmp_path / "optuna.db")[cut][0] == "RUNNING"

    tracking.setup(tracking_uri, "another-experiment")  # any command's start
    states = _run_states(tracking_uri)
    assert states["parent"] == ["KILLED"] and set(states["trial"]) == {"FINISHED"}
    open_or_create_study(compose_app().tuning, "stopped", f"sqlite:///{tmp_path / 'optuna.db'}")
    _assert_cut_trial_failed_and_queued(tmp_path / "optuna.db", cut)


def test_only_a_dead_process_on_this_host_is_judged_gone() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    assert owner_gone(here, dead.pid) and owner_gone(here, str(dead.pid))
    assert not owner_gone(here, os.getpid())  # alive: this process
    assert not owner_gone("another-host", dead.pid)  # its processes cannot be seen from here
    assert not owner_gone(here, None) and not owner_gone(None, dead.pid)  # nothing recorded


def test_runs_record_their_process_and_a_dead_ones_running_runs_end_killed(
    tracking_uri: str,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client = MlflowClient()
    host = socket.gethostname()
    owners = {"dead": (host, dead.pid), "alive": (host, os.getpid()), "far": ("far", dead.pid)}
    runs = {
        who: client.create_run("0", tags={HOST_TAG: h, PID_TAG: str(pid)}).info.run_id
        for who, (h, pid) in owners.items()
    }
    tracking.setup(tracking_uri, "Default")
    assert {w: client.get_run(r).info.status for w, r in runs.items()} == {
        "dead": "KILLED",
        "alive": "RUNNING",
        "far": "RUNNING",
    }
    with mlflow.start_run(experiment_id="0") as run:  # a run of this process names it
        tags = client.get_run(run.info.run_id).data.tags
    assert (tags[HOST_TAG], tags[PID_TAG]) == (host, str(os.getpid()))
    for run_id in runs.values():
        client.set_terminated(run_id)


def test_a_dead_processs_running_trial_is_failed_and_queued_when_the_study_opens(
    tmp_path: Path, compose_app: Callable[..., AppConfig]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tuning = compose_app().tuning
    study, _ = open_or_create_study(tuning, "orphans", storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owners = {"dead": [socket.gethostname(), dead.pid], "alive": list(owner()), "none": None}
    numbers = {}
    for who, process in owners.items():
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        if process is not None:
            study._storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, process)
        numbers[who] = trial.number

    reopened, _ = open_or_create_study(tuning, "orphans", storage)
    states = {w: reopened.trials[n].state.name for w, n in numbers.items()}
    assert states == {"dead": "FAIL", "alive": "RUNNING", "none": "RUNNING"}
    [queued] = reopened.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.params == reopened.trials[numbers["dead"]].params
    assert OWNER_ATTR not in queued.system_attrs  # the retry is not the dead process's


def _artifact_files(run_id: str) -> dict[str, int]:
    """Every file of the run's artifacts (hidden ones too) -> its size in bytes."""
    root = Path(urlparse(mlflow.get_run(run_id).info.artifact_uri).path)
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_a_copy_stopped_midway_leaves_no_partial_plot_folder(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (plots / name).write_bytes(b"\x89PNG" + b"x" * 96)
    copy = shutil.copyfile
    copied: list[str] = []

    def stopped_on_the_second_file(src: str, dst: str, **kwargs: object) -> object:
        if copied:  # the second file is created empty, then the job is stopped
            Path(dst).touch()
            raise KeyboardInterrupt
        copied.append(src)
        return copy(src, dst, **kwargs)

    with mlflow.start_run(experiment_id="0") as run:
        monkeypatch.setattr(shutil, "copyfile", stopped_on_the_second_file)
        with pytest.raises(KeyboardInterrupt):
            log_artifacts(plots, "plots")
        monkeypatch.setattr(shutil, "copyfile", copy)
        assert not any(name.startswith("plots/") for name in _artifact_files(run.info.run_id)), (
            "no plots/ folder: it appears whole or not at all"
        )
        log_artifacts(plots, "plots")  # the next attempt, after one that was stopped
    # every file whole, and nothing of the stopped copy left
    assert _artifact_files(run.info.run_id) == {f"plots/{n}.png": 100 for n in "abc"}


def test_a_stop_ends_every_open_run_killed_and_removes_the_scratch_dirs(
    tracking_uri: str,
) -> None:
    with scratch_dir(SCRATCH_PREFIX) as scratch, mlflow.start_run(experiment_id="0") as outer:
        inner = mlflow.start_run(experiment_id="0", nested=True)
        clean_up_on_stop()
        assert not scratch.exists()
        assert mlflow.active_run() is None
    for run in (outer, inner):
        assert mlflow.get_run(run.info.run_id).info.status == "KILLED"
