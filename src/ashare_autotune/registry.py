"""Everything that talks to the MLflow model registry: versions, their tags and aliases."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

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
