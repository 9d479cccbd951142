"""An ensemble behind the `ScoreModel` protocol (`model=ensemble`): members built from their own
groups (`model.members`), each with its own objective, matrices, early stopping and refit.

Tuning: one study searches the members' spaces at once (`ranker.learning_rate`, ...; the
prefixed names are `ModelConfig.space`); a trial trains every member with its parameters,
each early-stopping on its own validation metric, and is valued by `tuning.metric` of the
blend on validation (the blend has no AUC of its own). Trials are not pruned: members would
report different metrics at the same steps to one pruner.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd

from ashare_autotune.config.model import ENSEMBLE_OBJECTIVE
from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.models.base import Matrices, RowOptions, Rows, ScoreModel, sample_rows
from ashare_autotune.models.build import build_model
from ashare_autotune.models.ensemble.fitted import EnsembleFitted, EnsembleInput


class EnsembleModel:
    """Members of other models (`model.members`), blended by day rank. Its `Matrices.train`
    (and `trial_train`) is the members' `Matrices` by name; its `Matrices.val` an
    `EnsembleInput` of their validation rows and days."""

    kind: ClassVar[str] = "ensemble"
    objectives: ClassVar[tuple[str, ...]] = (ENSEMBLE_OBJECTIVE,)

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.members: dict[str, ScoreModel] = {
            name: build_model(member, f"model.members.{name}")
            for name, member in cfg.member_configs().items()
        }

    def _split(self, rows: Rows) -> dict[str, Rows]:
        """Each member's rows: its column of the targets (`build.model_target`)."""
        label = np.asarray(rows.label).reshape(len(rows.label), -1)
        return {n: replace(rows, label=label[:, j]) for j, n in enumerate(self.members)}

    def _params(self, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The searched `member.name` parameters, by member."""
        out: dict[str, dict[str, Any]] = {name: {} for name in self.members}
        for key, value in params.items():
            member, name = key.split(".", 1)
            out[member][name] = value
        return out

    def build_matrices(self, train: Rows, val: Rows, options: RowOptions) -> Matrices:
        """Every member's matrices of the same rows, each of its own target."""
        t, v = self._split(train), self._split(val)
        parts = {n: m.build_matrices(t[n], v[n], options) for n, m in self.members.items()}
        watched = sample_rows(val.rows, options.watch_rows, options.seed)  # as each member's
        days = None if val.group is None else val.group[watched]
        val_in = EnsembleInput({n: p.val for n, p in parts.items()}, days)
        # `trial_train` set: the trials train each member on its own trials' rows, and the
        # final model, refitted as a sampled study's is (`fit_best`), on all of them
        return Matrices(train=parts, val=val_in, trial_train=parts)

    def frame_matrices(
        self, x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray
    ) -> Matrices:
        """Not for an ensemble: walk-forward windows tune the windows' mean AUC, which a blend
        does not have (its `tuning.metric` needs `split.kind=single`)."""
        raise ValueError("model=ensemble has no walk-forward windows (split.kind=single)")

    def scoring_matrix(self, rows: Rows, matrices: Matrices) -> EnsembleInput:
        """The rows in every member's form, with their days."""
        parts = {n: m.scoring_matrix(rows, matrices.train[n]) for n, m in self.members.items()}
        days = None if rows.group is None else rows.group[rows.rows]
        return EnsembleInput(parts, days)

    def fit(
        self,
        params: dict[str, Any],
        matrices: Matrices,
        eval_every: int = 1,
        trial: optuna.Trial | None = None,
    ) -> EnsembleFitted:
        """Every member trained on its matrices, early-stopping on its own validation metric
        every `eval_every` rounds; `trial` is not told (no pruning: see the module). A trial's
        members train on their trials' rows; the final model's (`trial_train` None, as
        `tuning.refit.fit_best` hands it) on all their training rows."""
        own, parts = self._params(params), dict(matrices.train)
        if matrices.trial_train is None:  # the final model: all training rows
            parts = {n: _all_rows(p) for n, p in parts.items()}
        return EnsembleFitted(
            {n: m.fit(own[n], parts[n], eval_every) for n, m in self.members.items()}
        )

    def refit(self, params: dict[str, Any], train: Any, rounds: int) -> EnsembleFitted:
        """Every member on all its training rows (`train`: the members' matrices), early-
        stopping on validation: members stop at different rounds, one `rounds` cannot serve
        them (the pipeline's final model is `fit` on all rows, `tuning.refit.fit_best`)."""
        return self.fit(params, Matrices(train=train, val=None))


def _all_rows(matrices: Matrices) -> Matrices:
    """A member's matrices training on all its rows (its trials' sample dropped)."""
    if matrices.trial_train is None:
        return matrices
    return replace(matrices, train=matrices.full_train(), trial_train=None)
