"""Training one XGBoost booster: fixed parameters, periodic validation, early stopping, refits."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import optuna
import xgboost as xgb

from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.tuning.matrices import Matrices

log = logging.getLogger(__name__)

# Validation is evaluated as `EVAL_NAME` with `EVAL_METRIC`; XGBoost logs it as "val-auc".
EVAL_NAME, EVAL_METRIC = "val", "auc"
OBSERVATION_KEY = f"{EVAL_NAME}-{EVAL_METRIC}"


def base_params(model: ModelConfig) -> dict[str, Any]:
    """XGBoost parameters fixed for every trial (no scale_pos_weight, by design)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": EVAL_METRIC,
        "tree_method": model.tree_method,
        "max_bin": model.max_bin,
        "nthread": model.n_jobs,
        "seed": model.seed,
        "verbosity": 0,
    }


def train_early_stopping(
    params: dict[str, Any],
    matrices: Matrices,
    model: ModelConfig,
    eval_every: int = 1,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> xgb.Booster:
    """Train on `matrices.trial_train` (all of `matrices.train` when it is None), early-stopping
    on the AUC of `matrices.val` (`booster.best_iteration`, `booster.best_score`).

    Args:
        params: booster parameters.
        matrices: the study's matrices.
        model: rounds and early-stopping patience (in boosting rounds).
        eval_every: evaluate validation every this many rounds (and at the last round);
            early stopping and `callbacks` see only these evaluations.
        callbacks: callbacks acting on the evaluations, e.g. Optuna's pruning callback.
    """
    stop = xgb.callback.EarlyStopping(
        rounds=-(-model.early_stopping_rounds // eval_every),  # in evaluations
        metric_name=EVAL_METRIC,
        data_name=EVAL_NAME,
        maximize=True,
    )
    evaluate = PeriodicEvaluation(
        matrices.val,
        eval_every,
        model.num_boost_round,
        [stop, *callbacks],
    )
    return xgb.train(
        params,
        matrices.train if matrices.trial_train is None else matrices.trial_train,
        num_boost_round=model.num_boost_round,
        callbacks=[evaluate],
        verbose_eval=False,
    )


class PeriodicEvaluation(xgb.callback.TrainingCallback):
    """Evaluate a matrix every `period` boosting rounds and only then run `then` on the result.

    `xgboost.train` evaluates its `evals` after every round; on a small universe that cost more
    than the round itself (benchmarks/README.md). This evaluates on rounds period-1, 2*period-1,
    ... and the last, appends the scores to the evaluation log as `xgboost.train` would, and
    hands that log to `then` (XGBoost's `EarlyStopping`, Optuna's pruning callback) on those
    rounds only. With period 1 it is what `xgboost.train(evals=[(dmatrix, "val")])` does.
    """

    def __init__(
        self,
        dmatrix: xgb.DMatrix,
        period: int,
        num_rounds: int,
        then: Sequence[xgb.callback.TrainingCallback],
    ) -> None:
        self._dmatrix, self._period, self._num_rounds = dmatrix, period, num_rounds
        self._then = list(then)
        super().__init__()

    def before_training(self, model: Any) -> Any:
        """Let `then` set up (XGBoost's early stopping notes the starting round)."""
        for callback in self._then:
            model = callback.before_training(model)
        return model

    def after_training(self, model: Any) -> Any:
        """Let `then` finish."""
        for callback in self._then:
            model = callback.after_training(model)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """On an evaluation round, log the scores and return whether any of `then` stops."""
        if (epoch + 1) % self._period and epoch + 1 != self._num_rounds:
            return False
        result = model.eval(self._dmatrix, EVAL_NAME, epoch)  # "[epoch]\tval-auc:0.61..."
        for item in result.split("\t")[1:]:
            key, value = item.rsplit(":", 1)
            metric = key.split("-", 1)[1]
            evals_log.setdefault(EVAL_NAME, {}).setdefault(metric, []).append(float(value))
        stops = [callback.after_iteration(model, epoch, evals_log) for callback in self._then]
        return any(stops)


def best_round_range(booster: xgb.Booster) -> tuple[int, int]:
    """The `iteration_range` of a booster up to its early-stopping best round (all its rounds
    when it did not early-stop): how a trial's booster is scored."""
    best = getattr(booster, "best_iteration", None)
    return (0, best + 1) if best is not None else (0, 0)


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


def fit_best(
    matrices: Matrices, model: ModelConfig, study: optuna.Study, eval_every: int
) -> xgb.Booster:
    """The final model: the best trial's parameters refitted on all training rows.

    When the trials trained on all of them, for the best trial's number of rounds. When they
    trained on a sample (`Matrices.trial_train`), the best number of rounds on all rows is not
    the sample's: the refit early-stops on validation as a trial does and is cut at its best
    round.
    """
    if matrices.trial_train is None:
        return fit_final(matrices, model, study.best_params, best_rounds(study))
    full = dataclasses.replace(matrices, train=matrices.full_train(), trial_train=None)
    params = base_params(model) | study.best_params
    booster = train_early_stopping(params, full, model, eval_every)
    log.info(
        "trials trained on %d of %d training rows; the final model, on all of them, stopped "
        "at %d rounds (validation AUC %.4f)",
        matrices.trial_train.num_row(),
        full.train.num_row(),
        booster.best_iteration + 1,
        booster.best_score,
    )
    return booster[: booster.best_iteration + 1]


def window_rounds(study: optuna.Study, k: int) -> int:
    """Boosting rounds of the best trial in walk-forward window `k` (from 1)."""
    return int(study.best_trial.user_attrs.get(f"best_iteration_w{k}", 0)) + 1
