"""`make ui` (`python -m ashare_autotune.ui`) lands the reader on this project's runs: it prints
the address of the experiment's headline view (MLflow 3's machine-learning pages, not its GenAI
ones) and serves `mlflow ui` on the same store and port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from ashare_autotune.tracking import experiment
from ashare_autotune.ui import mlflow_ui_command, where_to_look
from tests.conftest import ROOT, cli_env
from tests.test_serving import _free_port, _stop, _wait_until_up


def test_it_points_at_the_experiments_headline_view(tracking_uri: str) -> None:
    experiment_id = mlflow.create_experiment("ashare-autotune")
    line = where_to_look(tracking_uri, "ashare-autotune", 5123)
    assert line.startswith(f"open {experiment.view_url(experiment_id, 5123)} ")
    assert "workflowType=machine_learning" in line


def test_without_runs_it_says_to_train_first_and_creates_no_store(
    tracking_uri: str, tmp_path: Path
) -> None:
    assert "run `make train` first" in where_to_look(tracking_uri, "not-there", 5000)
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert "run `make train` first" in where_to_look(missing, "ashare-autotune", 5000)
    assert not (tmp_path / "none.db").exists()


def test_it_serves_this_interpreters_mlflow_ui_on_the_store_and_port() -> None:
    assert mlflow_ui_command("sqlite:///x.db", 5001) == [
        sys.executable,
        *("-m", "mlflow", "ui", "--backend-store-uri", "sqlite:///x.db", "--port", "5001"),
    ]


def test_make_ui_runs_the_launcher() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nui:")[1].split("\n\n")[0]
    assert "-m ashare_autotune.ui" in recipe


@pytest.mark.slow
def test_the_launcher_prints_the_address_then_serves_it(tracking_uri: str, tmp_path: Path) -> None:
    experiment_id = mlflow.create_experiment("ashare-autotune")
    port, log = _free_port(), tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ashare_autotune.ui", "--port", str(port)]
            + ["--backend-store-uri", tracking_uri],
            env=cli_env(tracking_uri),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_up(proc, f"http://127.0.0.1:{port}", log, path="/health")
        finally:
            _stop(proc)
    first = log.read_text().splitlines()[0]
    assert first.startswith(f"open {experiment.view_url(experiment_id, port)} ")
