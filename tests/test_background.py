"""scripts/run_background.sh: one guarded background run with a PID file and a log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env

SCRIPT = ROOT / "scripts" / "run_background.sh"
# Long enough to still be alive while the test checks the guard (it is stopped well before).
LONG_RUN = ("debug=default", "tuning.n_trials=500", "tuning.pruner=none")


def run_script(run_dir: Path, tracking_uri: str, *args: str) -> subprocess.CompletedProcess:
    env = cli_env(tracking_uri) | {
        "ASHARE_RUN_DIR": str(run_dir),
        "PYTHON": sys.executable,
        "ASHARE_STOP_TIMEOUT": "20",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init in a container) counts as gone.
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def wait_gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    return not alive(pid)


@pytest.fixture
def run_dir(tmp_path: Path, tracking_uri: str) -> Iterator[Path]:
    yield tmp_path
    run_script(tmp_path, tracking_uri, "--stop")  # never leave a run behind


def test_start_refuse_second_and_stop(run_dir: Path, tracking_uri: str) -> None:
    pid_file, log = run_dir / "logs" / "train.pid", run_dir / "logs" / "train.log"

    started = run_script(run_dir, tracking_uri, *LONG_RUN)
    assert started.returncode == 0, started.stderr
    pid = int(pid_file.read_text())
    assert alive(pid)
    assert "start: python -m ashare_autotune.train debug=default" in log.read_text()

    second = run_script(run_dir, tracking_uri, *LONG_RUN)
    assert second.returncode == 1
    assert f"already alive (PID {pid}" in second.stderr
    assert int(pid_file.read_text()) == pid
    assert f"running: PID {pid}" in run_script(run_dir, tracking_uri, "--status").stdout

    stopped = run_script(run_dir, tracking_uri, "--stop")
    assert stopped.returncode == 0 and f"stopped training run PID {pid}" in stopped.stdout
    assert wait_gone(pid) and not pid_file.exists()
    assert "not running" in run_script(run_dir, tracking_uri, "--status").stdout


def test_stale_pid_file_is_removed_and_a_new_run_starts(run_dir: Path, tracking_uri: str) -> None:
    (run_dir / "logs").mkdir()
    pid_file = run_dir / "logs" / "train.pid"
    # The PID of a live process that is not a training run (as after a reboot reuses PIDs).
    other = subprocess.Popen(["sleep", "60"])
    pid_file.write_text(f"{other.pid}\n")
    try:
        started = run_script(run_dir, tracking_uri, *LONG_RUN)
    finally:
        other.kill()
        other.wait()
    assert started.returncode == 0, started.stderr
    assert f"removing stale PID file {pid_file} ({other.pid})" in started.stdout
    new_pid = int(pid_file.read_text())
    assert new_pid != other.pid and alive(new_pid)


def test_stop_without_a_run_says_so(run_dir: Path, tracking_uri: str) -> None:
    done = run_script(run_dir, tracking_uri, "--stop")
    assert done.returncode == 0 and "no training run is alive" in done.stdout
