"""Optuna search over XGBoost hyperparameters, maximising validation AUC."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from optuna_integration import XGBoostPruningCallback

from ashare_autotune.config import ModelConfig, ParamSpec, TuningConfig

log = logging.getLogger(__name__)

OBSERVATION_KEY = "val-auc"


@dataclass
class Matrices:
    """Training and validation matrices, built once per study and shared by every trial."""

    train: xgb.QuantileDMatrix
    val: xgb.QuantileDMatrix


def build_matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    max_bin: int,
    n_jobs: int,
) -> Matrices:
    """Quantise train once (max_bin must equal the booster's) and validation on train's cuts."""
    dtrain = xgb.QuantileDMatrix(x_train, y_train, max_bin=max_bin, nthread=n_jobs)
    dval = xgb.QuantileDMatrix(x_val, y_val, ref=dtrain, max_bin=max_bin, nthread=n_jobs)
    return Matrices(train=dtrain, val=dval)


def base_params(model: ModelConfig) -> dict[str, Any]:
    """XGBoost parameters fixed for every trial (no scale_pos_weight, by design)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": model.tree_method,
        "max_bin": model.max_bin,
        "nthread": model.n_jobs,
        "seed": model.seed,
        "verbosity": 0,
    }


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


def train_early_stopping(
    params: dict[str, Any],
    matrices: Matrices,
    model: ModelConfig,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> xgb.Booster:
    """Train on `matrices.train`, early-stopping on validation AUC (`booster.best_score`)."""
    return xgb.train(
        params,
        matrices.train,
        num_boost_round=model.num_boost_round,
        evals=[(matrices.val, "val")],
        early_stopping_rounds=model.early_stopping_rounds,
        callbacks=list(callbacks),
        verbose_eval=False,
    )


def make_objective(
    matrices: Matrices, model: ModelConfig, space: dict[str, ParamSpec]
) -> Callable[[optuna.Trial], float]:
    """An objective that trains with early stopping on validation and returns its best AUC."""

    def objective(trial: optuna.Trial) -> float:
        params = base_params(model) | suggest_params(trial, space)
        pruning = XGBoostPruningCallback(trial, OBSERVATION_KEY)
        booster = train_early_stopping(params, matrices, model, [pruning])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(booster.best_score)

    return objective


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The configured pruner: none, median or hyperband."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=20)
    return optuna.pruners.NopPruner()


def open_study(cfg: TuningConfig, study_name: str, storage: str) -> optuna.Study:
    """Create the study, or load it when it exists (a rerun continues where it stopped)."""
    return optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=make_pruner(cfg.pruner),
    )


def finished_trials(study: optuna.Study) -> int:
    """Trials that ran to the end (complete or pruned): failed ones do not count."""
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    cfg: TuningConfig,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> optuna.Study:
    """Run trials until the study holds `cfg.n_trials` finished trials (or the timeout)."""
    remaining = cfg.n_trials - finished_trials(study)
    if remaining <= 0:
        log.info(
            "study %s already has %d finished trials; none to run",
            study.study_name,
            finished_trials(study),
        )
        return study
    log.info("study %s: running %d trial(s)", study.study_name, remaining)
    study.optimize(
        objective,
        n_trials=remaining,
        timeout=cfg.timeout,
        callbacks=list(callbacks),
        show_progress_bar=cfg.show_progress_bar,
    )
    return study


def best_rounds(study: optuna.Study) -> int:
    """Boosting rounds of the best trial (its early-stopping best iteration + 1)."""
    return int(study.best_trial.user_attrs.get("best_iteration", 0)) + 1


def fit_final(
    matrices: Matrices, model: ModelConfig, params: dict[str, Any], rounds: int
) -> xgb.Booster:
    """Refit the best trial's parameters on train for its best number of rounds."""
    return xgb.train(
        base_params(model) | params, matrices.train, num_boost_round=rounds, verbose_eval=False
    )


def make_walk_forward_objective(
    windows: Sequence[Matrices], model: ModelConfig, space: dict[str, ParamSpec]
) -> Callable[[optuna.Trial], float]:
    """An objective returning the mean best validation AUC over walk-forward windows.

    Each window early-stops on its own validation set; its AUC and best iteration are kept as
    trial user attributes `val_w<k>_auc` / `best_iteration_w<k>` (k from 1). No pruning: the
    windows' learning curves would be reported on the same steps.
    """

    def objective(trial: optuna.Trial) -> float:
        params = base_params(model) | suggest_params(trial, space)
        aucs = []
        for k, matrices in enumerate(windows, start=1):
            booster = train_early_stopping(params, matrices, model)
            aucs.append(float(booster.best_score))
            trial.set_user_attr(f"val_w{k}_auc", aucs[-1])
            trial.set_user_attr(f"best_iteration_w{k}", int(booster.best_iteration))
        trial.set_user_attr("best_iteration", int(booster.best_iteration))  # the last window's
        return float(np.mean(aucs))

    return objective


def window_rounds(study: optuna.Study, k: int) -> int:
    """Boosting rounds of the best trial in walk-forward window `k` (from 1)."""
    return int(study.best_trial.user_attrs.get(f"best_iteration_w{k}", 0)) + 1
