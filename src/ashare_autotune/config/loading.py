"""From a composed Hydra config to the typed schema: registration, conversion, the check for
keys the schema lacks, and the fingerprint that names a study."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from ashare_autotune.config.backtest_cli import BacktestCliConfig
from ashare_autotune.config.fetch import FetchConfig
from ashare_autotune.config.rolling import RollingAppConfig
from ashare_autotune.config.schema import AppConfig, EvaluateConfig, PredictConfig
from ashare_autotune.errors import ConfigError, config_error_text

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SCHEMAS = {
    "base_config": AppConfig,  # conf/config.yaml
    "predict_schema": PredictConfig,  # conf/predict.yaml
    "evaluate_schema": EvaluateConfig,  # conf/evaluate.yaml
    "fetch_schema": FetchConfig,  # conf/fetch_data.yaml
    "backtest_cli_schema": BacktestCliConfig,  # conf/backtest_cli.yaml
    "rolling_schema": RollingAppConfig,  # conf/rolling_app.yaml
}


def register_configs() -> None:
    """Register the schemas that the files in conf/ extend (`- base_config` in defaults, ...)."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=name, node=schema)


def to_app_config(cfg: DictConfig) -> AppConfig:
    """Convert a composed conf/config.yaml into the typed, validated `AppConfig`."""
    return to_schema(cfg, AppConfig)


def to_predict_config(cfg: DictConfig) -> PredictConfig:
    """Convert and validate a composed conf/predict.yaml."""
    return to_schema(cfg, PredictConfig)


def to_evaluate_config(cfg: DictConfig) -> EvaluateConfig:
    """Convert and validate a composed conf/evaluate.yaml."""
    return to_schema(cfg, EvaluateConfig)


def to_fetch_config(cfg: DictConfig) -> FetchConfig:
    """Convert and validate a composed conf/fetch_data.yaml."""
    return to_schema(cfg, FetchConfig)


def to_schema(cfg: DictConfig, schema: type[T]) -> T:
    """The composed config as an instance of `schema`; every group's `__post_init__` checks
    its fields on the way, so a bad value raises `ConfigError` naming the key.

    Raises:
        ConfigError: on a key the schema lacks (`check_known_keys`) or a bad value.
    """
    check_known_keys(cfg)
    out = OmegaConf.to_object(cfg)
    if not isinstance(out, schema):
        raise ConfigError(f"configuration does not follow the {schema.__name__} schema")
    return out


def reject_unknown_keys(func: F) -> F:
    """Wrap a Hydra task function so that a key its schema lacks, also one added with `+`, is
    reported exactly as `errors.run_cli` reports Hydra's own unknown-key error: one `error:`
    line on stderr, exit status 2, nothing logged (an exception leaving the task function would
    add Hydra's "Error executing job" line)."""

    @functools.wraps(func)
    def wrapper(cfg: DictConfig, *args: Any, **kwargs: Any) -> Any:
        try:
            check_known_keys(cfg)
        except ConfigKeyError as exc:
            print(f"error: {config_error_text(exc)}", file=sys.stderr)
            sys.exit(2)
        return func(cfg, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_known_keys(cfg: DictConfig, prefix: str = "") -> None:
    """Fail on a key the schema lacks, also one added with Hydra's `+` prefix (which opens the
    schema for it), with the error Hydra raises for such a key given without `+`: the entry
    points report both as the same line, "config key 'tuning.n_trails': Key 'n_trails' not in
    'TuningConfig'" (`errors.run_cli`), exit 2.

    Raises:
        ConfigKeyError: naming the key (`full_key`) and the schema.
    """
    schema = OmegaConf.get_type(cfg)
    fields = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    )
    for key in cfg:
        if fields is not None and key not in fields:
            error = ConfigKeyError(f"Key '{key}' not in '{schema.__name__}'")
            error.full_key = f"{prefix}{key}"
            raise error
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
            check_known_keys(node, f"{prefix}{key}.")


def config_fingerprint(app: AppConfig, data_summary: dict[str, Any] | None = None) -> str:
    """A short hash of everything that defines the study's objective (data, label, split, space).

    Two runs with the same fingerprint optimise the same function, so they may share a study.

    Args:
        app: the configuration.
        data_summary: what was actually loaded (date range, rows), so new data is a new study.
    """
    parts: dict[str, Any] = {
        k: dataclasses.asdict(getattr(app, k))
        for k in ("data", "features", "label", "universe", "split")
    }
    parts["loaded"] = data_summary or {}
    # the model's class, objective, fixed settings and search space (`model.space`): another
    # model is another study
    model = dataclasses.asdict(app.model)
    parts["space"] = model.pop("space")
    parts["model"] = model
    parts["objective"] = objective_identity(app)
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def objective_identity(app: AppConfig) -> dict[str, Any]:
    """The settings that give a study's trial values their meaning: `tuning.metric`, its
    direction (every metric is maximised) and what the metric reads beyond the data.

    Args:
        app: the configuration.

    Returns:
        {"tuning.metric": ..., "direction": "maximize"}, plus trading.top_k for topk_precision
        and the backtest.* settings for bt_information_ratio.
    """
    identity: dict[str, Any] = {"tuning.metric": app.tuning.metric, "direction": "maximize"}
    if app.tuning.metric == "topk_precision":
        identity["trading.top_k"] = app.trading.top_k
    if app.tuning.metric == "bt_information_ratio":
        identity |= {f"backtest.{k}": v for k, v in dataclasses.asdict(app.backtest).items()}
    return json.loads(json.dumps(identity, default=str))  # as the study stores it (JSON)
