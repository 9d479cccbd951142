"""LightGBM behind the `ScoreModel` protocol (native `lgb.train`): datasets read in batches from
the same rows as XGBoost's matrices, early stopping on validation AUC, Optuna's
`LightGBMPruningCallback`, refits.

LightGBM evaluates its validation set after every round (kept scores, so a round costs one AUC);
the pruner hears of it every `tuning.eval_every` rounds. Training datasets are lazy: nothing is
read until a training call needs them, and their raw rows are freed once binned.
"""

from __future__ import annotations

from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from optuna_integration.lightgbm import LightGBMPruningCallback

from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.modelling.targets import group_order, group_sizes
from ashare_autotune.models.base import Matrices, RowOptions, Rows, by_group, sample_rows
from ashare_autotune.models.lightgbm.fitted import LightGBMFitted, Validation

EVAL_NAME = "val"
RANK_AT = 10  # a ranking objective is early-stopped on the validation days' NDCG of their top 10
# model.objective -> (LightGBM's objective, its validation metric: higher is better)
OBJECTIVES = {
    "binary": ("binary", "auc"),  # the label; the precision threshold applies to it
    "regression": ("regression", "neg_l2"),  # a continuous target, e.g. the forward return
    "lambdarank": ("lambdarank", f"ndcg@{RANK_AT}"),  # integer relevance within each day
}


def neg_l2(preds: np.ndarray, data: lgb.Dataset) -> tuple[str, float, bool]:
    """Minus the mean squared error: higher is better, as the study and its pruner need."""
    return "neg_l2", -float(np.mean((preds - data.get_label()) ** 2)), True


class RowSequence(lgb.Sequence):
    """Rows of a segment for `lgb.Dataset`, read a batch at a time (no copy of the segment).

    LightGBM reads it twice, as XGBoost reads its batches: row by row at increasing positions
    for the sample its bins are cut on (up to `bin_construct_sample_cnt` rows), then batch by
    batch. A row is served from its batch, read once and kept until the next one is needed:
    reading 200,000 single rows from the feature store would cost minutes.
    """

    def __init__(self, rows: Rows, batch_size: int) -> None:
        self._rows, self.batch_size = rows, batch_size
        self._batch: tuple[int, np.ndarray] | None = None  # (number, its rows)

    def __len__(self) -> int:
        return len(self._rows.rows)

    def _read(self, at: np.ndarray) -> np.ndarray:
        return self._rows.read(at).to_numpy(np.float64)  # LightGBM bins sequences of doubles

    def __getitem__(self, idx: int | slice) -> np.ndarray:
        if not isinstance(idx, int | np.integer):
            return self._read(np.atleast_1d(self._rows.rows[idx]))
        number = int(idx) // self.batch_size
        if self._batch is None or self._batch[0] != number:
            start = number * self.batch_size
            self._batch = (number, self._read(self._rows.rows[start : start + self.batch_size]))
        return self._batch[1][int(idx) - number * self.batch_size]


def read_rows(rows: Rows, batch_rows: int) -> pd.DataFrame:
    """All `rows.rows` as one frame, read `batch_rows` at a time."""
    at = rows.rows
    parts = [rows.read(at[i : i + batch_rows]) for i in range(0, len(at), batch_rows)]
    return pd.concat(parts) if parts else rows.read(at)


class LightGBMModel:
    """LightGBM (`model=lightgbm`): `model.params` are fixed LightGBM parameters."""

    kind: ClassVar[str] = "lightgbm"
    objectives: ClassVar[tuple[str, ...]] = tuple(OBJECTIVES)

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg

    def base_params(self) -> dict[str, Any]:
        """LightGBM parameters fixed for every trial."""
        objective, metric = OBJECTIVES[self.cfg.objective]
        ranking = {"eval_at": [RANK_AT]} if objective == "lambdarank" else {}
        return ranking | {
            "objective": objective,
            # LightGBM's own metric; regression's is `neg_l2`, handed to `lgb.train` as feval
            "metric": {"auc": "auc", "neg_l2": "None"}.get(metric, "ndcg"),
            **self.cfg.params,
            "num_threads": self.cfg.n_jobs,
            "seed": self.cfg.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }

    def _dataset_params(self) -> dict[str, Any]:
        # trials change min_child_samples: no pre-filtering of features on its first value
        return {"max_bin": self.cfg.max_bin, "feature_pre_filter": False, "verbosity": -1}

    @property
    def ranking(self) -> bool:
        """Whether the objective ranks within a day (its rows in day order, days as groups)."""
        return self.cfg.objective == "lambdarank"

    def _dataset(self, rows: Rows, batch_rows: int, names: list[str]) -> lgb.Dataset:
        rows = by_group(rows) if self.ranking else rows
        groups = group_sizes(rows.group[rows.rows]) if self.ranking else None
        return lgb.Dataset(
            RowSequence(rows, batch_rows),
            label=rows.label[rows.rows],
            group=groups,
            feature_name=names,
            params=self._dataset_params(),
        )

    def _validation(self, val: Rows, watched: np.ndarray, batch_rows: int) -> Validation:
        """The watched validation rows (in day order for a ranker, `Validation.order`)."""
        x_val = read_rows(Rows(val.read, val.label, watched), batch_rows)
        names = [str(c) for c in x_val.columns]
        x, y = x_val.to_numpy(np.float32), val.label[watched]
        if not self.ranking:
            return Validation(x, y, names)
        if val.group is None:
            raise ValueError("a ranking objective needs each row's day (Rows.group)")
        order = group_order(val.group[watched])
        sizes = group_sizes(val.group[watched][order])
        return Validation(x[order], y[order], names, sizes, order)

    def build_matrices(self, train: Rows, val: Rows, options: RowOptions) -> Matrices:
        """Train (and the trials' sample) as lazy datasets; validation rows read once."""
        watched = sample_rows(val.rows, options.watch_rows, options.seed)
        validation = self._validation(val, watched, options.batch_rows)
        names = validation.feature_names
        dtrain = self._dataset(train, options.batch_rows, names)
        trial = sample_rows(train.rows, options.trial_rows, options.seed)
        if len(trial) == len(train.rows):
            return Matrices(train=dtrain, val=validation)
        sample = Rows(train.read, train.label, trial, train.group)
        return Matrices(dtrain, validation, self._dataset(sample, options.batch_rows, names))

    def frame_matrices(
        self, x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray
    ) -> Matrices:
        """A dataset of the training frame; the validation frame as float32 rows."""
        names = [str(c) for c in x_train.columns]
        dtrain = lgb.Dataset(
            x_train.to_numpy(np.float32),
            label=np.asarray(y_train),
            feature_name=names,
            params=self._dataset_params(),
        )
        validation = Validation(x_val.to_numpy(np.float32), np.asarray(y_val), names)
        return Matrices(train=dtrain, val=validation)

    def scoring_matrix(self, rows: Rows, matrices: Matrices) -> np.ndarray:
        """The rows' features as float32 (LightGBM predicts from raw values)."""
        return read_rows(rows, 1 << 20).to_numpy(np.float32)

    def fit(
        self,
        params: dict[str, Any],
        matrices: Matrices,
        eval_every: int = 1,
        trial: optuna.Trial | None = None,
    ) -> LightGBMFitted:
        """Train on the trials' rows, early-stopping on the objective's validation metric (AUC
        for binary); prune through `trial`.

        Args:
            params: the searched parameters (the fixed ones are added).
            matrices: the study's matrices.
            eval_every: the pruner hears the validation metric every this many rounds.
            trial: the Optuna trial (None: no pruning).
        """
        train = matrices.train if matrices.trial_train is None else matrices.trial_train
        val: Validation = matrices.val
        dval = lgb.Dataset(
            val.x, val.y, group=val.group, feature_name=val.feature_names, reference=train
        )
        metric = OBJECTIVES[self.cfg.objective][1]
        callbacks = [lgb.early_stopping(self.cfg.early_stopping_rounds, verbose=False)]
        if trial is not None:
            callbacks.append(
                LightGBMPruningCallback(trial, metric, EVAL_NAME, report_interval=eval_every)
            )
        booster = lgb.train(
            self.base_params() | params,
            train,
            num_boost_round=self.cfg.num_boost_round,
            valid_sets=[dval],
            valid_names=[EVAL_NAME],
            feval=neg_l2 if metric == "neg_l2" else None,
            callbacks=callbacks,
        )
        best = booster.best_iteration or booster.current_iteration()
        score = float(booster.best_score[EVAL_NAME][metric])
        return LightGBMFitted(booster, best, score, self.cfg.n_jobs)

    def refit(self, params: dict[str, Any], train: Any, rounds: int) -> LightGBMFitted:
        """Train on `train` for `rounds` rounds, no validation."""
        booster = lgb.train(self.base_params() | params, train, num_boost_round=rounds)
        return LightGBMFitted(booster, n_jobs=self.cfg.n_jobs)
