"""The final model of a study: the best trial's parameters refitted on all training rows."""

from __future__ import annotations

import dataclasses
import logging

import optuna

from ashare_autotune.models.base import FittedModel, Matrices, ScoreModel

log = logging.getLogger(__name__)


def best_rounds(study: optuna.Study) -> int:
    """Boosting rounds of the best trial (its early-stopping best iteration + 1)."""
    return int(study.best_trial.user_attrs.get("best_iteration", 0)) + 1


def fit_best(
    model: ScoreModel, matrices: Matrices, study: optuna.Study, eval_every: int
) -> FittedModel:
    """The final model: the best trial's parameters refitted on all training rows.

    When the trials trained on all of them, for the best trial's number of rounds. When they
    trained on a sample (`Matrices.trial_train`), the best number of rounds on all rows is not
    the sample's: the refit early-stops on validation as a trial does and is cut at its best
    round.

    Args:
        model: the configured model.
        matrices: the study's matrices.
        study: the finished study (best parameters and rounds).
        eval_every: evaluate validation every this many rounds (the sampled case).
    """
    if matrices.trial_train is None:
        return model.refit(study.best_params, matrices.train, best_rounds(study))
    full = dataclasses.replace(matrices, train=matrices.full_train(), trial_train=None)
    fitted = model.fit(study.best_params, full, eval_every)
    log.info(
        "the final model, on all training rows, early-stopped on validation at %d rounds "
        "(validation score %.4f)",
        fitted.best_round,
        fitted.best_score,
    )
    return fitted
