"""The study's objective: validation AUC of one split, or its mean over walk-forward windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from ashare_autotune.config.schema import ParamSpec
from ashare_autotune.models.base import FittedModel, Matrices, ScoreModel


def suggest_params(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Sample one point of the configured search space."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec.choices or []))
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return params


def make_objective(
    matrices: Matrices,
    model: ScoreModel,
    eval_every: int = 1,
    score: Callable[[FittedModel], float] | None = None,
) -> Callable[[optuna.Trial], float]:
    """An objective that trains with early stopping on validation and returns its best AUC
    (on `matrices.val`, a sample when validation is large: scoring every trial on all of a
    whole-market validation segment cost ~0.8 s a trial, benchmarks/README.md), or `score`
    of the model at its best round (`scoring.make_scorer`; the AUC is then kept as the
    trial's user attribute `val_auc`).

    Args:
        matrices: the study's training and validation matrices.
        model: the configured model (its fixed settings and search space, `model.space`).
        eval_every: evaluate validation (early stopping, pruning) every this many rounds.
        score: the trial's value of the trained model (None: its best validation AUC).
    """

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, model.cfg.space)
        fitted = model.fit(params, matrices, eval_every, trial)
        trial.set_user_attr("best_iteration", fitted.best_round - 1)
        if score is None:
            return float(fitted.best_score)
        trial.set_user_attr(early_stop_attr(model), float(fitted.best_score))
        return score(fitted)

    return objective


def early_stop_attr(model: ScoreModel) -> str:
    """The trial attribute of the model's early-stopping score: `val_auc` for the binary
    objective, `val_early_stop_score` for another (NDCG@10, minus the squared error)."""
    return "val_auc" if model.cfg.objective == "binary" else "val_early_stop_score"


def make_walk_forward_objective(
    windows: Sequence[Matrices],
    model: ScoreModel,
    eval_every: int = 1,
) -> Callable[[optuna.Trial], float]:
    """An objective returning the mean best validation AUC over walk-forward windows.

    Each window early-stops on its own validation set; its AUC and best iteration are kept as
    trial user attributes `val_w<k>_auc` / `best_iteration_w<k>` (k from 1). No pruning: the
    windows' learning curves would be reported on the same steps.
    """

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, model.cfg.space)
        aucs = []
        for k, matrices in enumerate(windows, start=1):
            fitted = model.fit(params, matrices, eval_every)
            aucs.append(float(fitted.best_score))
            trial.set_user_attr(f"val_w{k}_auc", aucs[-1])
            trial.set_user_attr(f"best_iteration_w{k}", fitted.best_round - 1)
        trial.set_user_attr("best_iteration", fitted.best_round - 1)  # the last window's
        return float(np.mean(aucs))

    return objective
