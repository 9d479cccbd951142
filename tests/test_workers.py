"""Parallel workers on a real PostgreSQL server: two worker processes share one Optuna study
(RDB storage in PostgreSQL) and log to an MLflow tracking server backed by PostgreSQL; every
trial they were asked for finishes and is logged exactly once, under one parent run; the final
step registers the best trial's model.

Needs a PostgreSQL server on loopback with a role that may create databases (`.ci/postgres.sh`
sets one up; `ASHARE_TEST_POSTGRES` points elsewhere). Skipped when none answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from ashare_autotune.jobs.pipeline import PARENT_RUN_ATTR
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tuning.study import FINISHED_STATES
from tests.conftest import cli_env, train_command
from tests.test_resume import trial_runs

ADMIN_URI = os.environ.get(
    "ASHARE_TEST_POSTGRES", "postgresql://ashare:ashare@127.0.0.1:5432/postgres"
)
WORKER_TRIALS = (3, 2)
MODEL = "workers-model"


def _admin() -> object:
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(ADMIN_URI, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        pytest.skip(f"no PostgreSQL server at {ADMIN_URI} ({first}); run .ci/postgres.sh as root")


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases (Optuna's, MLflow's), dropped afterwards; yields their URIs."""
    con = _admin()
    names = [f"ashare_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("optuna", "mlflow")]
    with con.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    base = ADMIN_URI.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with con.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(pg_databases: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port, its store in PostgreSQL; yields its URL."""
    port = _free_port()
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        pg_databases[1],
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=cli_env(""))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, tmp_path / "server.log")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")


@pytest.mark.slow
def test_two_workers_share_one_study_then_finalize_registers_the_best(
    pg_databases: tuple[str, str], mlflow_server: str, tmp_path: Path
) -> None:
    storage = pg_databases[0]
    common = (
        f"tuning.storage={storage}",
        "tuning.study_name=shared",
        f"registry.model_name={MODEL}",
    )
    env = cli_env(mlflow_server)
    workers = [
        subprocess.Popen(
            train_command(
                tmp_path / f"w{i}", "tuning.mode=worker", f"tuning.n_trials={n}", *common
            ),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, n in enumerate(WORKER_TRIALS)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert MlflowClient(mlflow_server).search_registered_models() == []  # workers register nothing

    study = optuna.load_study(study_name="shared", storage=storage)
    finished = sorted(t.number for t in study.trials if t.state in FINISHED_STATES)
    assert len(finished) == sum(WORKER_TRIALS)
    parent = study.user_attrs[PARENT_RUN_ATTR]
    tracking.set_tracking_uri(mlflow_server)
    client = MlflowClient(mlflow_server)
    experiment = client.get_run(parent).info.experiment_id
    assert trial_runs(parent, experiment) == finished  # none lost, none logged twice
    runs = client.search_runs([experiment])
    assert [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags] == [parent]

    final = subprocess.run(
        train_command(tmp_path / "final", "tuning.mode=finalize", *common),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert trial_runs(parent, experiment) == finished  # finalize ran no trial
    version = client.search_model_versions(f"name='{MODEL}'")
    assert len(version) == 1 and version[0].run_id == parent
    _, meta = tracking.load_pick_model(f"models:/{MODEL}/{version[0].version}")
    assert meta["params"] == study.best_params
