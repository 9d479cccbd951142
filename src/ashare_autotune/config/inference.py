"""Typed schemas of the `predict` and `evaluate` entry points (conf/predict.yaml, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.schema import (
    DataConfig,
    LabelConfig,
    MlflowConfig,
    validate_data,
    validate_label,
)
from ashare_autotune.errors import ConfigError

DEFAULT_MODEL_URI = "models:/ashare-autotune-xgb@champion"


@dataclass
class PredictConfig:
    """Score one trading day with a registered model and write the ranked picks."""

    model_uri: str = DEFAULT_MODEL_URI
    date: str | None = None  # YYYYMMDD; None: the latest trading day in the data
    top_k: int | None = None  # keep only the k highest probabilities in the output
    output_dir: str = "picks"
    format: str = "csv"  # csv | parquet
    data: DataConfig = field(default_factory=DataConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


@dataclass
class EvaluateConfig:
    """Evaluate a registered model on a window of days it was not trained on."""

    model_uri: str = DEFAULT_MODEL_URI
    start: str | None = None  # YYYYMMDD; None: the first trading day after the model's data
    end: str | None = None  # YYYYMMDD; None: the last day with a fully observed label
    allow_overlap: bool = False  # allow a window inside the model's training data range
    data: DataConfig = field(default_factory=DataConfig)
    label: LabelConfig | None = None  # None: the label definition stored with the model
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


def register_inference_configs() -> None:
    """Register the schemas that conf/predict.yaml and conf/evaluate.yaml extend."""
    store = ConfigStore.instance()
    store.store(name="predict_schema", node=PredictConfig)
    store.store(name="evaluate_schema", node=EvaluateConfig)


def to_predict_config(cfg: DictConfig) -> PredictConfig:
    """Convert and validate a composed conf/predict.yaml."""
    out = _to_object(cfg, PredictConfig)
    _check_date("date", out.date)
    if out.top_k is not None and out.top_k < 1:
        raise ConfigError(f"config key 'top_k'={out.top_k!r}: must be >= 1")
    if out.format not in {"csv", "parquet"}:
        raise ConfigError(f"config key 'format'={out.format!r}: must be csv or parquet")
    validate_data(out.data)
    return out


def to_evaluate_config(cfg: DictConfig) -> EvaluateConfig:
    """Convert and validate a composed conf/evaluate.yaml."""
    out = _to_object(cfg, EvaluateConfig)
    _check_date("start", out.start)
    _check_date("end", out.end)
    if out.start and out.end and out.start > out.end:
        raise ConfigError(f"config key 'start'={out.start!r}: is after end={out.end!r}")
    validate_data(out.data)
    if out.label is not None:
        validate_label(out.label)
    return out


def _to_object(cfg: DictConfig, schema: type) -> Any:
    out = OmegaConf.to_object(cfg)
    if not isinstance(out, schema):
        raise ConfigError(f"configuration does not follow the {schema.__name__} schema")
    return out


def _check_date(key: str, value: str | None) -> None:
    if value is not None and not (len(str(value)) == 8 and str(value).isdigit()):
        raise ConfigError(f"config key '{key}'={value!r}: must be a date written YYYYMMDD")
