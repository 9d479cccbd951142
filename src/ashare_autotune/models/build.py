"""The configured model from the `model=` group (Hydra's `_target_`), and what it learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hydra.utils import get_class

from ashare_autotune.config.choices import check
from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.targets import make_target
from ashare_autotune.models.base import ScoreModel


def build_model(cfg: ModelConfig, key: str = "model") -> ScoreModel:
    """The model class named by `model._target_`, built with its group.

    Args:
        cfg: the model's group.
        key: the group's config key in messages (an ensemble's member: `model.members.<name>`).

    Raises:
        ConfigError: one line naming `<key>._target_` when the class cannot be imported, or
            `<key>.objective` when the model does not support it.
    """
    try:
        cls = get_class(cfg._target_)
    except Exception as exc:  # Hydra wraps the ImportError/AttributeError of the lookup
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"config key '{key}._target_'={cfg._target_!r}: cannot be imported ({first})"
        ) from None
    objectives = tuple(getattr(cls, "objectives", ()))
    why = f"is not an objective of {cls.__name__} (it has: {', '.join(objectives)})"
    check(cfg.objective in objectives, f"{key}.objective", cfg.objective, why)
    return cls(cfg)


def model_target(model: ScoreModel, frame: pd.DataFrame) -> np.ndarray:
    """The objective's target of every row of a dataset's frame (`targets.make_target`), NaN
    where not trained on; for a model of members (an ensemble) one column per member, in the
    members' order."""
    members = getattr(model, "members", None)
    if members:
        return np.column_stack([model_target(m, frame) for m in members.values()])
    c = model.cfg
    return make_target(frame, c.objective, c.target_norm, c.relevance_bins)
