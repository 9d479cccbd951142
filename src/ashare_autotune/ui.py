"""`python -m ashare_autotune.ui` (`make ui`): the MLflow UI on the local store, opened on this
project's runs.

MLflow 3's UI starts on its GenAI pages (a per-browser choice, initially GenAI; the server has no
setting for it), so plain `mlflow ui` shows traces and an assistant rather than the training
runs. This prints the address of the experiment's headline view first
(`tracking.experiment.view_url`: the machine-learning pages, a column per headline metric),
then runs `mlflow ui` on the same store and port.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import mlflow

from ashare_autotune.config.schema import MlflowConfig
from ashare_autotune.tracking.experiment import UI_PORT, view_url
from ashare_autotune.tracking.summary import DEFAULT_UI_STORE


def where_to_look(tracking_uri: str, experiment_name: str, port: int) -> str:
    """The line to print before the server starts: the experiment's headline view, or what to
    run first when the store holds no such experiment (a missing SQLite file is not created)."""
    sqlite_file = tracking_uri.removeprefix("sqlite:///")
    if tracking_uri.startswith("sqlite:///") and not Path(sqlite_file).exists():
        return f"no runs yet in {tracking_uri}: run `make train` first, then open this again"
    experiment = mlflow.MlflowClient(tracking_uri).get_experiment_by_name(experiment_name)
    if experiment is None:
        return f"no experiment {experiment_name!r} in {tracking_uri}: run `make train` first"
    return f"open {view_url(experiment.experiment_id, port)}  (the runs of {experiment_name!r})"


def mlflow_ui_command(tracking_uri: str, port: int) -> list[str]:
    """`mlflow ui` of this interpreter's MLflow on the store and port."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--port",
        str(port),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print where to look, then replace this process with `mlflow ui` (Ctrl-C stops it)."""
    parser = argparse.ArgumentParser(prog="python -m ashare_autotune.ui", description=__doc__)
    parser.add_argument("--backend-store-uri", default=DEFAULT_UI_STORE)
    parser.add_argument("--experiment", default=MlflowConfig().experiment_name)
    parser.add_argument("--port", type=int, default=UI_PORT)
    args = parser.parse_args(argv)
    print(where_to_look(args.backend_store_uri, args.experiment, args.port), flush=True)
    command = mlflow_ui_command(args.backend_store_uri, args.port)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
