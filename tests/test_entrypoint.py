"""The command line: `python -m ashare_autotune.train` and `mlflow run .` end to end, and bad
configuration failing fast with a message that names the key (no traceback)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.jobs import pipeline
from tests.conftest import ROOT, cli_env, run_entry_point, train_command


def _train_cli(tmp_path: Path, tracking_uri: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(tmp_path, *overrides),
        cwd=tmp_path,
        env=cli_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("split.train=0.7", "split"),
        ("threshold.target_precision=1.5", "threshold.target_precision"),
        ("tuning.n_trials=0", "tuning.n_trials"),
        ("tuning.eval_every=0", "tuning.eval_every"),
        ("tuning.trial_rows=10", "tuning.trial_rows"),
        ("label.min_days=6", "label.min_days"),
        ("label.entry=bogus", "label.entry"),
        ("tuning.mode=both", "tuning.mode"),
        ("tuning.grace_period=10", "tuning.grace_period"),  # not above heartbeat_interval=20
        ("tuning.max_retry=-1", "tuning.max_retry"),
    ],
)
def test_bad_config_values_name_the_key(
    compose_app: Callable[..., AppConfig], override: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        compose_app(override)


@pytest.mark.parametrize(
    ("module", "override", "line"),
    [
        (
            "train",
            "threshold.target_precision=1.5",
            "error: config key 'threshold.target_precision'=1.5: must be in (0, 1)",
        ),
        (
            "backtest",
            "backtest.top_k=0",
            "error: config key 'backtest.top_k'=0: must be >= 1",
        ),
    ],
)
def test_a_bad_config_value_is_exactly_one_line_on_the_terminal_and_kept_in_the_log(
    module: str, override: str, line: str, tmp_path: Path, tracking_uri: str
) -> None:
    done = run_entry_point(module, tmp_path, tracking_uri, override)
    assert done.returncode == 2
    key = override.split("=")[0]
    terminal = (done.stdout + done.stderr).splitlines()
    assert [text for text in terminal if key in text] == [line]
    assert done.stderr.strip().splitlines() == [line]
    # the run's own log file still records the mistake
    assert line.removeprefix("error: ") in (tmp_path / "hydra" / f"{module}.log").read_text()


# what a command loads for its job (~3 CPU-s), not needed to check its configuration
JOB_LIBRARIES = (
    "mlflow",
    "xgboost",
    "lightgbm",
    "optuna",
    "sklearn",
    "scipy",
    "matplotlib",
    "pandas",
)
_REPORT_LOADED = (
    "import atexit, runpy, sys\n"
    f"atexit.register(lambda: print([m for m in {JOB_LIBRARIES!r} "
    "if m in sys.modules], file=sys.stderr))\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.parametrize(
    ("module", "override"),
    [
        ("train", "threshold.target_precision=1.5"),
        ("predict", "data.adjust=raw"),
        ("evaluate", "data.adjust=raw"),
        ("backtest", "backtest.top_k=0"),
        ("rolling", "rolling.fit_rows=0"),
    ],
)
def test_a_bad_config_value_stops_a_command_before_it_loads_its_job(
    module: str, override: str, tmp_path: Path, tracking_uri: str
) -> None:
    """~0.5 CPU-s instead of ~3 (tests/README.md, Measuring)."""
    cmd = [sys.executable, "-c", _REPORT_LOADED, f"ashare_autotune.{module}", override]
    done = subprocess.run(
        [*cmd, f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path,
        env=cli_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=120,
    )
    error, loaded = done.stderr.strip().splitlines()
    key = override.split("=")[0]
    assert done.returncode == 2 and error.startswith(f"error: config key '{key}'")
    assert loaded == "[]", f"{module} loaded {loaded} before it checked its configuration"


def test_cli_rejects_an_unknown_key(tmp_path: Path, tracking_uri: str) -> None:
    done = _train_cli(tmp_path, tracking_uri, "tuning.n_trails=3")
    assert done.returncode != 0
    assert "n_trails" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_mlflow_run_uses_the_project_run_as_the_only_parent(
    tmp_path: Path, tracking_uri: str
) -> None:
    overrides = f"debug=default tuning.n_trials=3 hydra.run.dir={tmp_path / 'hydra'}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(ROOT),
        "--env-manager",
        "local",
        "--experiment-name",
        "ashare-autotune",
        "-P",
        f"overrides={overrides}",
    ]
    done = subprocess.run(
        cmd, cwd=tmp_path, env=cli_env(tracking_uri), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    exp = mlflow.get_experiment_by_name("ashare-autotune")
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1
    assert parents.iloc[0]["tags.mlflow.project.entryPoint"] == "main"
    trials = runs[runs["tags.mlflow.parentRunId"] == parents.iloc[0]["run_id"]]
    assert len(trials) == 3
    assert parents.iloc[0]["params.tuning.n_trials"] == "3"
    versions = mlflow.MlflowClient().search_model_versions("name='ashare-autotune-debug'")
    assert len(versions) == 1 and versions[0].run_id == parents.iloc[0]["run_id"]


@pytest.mark.slow
def test_mlflow_run_without_an_experiment_lands_in_the_projects_and_never_succeeds_empty(
    tmp_path: Path, tracking_uri: str
) -> None:
    overrides = f"debug=default tuning.n_trials=2 hydra.run.dir={tmp_path / 'hydra'}"
    cmd = [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local"]
    cmd += ["-P", f"overrides={overrides}"]  # no --experiment-name: MLflow's Default experiment

    def mlflow_run() -> None:
        done = subprocess.run(
            cmd,
            cwd=tmp_path,
            env=cli_env(tracking_uri),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def parents() -> pd.DataFrame:
        exp = mlflow.get_experiment_by_name("ashare-autotune")
        runs = mlflow.search_runs(experiment_ids=[exp.experiment_id])
        return runs[runs["tags.mlflow.parentRunId"].isna()]

    mlflow_run()
    job = parents()
    assert len(job) == 1 and job.iloc[0]["tags.mlflow.runName"].startswith("touch/full xgboost")
    project = mlflow.search_runs(experiment_ids=["0"])  # the run `mlflow run` made
    assert len(project) == 1
    assert project.iloc[0]["tags.job_run_id"] == job.iloc[0]["run_id"]
    name = f"{job.iloc[0]['tags.mlflow.runName']} (in ashare-autotune)"
    assert project.iloc[0]["tags.mlflow.runName"] == name

    mlflow_run()  # the same command: the study is complete and registered
    assert list(parents()["run_id"]) == list(job["run_id"])  # no new parent run
    latest = mlflow.search_runs(experiment_ids=["0"], order_by=["attributes.start_time DESC"])
    assert len(latest) == 2
    empty = latest.iloc[0]
    assert empty["tags.outcome"] == "nothing to run"
    assert empty["tags.job_run_id"] == job.iloc[0]["run_id"]
    assert "nothing to run or register" in empty["tags.mlflow.note.content"]


def test_a_job_stopped_by_sigterm_removes_its_feature_store(
    tmp_path: Path, tracking_uri: str
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = cli_env(tracking_uri) | {"TMPDIR": str(scratch)}
    job = subprocess.Popen(
        train_command(tmp_path, "tuning.n_trials=50"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(scratch.glob(pipeline.SCRATCH_PREFIX + "*")):
        assert job.poll() is None, job.stderr.read() if job.stderr else ""
        assert time.monotonic() < deadline, "the job never made its feature store"
        time.sleep(0.2)
    time.sleep(1.0)  # into the job (features, study), not at its first line
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == -signal.SIGTERM  # it still dies of the signal
    assert not list(scratch.glob(pipeline.SCRATCH_PREFIX + "*"))
