"""Everything that talks to the MLflow model registry: versions, their tags and aliases."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from ashare_autotune.errors import UserError

log = logging.getLogger(__name__)


def register_version(
    model_uri: str, name: str, tags: dict[str, Any], description: str
) -> ModelVersion:
    """Register a logged model as a new version of `name` with tags and a description."""
    version = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})
    MlflowClient().update_model_version(name, version.version, description=description)
    log.info("registered %s version %s", name, version.version)
    return version


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` (e.g. champion) at a version."""
    MlflowClient().set_registered_model_alias(name, alias, version)
    log.info("alias %s@%s -> version %s", name, alias, version)


def alias_version(name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None when the model or alias does not exist."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def version_metrics(version: ModelVersion) -> dict[str, float]:
    """A version's metrics: those of its logged model, else the numeric tags of the version."""
    model_id = version.model_id or _model_id_from_source(version.source)
    if model_id:
        try:
            logged = MlflowClient().get_logged_model(model_id)
        except mlflow.exceptions.MlflowException:
            logged = None
        if logged is not None and logged.metrics:
            latest = sorted(logged.metrics, key=lambda m: (m.timestamp, m.step))
            return {m.key: float(m.value) for m in latest}
    return {k: float(v) for k, v in version.tags.items() if _is_number(v)}


def _model_id_from_source(source: str | None) -> str | None:
    """`models:/m-<id>` (MLflow 3 logged-model source) -> `m-<id>`."""
    prefix = "models:/m-"
    if source and source.startswith(prefix):
        return source[len("models:/") :].split("/", 1)[0]
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def resolve_version(model_uri: str) -> ModelVersion | None:
    """The registry version a `models:/name/N` or `models:/name@alias` URI points to.

    Returns None for URIs outside the registry (runs:/, models:/m-<id>, paths).
    Raises `UserError` when the registered model, version or alias does not exist.
    """
    prefix = "models:/"
    if not model_uri.startswith(prefix) or model_uri.startswith(prefix + "m-"):
        return None
    ref = model_uri[len(prefix) :].rstrip("/")
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.rsplit("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, _, version = ref.rpartition("/")
        if name and version.isdigit():
            return client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as exc:
        hint = _other_alias_hint(ref)
        raise UserError(
            f"model_uri={model_uri!r} not found in the registry at "
            f"{mlflow.get_registry_uri()}: {hint or exc.message}"
        ) from None
    return None


def _other_alias_hint(ref: str) -> str:
    """For a missing alias of an existing model, which aliases it has (e.g. no version was
    promoted to champion, the newest is the challenger): '' otherwise."""
    if "@" not in ref:
        return ""
    name, alias = ref.rsplit("@", 1)
    try:
        aliases = MlflowClient().get_registered_model(name).aliases
    except mlflow.exceptions.MlflowException:
        return ""
    if not aliases:
        return f"{name} has no version with an alias"
    have = ", ".join(f"{a} (version {v})" for a, v in sorted(aliases.items()))
    example = sorted(aliases)[0]
    return (
        f"no version of {name} is {alias} (none was promoted: see its versions' "
        f"promotion_reason); it has {have}: e.g. model_uri=models:/{name}@{example}"
    )


def set_version_tags(name: str, version: str, tags: dict[str, Any]) -> None:
    """Set tags on a model version (e.g. a link to its latest evaluation run)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
