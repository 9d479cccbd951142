"""The final model of a study: the best trial's parameters refitted on all training rows."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import optuna

from ashare_autotune.models.base import FittedModel, Matrices, ScoreModel

log = logging.getLogger(__name__)


def best_rounds(study: optuna.Study) -> int:
    """Boosting rounds of the best trial (its early-stopping best iteration + 1)."""
    return int(study.best_trial.user_attrs.get("best_iteration", 0)) + 1


def raised_learning_rate(params: dict[str, Any], floor: float | None) -> dict[str, Any]:
    """`params` with every learning rate (an ensemble member's `<member>.learning_rate` too) at
    least `floor` (None: as they are)."""
    if floor is None:
        return params
    return params | {k: max(float(v), floor) for k, v in learning_rates(params).items()}


def learning_rates(params: dict[str, Any]) -> dict[str, Any]:
    """The learning rates among `params`: `learning_rate` and an ensemble member's
    `<member>.learning_rate`."""
    return {k: v for k, v in params.items() if k.split(".")[-1] == "learning_rate"}


def fit_best(
    model: ScoreModel,
    matrices: Matrices,
    study: optuna.Study,
    eval_every: int,
    refit_learning_rate: float | None = None,
) -> FittedModel:
    """The final model: the best trial's parameters refitted on all training rows.

    When the trials trained on all of them, for the best trial's number of rounds. When they
    trained on a sample (`Matrices.trial_train`), the best number of rounds on all rows is not
    the sample's: the refit early-stops on validation as a trial does and is cut at its best
    round, its learning rate at least `refit_learning_rate`.

    Args:
        model: the configured model.
        matrices: the study's matrices.
        study: the finished study (best parameters and rounds).
        eval_every: evaluate validation every this many rounds (the sampled case).
        refit_learning_rate: the sampled case's lowest learning rate
            (`tuning.refit_learning_rate`).
    """
    if matrices.trial_train is None:
        return model.refit(study.best_params, matrices.train, best_rounds(study))
    full = dataclasses.replace(matrices, train=matrices.full_train(), trial_train=None)
    params = raised_learning_rate(study.best_params, refit_learning_rate)
    fitted = model.fit(params, full, eval_every)
    rates = learning_rates(params)
    log.info(
        "the final model, on all training rows (%s), early-stopped on validation at %d rounds "
        "(validation score %.4f)",
        ", ".join(f"{k} {v:.4g}" for k, v in rates.items()) or "its parameters",
        fitted.best_round,
        fitted.best_score,
    )
    return fitted
