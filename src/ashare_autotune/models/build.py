"""The configured model from the `model=` group (Hydra's `_target_`)."""

from __future__ import annotations

from hydra.utils import get_class

from ashare_autotune.config.choices import check
from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.models.base import ScoreModel


def build_model(cfg: ModelConfig) -> ScoreModel:
    """The model class named by `model._target_`, built with its group.

    Raises:
        ConfigError: one line naming `model._target_` when the class cannot be imported, or
            `model.objective` when the model does not support it.
    """
    try:
        cls = get_class(cfg._target_)
    except Exception as exc:  # Hydra wraps the ImportError/AttributeError of the lookup
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"config key 'model._target_'={cfg._target_!r}: cannot be imported ({first})"
        ) from None
    objectives = tuple(getattr(cls, "objectives", ()))
    why = f"is not an objective of {cls.__name__} (it has: {', '.join(objectives)})"
    check(cfg.objective in objectives, "model.objective", cfg.objective, why)
    return cls(cfg)
