"""Everything that talks to MLflow tracking: runs, params, metrics, artifacts, the model."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag, Run
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

import ashare_autotune
import ashare_autotune.sqlite_wal
from ashare_autotune import store_locks
from ashare_autotune.errors import UserError
from ashare_autotune.models.base import FittedModel, fitted_entry
from ashare_autotune.tracking import run_owners
from ashare_autotune.tracking.artifact_files import log_artifacts_whole
from ashare_autotune.tracking.experiment import mark_experiment
from ashare_autotune.tracking.project_run import adopts, job_experiment, point_to, project_run_id
from ashare_autotune.tracking.pyfunc_model import META_ARTIFACT, MODEL_ARTIFACT, model_signature

log = logging.getLogger(__name__)

SCHEMA_SAMPLE_ROWS = 10_000
SCHEMA_TYPE_ROWS = 100  # rows a dtype's column type is read from
PACKAGE_DIR = Path(ashare_autotune.__file__).parent


def setup(tracking_uri: str, experiment_name: str, sqlite_wal: bool = True) -> str:
    """Point MLflow at the tracking store and experiment; returns the experiment id.

    Under `mlflow run` the run MLflow Projects created decides the experiment, unless it is in
    MLflow's Default one (`project_run.job_experiment`). The experiment is marked as model
    training with a headline view (`experiment.mark_experiment`). With `sqlite_wal`, a SQLite
    store is used in write-ahead-log mode (`ashare_autotune.sqlite_wal`).
    """
    ashare_autotune.sqlite_wal.check_writable(tracking_uri, "mlflow.tracking_uri")
    if sqlite_wal:
        ashare_autotune.sqlite_wal.enable(tracking_uri)
    set_tracking_uri(tracking_uri)
    project_run = project_run_id()
    try:
        # The first use creates (or migrates) the store: one process at a time does it.
        with store_locks.creating(tracking_uri):
            if project_run:
                experiment_id = job_experiment(project_run, experiment_name)
            else:
                experiment_id = mlflow.set_experiment(experiment_name).experiment_id
            mark_experiment(experiment_id)
        run_owners.open_store()  # this process's runs name it; a SIGKILLed one's end KILLED
        return experiment_id
    except mlflow.exceptions.MlflowException as exc:
        # An unreachable server or database is the user's to fix: one line, not a traceback.
        message = " ".join(str(getattr(exc, "message", exc)).split())[:400]
        raise UserError(f"mlflow.tracking_uri={tracking_uri!r} is not usable: {message}") from None


def default_study_storage(tracking_uri: str) -> str:
    """An Optuna SQLite file next to the MLflow SQLite DB (or in the working dir)."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix):
        return prefix + str(Path(tracking_uri[len(prefix) :]).with_name("optuna.db"))
    return prefix + "optuna.db"


@contextmanager
def parent_run(
    experiment_id: str, run_name: str | None, resume_run_id: str | None = None
) -> Iterator[Run]:
    """The study's parent run: the `mlflow run` project run when it is in this experiment
    (named `run_name`), else the run this study used before (a rerun continues it), else a new
    run; a project run elsewhere (Default) is pointed to it (`project_run.point_to`)."""
    project_run = os.environ.pop("MLFLOW_RUN_ID", None)
    adopted = project_run if adopts(project_run, experiment_id) else None
    run_id = adopted or resume_run_id
    if run_id and not _run_exists(run_id):
        run_id = None
    try:
        # MLFLOW_RUN_ID stays unset inside: mlflow.start_run would otherwise resume the project
        # run for every trial instead of creating nested runs.
        with mlflow.start_run(
            run_id=run_id, experiment_id=experiment_id, run_name=None if run_id else run_name
        ) as run:
            if adopted and run_name:  # the project run's random name says nothing
                mlflow.set_tag("mlflow.runName", run_name)
            if project_run and not adopted:
                point_to(project_run, run)
            cancel = run_owners.own(run.info.run_id)  # a stop signal ends it KILLED
            try:
                yield run
            except KeyboardInterrupt:  # Ctrl-C: this run and any nested one still open
                while (active := mlflow.active_run()) is not None:
                    mlflow.end_run(run_owners.KILLED)
                    if active.info.run_id == run.info.run_id:
                        break
                raise
            finally:
                cancel()
    finally:
        if project_run:
            os.environ["MLFLOW_RUN_ID"] = project_run


def _run_exists(run_id: str) -> bool:
    try:
        mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


def log_params(params: dict[str, Any]) -> None:
    """Log params, skipping keys the run already has with the same value (resumed runs)."""
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    fresh = {k: v for k, v in params.items() if existing.get(k) is None}
    changed = {k for k, v in params.items() if k in existing and existing[k] != str(v)}
    if changed:
        log.warning("params already logged with other values, kept as they were: %s", changed)
    if fresh:
        mlflow.log_params(fresh)


def log_metrics(metrics: dict[str, float], model_id: str | None = None) -> None:
    """Log finite metrics to the active run (and to a logged model when given)."""
    finite = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    mlflow.log_metrics(finite, model_id=model_id)


def set_tags(tags: dict[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_dict(data: dict[str, Any], name: str) -> None:
    mlflow.log_dict(data, name)


def log_text(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def log_pick_model(fitted: FittedModel, meta: dict[str, Any], example: pd.DataFrame) -> ModelInfo:
    """Log the fitted model + threshold + feature list as a pyfunc `PickModel` with
    signature/example; the meta's `model` entry names the fitted model's kind and class.

    Args:
        fitted: the final model (`models.base.FittedModel`).
        meta: JSON-able model facts: features, threshold, label and data description.
        example: a few rows of feature columns.
    """
    example = example.astype(np.float64)
    output = pd.DataFrame({"probability": np.full(len(example), 0.5), "pick": False})
    output = output.assign(**{f"{n}_score": 0.5 for n in getattr(fitted, "members", {})})
    meta = meta | {"model": fitted_entry(fitted)}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        fitted.save(model_dir)
        meta_path = Path(tmp) / "meta.json"
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PACKAGE_DIR / "tracking" / "model_code.py"),
            artifacts={MODEL_ARTIFACT: str(model_dir), META_ARTIFACT: str(meta_path)},
            code_paths=[str(PACKAGE_DIR)],
            signature=model_signature(example, output),
            input_example=example,
            pip_requirements=_pip_requirements(fitted),
        )


def _pip_requirements(fitted: FittedModel) -> list[str]:
    return [
        f"mlflow=={mlflow.__version__}",
        *fitted.requirements(),
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def load_pick_model(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """Load a logged `PickModel` as pyfunc; returns (pyfunc model, its meta.json facts).

    Raises `UserError` when the URI does not resolve to a model or is not a PickModel.
    """
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        message = getattr(exc, "message", str(exc))
        raise UserError(
            f"model_uri={model_uri!r} cannot be loaded from {mlflow.get_tracking_uri()}: {message}"
        ) from None
    python_model = model.unwrap_python_model()
    meta = getattr(python_model, "meta", None)
    if not isinstance(meta, dict) or "features" not in meta or "threshold" not in meta:
        raise UserError(f"model_uri={model_uri!r} is not an ashare-autotune PickModel")
    return model, meta


def model_ids(model: Any) -> dict[str, str | None]:
    """The logged-model id and source run id of a loaded pyfunc model."""
    return {"model_id": model.metadata.model_id, "run_id": model.metadata.run_id}


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Log a local file to the active run."""
    mlflow.log_artifact(str(path), artifact_path)


def set_tracking_uri(tracking_uri: str) -> None:
    """Point MLflow (tracking and registry) at a store without choosing an experiment."""
    # MLflow's "Downloading artifacts" bars (registering, loading a model) are noise in a log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> None:
    """Log every file of a local directory to the active run, each whole or not at all."""
    log_artifacts_whole(local_dir, artifact_path)


def dataset_input(
    frame: pd.DataFrame,
    name: str,
    source: str,
    context: str,
    tags: dict[str, Any],
    n_rows: int | None = None,
) -> DatasetInput:
    """A DataFrame as an MLflow dataset input (digest, schema, rows), to log with `log_inputs`.

    The input holds what MLflow records, not the frame: it can be made while the rows exist
    and logged later. MLflow reads only the first rows (schema, digest) and the row count, so
    `frame` may be the head of a segment that is not in memory, with `n_rows` its size.

    Args:
        frame: the rows, or their first `SCHEMA_SAMPLE_ROWS` (not copied, not kept).
        name: the dataset name shown in the UI.
        source: where the data came from (`Market.source`: a path, `files:<path>`, ...).
        context: the role, e.g. "training", "validation", "testing".
        tags: facts to show next to it (date range, stocks, rows).
        n_rows: the rows of the whole dataset (None: `len(frame)`).
    """
    n_rows = len(frame) if n_rows is None else n_rows
    sample = frame.head(SCHEMA_SAMPLE_ROWS)
    dataset = mlflow.data.from_pandas(
        frame, source=_dataset_source(source), name=name, digest=_frame_digest(sample, n_rows)
    )
    # MLflow would infer the schema value by value over every row (87 s for 2M x 18 floats):
    # the column types are the same on a sample, so fill the cached property from one.
    dataset.__dict__["schema"] = sample_schema(sample)
    entity = dataset._to_mlflow_entity()
    profile = {"num_rows": n_rows, "num_elements": n_rows * frame.shape[1]}  # MLflow's profile
    entity = _with_profile(entity, json.dumps(profile))
    # what mlflow.log_input records: the dataset, its tags and the context as a tag
    input_tags = [InputTag(key=k, value=str(v)) for k, v in tags.items()]
    input_tags.append(InputTag(key=MLFLOW_DATASET_CONTEXT, value=context))
    return DatasetInput(dataset=entity, tags=input_tags)


def _with_profile(entity: DatasetEntity, profile: str) -> DatasetEntity:
    """The same MLflow dataset entity with another profile (JSON)."""
    return DatasetEntity(
        name=entity.name,
        digest=entity.digest,
        source_type=entity.source_type,
        source=entity.source,
        schema=entity.schema,
        profile=profile,
    )


def log_inputs(inputs: list[DatasetInput]) -> None:
    """Log dataset inputs (`dataset_input`) to the active run."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_inputs needs an active MLflow run")
    mlflow.MlflowClient().log_inputs(run_id=run.info.run_id, datasets=inputs)


def sample_schema(sample: pd.DataFrame) -> Schema:
    """MLflow's schema of `sample`, as `_infer_schema` gives it, at a fraction of the cost.

    MLflow tests each value in Python for a missing one (0.13 s a segment on 10,000 rows):
    pandas finds them instead. A column's type comes from its dtype, so from the first rows,
    except for object columns, whose values decide it: those are inferred on all of `sample`.
    """
    from mlflow.types.utils import _infer_schema

    by_value = [c for c in sample.columns if sample[c].dtype.kind == "O"]
    parts = [sample.head(SCHEMA_TYPE_ROWS).drop(columns=by_value), sample[by_value]]
    with warnings.catch_warnings():  # its hint about integer columns is for model signatures
        warnings.simplefilter("ignore", UserWarning)
        types = {
            c.name: c.type for part in parts if part.shape[1] for c in _infer_schema(part).inputs
        }
    missing = sample.isna().any()
    return Schema([ColSpec(types[c], c, required=not missing[c]) for c in sample.columns])


def _frame_digest(sample: pd.DataFrame, n_rows: int) -> str:
    """MLflow's digest (the first rows' hashes, the row count, the columns) without its
    `frame.map(type)` over every cell: 1.5 GB of Python objects for the whole market's rows."""
    from mlflow.data.digest_utils import get_normalized_md5_digest

    parts = [pd.util.hash_pandas_object(sample).to_numpy(), np.int64(n_rows)]
    return get_normalized_md5_digest(parts + [str(c).encode() for c in sample.columns])


def _dataset_source(source: str) -> Any:
    """A local path for file sources; anything else (synthetic, tushare) as a described source."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    if source.startswith("files:"):
        path = str(Path(source.removeprefix("files:")).resolve())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # two local resolvers match a path
            return resolve_dataset_source(path)
    return CodeDatasetSource(tags={"source": source})
