"""Process-level behaviour of the entry points (runtime.py): the garbage collector kept off the
imported modules, feature stores that do not outlive their process, Ctrl-C and SIGTERM that end
in one line and a KILLED run."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from subprocess import PIPE
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow import MlflowClient

from ashare_autotune.errors import INTERRUPTED
from ashare_autotune.jobs.pipeline import SCRATCH_PREFIX
from ashare_autotune.runtime import (
    clean_up_on_stop,
    owner_pid,
    remove_orphans,
    scratch_dir,
    settle_imports,
)
from ashare_autotune.tracking.runs import log_artifacts
from tests.conftest import ROOT, cli_env, train_command
from tests.test_resume import trial_states


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


def _start_and_signal(tmp_path: Path, tracking_uri: str, sig: int) -> tuple[int, str, Path]:
    """Start a long debug training, send `sig` once a trial has finished (the parent run is
    open, the next trial trains); returns (exit status, stderr, the job's TMPDIR)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = cli_env(tracking_uri) | {"TMPDIR": str(scratch)}
    cmd = train_command(tmp_path, "tuning.n_trials=500", "tuning.study_name=stopped")
    job = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=PIPE)
    deadline = time.monotonic() + 120
    while not any(s == "COMPLETE" for s, _ in trial_states(tmp_path / "optuna.db").values()):
        assert job.poll() is None, job.communicate()[1]
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.1)
    job.send_signal(sig)
    _, stderr = job.communicate(timeout=120)
    return job.returncode, stderr.decode(), scratch


def _parent_status(tracking_uri: str) -> list[str]:
    runs = MlflowClient(tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri).search_experiments()]
    )
    return [r.info.status for r in runs if "mlflow.parentRunId" not in r.data.tags]


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_the_parent_run_ends_killed(
    tmp_path: Path, tracking_uri: str
) -> None:
    status, stderr, scratch = _start_and_signal(tmp_path, tracking_uri, signal.SIGINT)
    assert status == 130
    assert "Traceback" not in stderr, stderr[-3000:]
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        f"error: {INTERRUPTED}"
    ]
    assert _parent_status(tracking_uri) == ["KILLED"]
    assert not list(scratch.iterdir()), "no feature store left in $TMPDIR"


@pytest.mark.slow
def test_sigterm_marks_the_parent_run_killed_not_left_running(
    tmp_path: Path, tracking_uri: str
) -> None:
    status, _, scratch = _start_and_signal(tmp_path, tracking_uri, signal.SIGTERM)
    assert status == -signal.SIGTERM  # it still dies of the signal
    assert _parent_status(tracking_uri) == ["KILLED"]
    assert not list(scratch.iterdir())


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
