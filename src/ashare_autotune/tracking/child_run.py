"""A run nested under a parent run (a rolling window's), logged through `tracking.runs`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.entities import Run


@contextmanager
def child_run(parent: Run, name: str) -> Iterator[Run]:
    """A new run nested under `parent` (active inside the block; the parent again after)."""
    with mlflow.start_run(
        run_name=name,
        nested=True,
        experiment_id=parent.info.experiment_id,
        tags={"mlflow.parentRunId": parent.info.run_id},
    ) as run:
        yield run
