"""The model protocol: what the tuner, the evaluation and the pyfunc model ask of any model.

A model package owns its library. The configured model (`ScoreModel`, built from the `model=`
group by `build.build_model`) turns rows into its own matrices, trains with early stopping on
validation (and Optuna pruning in a trial) and refits; what it returns (`FittedModel`) scores
rows, explains them by contributions, reports feature importance and saves itself inside the
pyfunc model. Downstream code takes the scores, never the library's booster.

Objectives (`model.objective`, checked against the class's `objectives` by `build_model`):
`binary` on the label, the probability the precision threshold applies to, for every model.
A ranking or regression objective fits the same methods: the rows' `label` is the objective's
target (a day's forward-return quantile, the forward excess return), a ranker also reads each
row's day (`Rows.group`; `by_group` puts the rows in day order), and `FittedModel.predict`
still returns one score per row, in the rows' order (`modelling.targets` builds the targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import optuna
import pandas as pd

from ashare_autotune.config.schema import ModelConfig
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.modelling.targets import group_order


@dataclass
class Rows:
    """One segment's rows: features read by position, and the label of each position.
    `read(positions)` takes increasing positions and returns their feature rows in model column
    order (a frame's rows, or a `feature_store`'s)."""

    read: Callable[[np.ndarray], pd.DataFrame]
    label: np.ndarray  # of every position: the objective's target
    rows: np.ndarray  # the positions to use, increasing
    group: np.ndarray | None = None  # of every position, its day (a ranking objective's query)


def frame_rows(frame: pd.DataFrame, columns: list[str], label: str, rows: np.ndarray) -> Rows:
    """`Rows` of a frame: its `columns` at positions `rows`, labels from its `label` column."""
    where = [frame.columns.get_loc(c) for c in columns]
    return Rows(lambda at: frame.iloc[at, where], frame[label].to_numpy(), rows)


def dataset_rows(
    ds: Dataset, name: str, frame_rows: np.ndarray, target: np.ndarray | None = None
) -> Rows:
    """The rows of `ds.frame` at increasing positions `frame_rows` (all in segment `name`) as
    `Rows`, read from the frame or the feature store, with each row's day as its group.

    Args:
        ds: the dataset.
        name: "train", "val" or "test".
        frame_rows: increasing positions in `ds.frame`, all in the segment.
        target: the objective's target of every row of `ds.frame` (`targets.make_target`;
            None: the label).
    """
    segment = ds.masks(all_rows=True)[name]
    positions = np.cumsum(segment)[frame_rows] - 1  # row numbers among the segment's rows
    values = ds.frame["label"].to_numpy() if target is None else np.asarray(target)
    day = ds.frame["day"].to_numpy()[segment]
    return Rows(lambda at: ds.features(name, at), values[segment], positions, day)


def by_group(rows: Rows) -> Rows:
    """The same rows in day order (a ranker's queries contiguous; a day's rows keep their
    order), read in any order (`Rows.read` is asked for increasing positions only)."""
    if rows.group is None:
        raise ValueError("a ranking objective needs each row's day (Rows.group)")
    at = rows.rows[group_order(rows.group[rows.rows])]
    return Rows(_any_order(rows.read), rows.label, at, rows.group)


def _any_order(read: Callable[[np.ndarray], pd.DataFrame]) -> Callable[[np.ndarray], pd.DataFrame]:
    """`read` of positions in any order: read sorted, handed back in the order asked."""

    def read_any(at: np.ndarray) -> pd.DataFrame:
        order = np.argsort(at, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return read(at[order]).iloc[inverse].reset_index(drop=True)

    return read_any


def sample_rows(rows: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A seeded sample of `n` of `rows`, in order; all of them when there are not more."""
    if n is None or len(rows) <= n:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


@dataclass
class Matrices:
    """A study's training and validation data in the model's own form, built once per study and
    shared by every trial (each field's type is the model's: XGBoost's DMatrix, LightGBM's
    Dataset, ...)."""

    train: Any  # None during a sampled study that did not keep it (`rebuild_train`)
    # The validation rows evaluated during training (early stopping, pruning, the trial's
    # value); `FittedModel.predict` scores it.
    val: Any
    # A sample of the training rows the trials train on when train is large; None: all of it.
    trial_train: Any = None
    # Builds all training rows again when `train` was not kept during the study.
    rebuild_train: Callable[[], Any] | None = None

    def full_train(self) -> Any:
        """All training rows (built again when the study did not keep them)."""
        if self.train is not None:
            return self.train
        if self.rebuild_train is None:
            raise ValueError("Matrices: neither train nor rebuild_train")
        return self.rebuild_train()


@dataclass(frozen=True)
class RowOptions:
    """How a study's rows become matrices (`tuning.watch_rows`, `tuning.trial_rows`, ...)."""

    batch_rows: int = 1 << 20  # rows read at a time
    watch_rows: int | None = None  # validation sample evaluated during training
    trial_rows: int | None = None  # training sample the trials train on
    seed: int = 0  # seed of the samples
    watch_quantised: bool = False  # validation kept compact (XGBoost: on train's cuts)
    keep_train: bool = True  # hold all training rows during a sampled study


class FittedModel(Protocol):
    """A trained model: scores, contributions, importance, and its own saved form."""

    kind: ClassVar[str]  # "xgboost", "lightgbm", ...
    best_round: int  # boosting rounds used to score (its early-stopping best)
    # validation score at `best_round`, higher is better (nan when it did not early-stop): AUC
    # for the binary objective
    best_score: float

    def predict(self, x: Any) -> np.ndarray:
        """One score per row (for the binary objective, the probability of the label) of a
        frame or float32 array in model column order, or of the model's own matrices."""
        ...

    def contributions(self, x: pd.DataFrame) -> np.ndarray:
        """SHAP contributions of every feature to the margin, bias in the last column: each
        row sums to its margin (log-odds for the binary objective)."""
        ...

    def importance(self) -> dict[str, float]:
        """Total gain of each feature used by the model."""
        ...

    def save(self, directory: Path) -> None:
        """Write the model into an empty directory (the pyfunc model's artifact)."""
        ...

    def requirements(self) -> list[str]:
        """pip requirements to load it (`library==version`)."""
        ...


class ScoreModel(Protocol):
    """The configured model: matrices, training with early stopping and pruning, refits."""

    kind: ClassVar[str]
    objectives: ClassVar[tuple[str, ...]]  # the `model.objective` values it supports
    cfg: ModelConfig

    def build_matrices(self, train: Rows, val: Rows, options: RowOptions) -> Matrices:
        """The study's matrices from rows read in batches."""
        ...

    def frame_matrices(
        self, x_train: pd.DataFrame, y_train: np.ndarray, x_val: pd.DataFrame, y_val: np.ndarray
    ) -> Matrices:
        """Matrices of in-memory frames (a walk-forward window)."""
        ...

    def scoring_matrix(self, rows: Rows, matrices: Matrices) -> Any:
        """Rows to score many times (every trial), in the form `FittedModel.predict` takes."""
        ...

    def fit(
        self,
        params: dict[str, Any],
        matrices: Matrices,
        eval_every: int = 1,
        trial: optuna.Trial | None = None,
    ) -> FittedModel:
        """Train with `params` (searched ones; the model adds its fixed ones) on the trials'
        training rows, early-stopping on the objective's validation metric (AUC for binary);
        prune through `trial` when given."""
        ...

    def refit(self, params: dict[str, Any], train: Any, rounds: int) -> FittedModel:
        """Train with `params` on `train` for exactly `rounds` rounds."""
        ...


def segment_scores(ds: Dataset, segment: str, fitted: FittedModel) -> np.ndarray:
    """The model's score of every candidate of a segment, in row order (`Dataset.predict(...,
    all_rows=True)`), by `batched_scores`."""
    return batched_scores(
        fitted,
        lambda score: ds.predict(segment, score, all_rows=True),
        lambda: ds.segment_rows(segment, ["trade_date"], all_rows=True)["trade_date"].to_numpy(),
    )


def batched_scores(
    fitted: FittedModel,
    score_batches: Callable[[Callable[[Any], np.ndarray]], np.ndarray],
    days: Callable[[], np.ndarray],
) -> np.ndarray:
    """The model's scores of rows that `score_batches` reads a batch at a time and scores with
    the function it is handed. A model scored by day (`scored_by_day`: the ensemble's day-rank
    blend) has its members score the batches, then blends them by each row's day (`days`):
    ranked per batch, a day cut by a batch boundary would be two days."""
    if not getattr(fitted, "scored_by_day", False):
        return score_batches(fitted.predict)
    members = score_batches(fitted.member_scores)  # type: ignore[attr-defined]
    return fitted.blend(members, days())  # type: ignore[attr-defined]


def fitted_class_path(fitted: FittedModel) -> str:
    """`module:Class` of a fitted model, stored with it so that the pyfunc model loads it back
    (`tracking.pyfunc_model.load_fitted`)."""
    return f"{type(fitted).__module__}:{type(fitted).__qualname__}"


def fitted_entry(fitted: FittedModel) -> dict[str, Any]:
    """The pyfunc meta's `model` entry: its kind, its class (`fitted_class_path`) and, for a
    model scored by day (`scored_by_day`), `by_day` (`tracking.loaded_model` scores a day a
    call)."""
    entry: dict[str, Any] = {"kind": fitted.kind, "class": fitted_class_path(fitted)}
    return entry | ({"by_day": True} if getattr(fitted, "scored_by_day", False) else {})
