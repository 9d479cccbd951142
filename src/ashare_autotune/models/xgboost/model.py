"""XGBoost behind the `ScoreModel` protocol: fixed parameters, periodic validation, early
stopping, Optuna's pruning callback, refits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from optuna_integration.xgboost import XGBoostPruningCallback

from ashare_autotune.config.choices import Missing
from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.models.base import Matrices, RowOptions, Rows
from ashare_autotune.models.xgboost.fitted import XGBoostFitted, mark_fill
from ashare_autotune.models.xgboost.matrices import (
    MISSING_FILL,
    RowBatches,
    build_matrices,
    build_matrices_from_rows,
)

# Validation is evaluated as `EVAL_NAME` with the objective's metric (higher is better);
# XGBoost logs it as "val-auc", "val-ndcg@10".
EVAL_NAME, EVAL_METRIC = "val", "auc"
OBSERVATION_KEY = f"{EVAL_NAME}-{EVAL_METRIC}"
RANK_AT = 10  # a ranker early-stops on the validation days' NDCG of their top 10
# model.objective -> (XGBoost's objective, its validation metric)
OBJECTIVES = {
    "binary": ("binary:logistic", EVAL_METRIC),  # the label; the precision threshold's
    # relevance within each day (`qid` = the day, rows in day order)
    "rank:pairwise": ("rank:pairwise", f"ndcg@{RANK_AT}"),
    # the forward return normalised per day (`model.target_norm`), as LightGBM's `regression`;
    # early-stopped on minus the validation squared error (higher is better, as the study's)
    "regression": ("reg:squarederror", "neg_l2"),
}


def neg_l2(preds: np.ndarray, data: xgb.DMatrix) -> tuple[str, float]:
    """Minus the mean squared error (the margin is the prediction of `reg:squarederror`)."""
    return "neg_l2", -float(np.mean((preds - data.get_label()) ** 2))


class XGBoostModel:
    """XGBoost (`model=xgboost`): `model.params` are fixed booster parameters (tree_method)."""

    kind: ClassVar[str] = "xgboost"
    objectives: ClassVar[tuple[str, ...]] = tuple(OBJECTIVES)

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        # a NaN feature's value in every matrix and input (`model.missing`)
        self.fill = MISSING_FILL if cfg.missing == Missing.fill else None

    def base_params(self) -> dict[str, Any]:
        """XGBoost parameters fixed for every trial (no scale_pos_weight, by design)."""
        objective, metric = OBJECTIVES[self.cfg.objective]
        # regression's `neg_l2` is the project's (`PeriodicEvaluation`'s feval), not XGBoost's
        own = {"disable_default_eval_metric": 1} if metric == "neg_l2" else {"eval_metric": metric}
        return own | {
            "objective": objective,
            **self.cfg.params,
            "max_bin": self.cfg.max_bin,
            "nthread": self.cfg.n_jobs,
            "seed": self.cfg.seed,
            "verbosity": 0,
        }

    def build_matrices(self, train: Rows, val: Rows, options: RowOptions) -> Matrices:
        """Train quantised batch by batch, validation a plain DMatrix (`matrices`)."""
        return build_matrices_from_rows(
            train,
            val,
            self.cfg.max_bin,
            self.cfg.n_jobs,
            batch_rows=options.batch_rows,
            watch_rows=options.watch_rows,
            trial_rows=options.trial_rows,
            seed=options.seed,
            watch_quantised=options.watch_quantised,
            keep_train=options.keep_train,
            ranking=self.cfg.objective == "rank:pairwise",
            fill=self.fill,
        )

    def frame_matrices(
        self, x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray
    ) -> Matrices:
        """Train quantised, validation quantised on train's cuts."""
        cfg = self.cfg
        return build_matrices(x_train, y_train, x_val, y_val, cfg.max_bin, cfg.n_jobs, self.fill)

    def scoring_matrix(self, rows: Rows, matrices: Matrices) -> xgb.QuantileDMatrix:
        """The rows quantised on train's cuts (about a byte a value, the same predictions)."""
        # train's cuts: the study may hold only the trials' sample, quantised on those cuts
        ref = matrices.train if matrices.train is not None else matrices.trial_train
        unused = np.zeros(len(rows.label), np.float32)  # prediction reads no label
        batches = RowBatches(replace(rows, label=unused), 1 << 20, fill=self.fill)
        return xgb.QuantileDMatrix(
            batches, ref=ref, max_bin=self.cfg.max_bin, nthread=self.cfg.n_jobs
        )

    def fit(
        self,
        params: dict[str, Any],
        matrices: Matrices,
        eval_every: int = 1,
        trial: optuna.Trial | None = None,
    ) -> XGBoostFitted:
        """Early-stopping training (`train_early_stopping`) on the objective's validation
        metric (AUC, NDCG@10), pruned through `trial`."""
        metric = OBJECTIVES[self.cfg.objective][1]
        key = f"{EVAL_NAME}-{metric}"
        callbacks = [] if trial is None else [XGBoostPruningCallback(trial, key)]
        booster = train_early_stopping(
            self.base_params() | params, matrices, self.cfg, eval_every, callbacks, metric
        )
        mark_fill(booster, self.fill)
        return XGBoostFitted(booster, booster.best_iteration + 1, float(booster.best_score))

    def refit(self, params: dict[str, Any], train: Any, rounds: int) -> XGBoostFitted:
        """Train on `train` for `rounds` rounds, no validation."""
        params = self.base_params() | params
        booster = xgb.train(params, train, num_boost_round=rounds, verbose_eval=False)
        return XGBoostFitted(mark_fill(booster, self.fill))


def train_early_stopping(
    params: dict[str, Any],
    matrices: Matrices,
    model: ModelConfig,
    eval_every: int = 1,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
    metric: str = EVAL_METRIC,
) -> xgb.Booster:
    """Train on `matrices.trial_train` (all of `matrices.train` when it is None), early-stopping
    on `metric` of `matrices.val` (`booster.best_iteration`, `booster.best_score`).

    Args:
        params: booster parameters.
        matrices: the study's matrices.
        model: rounds and early-stopping patience (in boosting rounds).
        eval_every: evaluate validation every this many rounds (and at the last round);
            early stopping and `callbacks` see only these evaluations.
        callbacks: callbacks acting on the evaluations, e.g. Optuna's pruning callback.
        metric: the validation metric (params' `eval_metric`; higher is better).
    """
    stop = xgb.callback.EarlyStopping(
        rounds=-(-model.early_stopping_rounds // eval_every),  # in evaluations
        metric_name=metric,
        data_name=EVAL_NAME,
        maximize=True,
    )
    evaluate = PeriodicEvaluation(
        matrices.val,
        eval_every,
        model.num_boost_round,
        [stop, *callbacks],
        neg_l2 if metric == "neg_l2" else None,
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
        feval: Callable[[np.ndarray, xgb.DMatrix], tuple[str, float]] | None = None,
    ) -> None:
        self._dmatrix, self._period, self._num_rounds = dmatrix, period, num_rounds
        self._then, self._feval = list(then), feval
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

    def _scores(self, model: Any, epoch: int) -> list[tuple[str, float]]:
        """(metric, value) of the matrix: XGBoost's own metrics, or the `feval`'s at full
        precision (XGBoost's evaluation text keeps 6 digits)."""
        if self._feval is not None:
            return [self._feval(model.predict(self._dmatrix, output_margin=True), self._dmatrix)]
        result = model.eval(self._dmatrix, EVAL_NAME, epoch)  # "[epoch]\tval-auc:0.61..."
        return [
            (key.split("-", 1)[1], float(value))
            for key, value in (item.rsplit(":", 1) for item in result.split("\t")[1:])
        ]

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """On an evaluation round, log the scores and return whether any of `then` stops."""
        if (epoch + 1) % self._period and epoch + 1 != self._num_rounds:
            return False
        for metric, value in self._scores(model, epoch):
            evals_log.setdefault(EVAL_NAME, {}).setdefault(metric, []).append(value)
        stops = [callback.after_iteration(model, epoch, evals_log) for callback in self._then]
        return any(stops)
