"""MLflow runs a dead process left RUNNING: every run this process starts records its host and
process id as tags (`claim_new_runs`), and the next process to open the tracking store ends a
SIGKILLed process's runs KILLED (`end_orphan_runs`). A stop signal the process could catch
(SIGTERM, Ctrl-C) ends its own runs KILLED before it goes (`runtime.clean_up_on_stop`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable

import mlflow
from mlflow.entities import RunStatus
from mlflow.environment_variables import MLFLOW_RUN_CONTEXT

from ashare_autotune.runtime import on_stop, owner, owner_gone

log = logging.getLogger(__name__)

HOST_TAG = "ashare_autotune.host"
PID_TAG = "ashare_autotune.pid"
KILLED = RunStatus.to_string(RunStatus.KILLED)


def owner_tags() -> dict[str, str]:
    """This process's host and process id, as run tags."""
    host, pid = owner()
    return {HOST_TAG: host, PID_TAG: str(pid)}


def open_store() -> None:
    """On opening the tracking store: `claim_new_runs`, then `end_orphan_runs`."""
    claim_new_runs()
    end_orphan_runs()


def claim_new_runs() -> None:
    """Tag every run this process creates from now on (`mlflow.start_run`: parent, trial,
    evaluation and backtest runs alike) with `owner_tags`, through MLflow's run-context
    variable `MLFLOW_RUN_CONTEXT` (other tags it holds are kept; a child process started from
    here claims its own runs when it opens the store)."""
    held = os.environ.get(MLFLOW_RUN_CONTEXT.name)
    try:
        tags = json.loads(held) if held else {}
    except json.JSONDecodeError:
        tags = {}
    tags = tags if isinstance(tags, dict) else {}
    os.environ[MLFLOW_RUN_CONTEXT.name] = json.dumps(tags | owner_tags())


def own(run_id: str) -> Callable[[], None]:
    """Tag a run this process continues (a resumed parent run) as its own, and end it KILLED
    (FAILED is for errors) if a stop signal comes before the returned function is called."""
    client = mlflow.MlflowClient()
    for key, value in owner_tags().items():
        client.set_tag(run_id, key, value)
    return on_stop(lambda: client.set_terminated(run_id, KILLED))


def end_orphan_runs() -> list[str]:
    """End KILLED every RUNNING run of the tracking store whose process is dead (it ran on this
    host and no process has its id: `runtime.owner_gone`).

    Returns:
        the ids of the runs ended (each is logged).
    """
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    host = owner()[0]
    query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    ended = []
    for run in client.search_runs(experiments, query, max_results=1000) if experiments else []:
        pid = run.data.tags.get(PID_TAG)
        if owner_gone(run.data.tags.get(HOST_TAG), pid):
            client.set_terminated(run.info.run_id, KILLED)
            log.warning(
                "MLflow run %s (%s) was left RUNNING by process %s, which is no longer running: "
                "marked KILLED",
                run.info.run_id,
                run.info.run_name,
                pid,
            )
            ended.append(run.info.run_id)
    return ended
