"""The study's XGBoost matrices: train and validation quantised once, shared by every trial."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xgboost as xgb

from ashare_autotune.modelling.dataset import Dataset

# a frame and the positions of one segment's rows in it
Segment = tuple[pd.DataFrame, np.ndarray]


@dataclass
class Matrices:
    """Training and validation matrices, built once per study and shared by every trial."""

    train: xgb.QuantileDMatrix | None  # None during a sampled study (`rebuild_train`)
    # The validation rows evaluated every `eval_every` rounds (early stopping, pruning, the
    # trial's value). `build_matrices_in_batches` makes it a plain DMatrix of all of them, or
    # of a seeded sample when there are many: AUC over millions of rows every round cost
    # several times more than the round itself, and XGBoost predicts new trees faster on raw
    # features than on quantised bins, with the same predictions (benchmarks/README.md).
    val: xgb.DMatrix
    # A sample of the training rows the trials train on when train is large; None: all of it.
    # The final model is refitted on all of `train` (`fit_best`).
    trial_train: xgb.QuantileDMatrix | None = None
    # Quantises all training rows again, on the same cuts, when `train` was not kept during the
    # study (None when it was): at 3.3M rows x 198 features it is 1.5 GB the trials never read.
    rebuild_train: Callable[[], xgb.QuantileDMatrix] | None = None

    def full_train(self) -> xgb.QuantileDMatrix:
        """All training rows (quantised again when the study did not keep them)."""
        if self.train is not None:
            return self.train
        if self.rebuild_train is None:
            raise ValueError("Matrices: neither train nor rebuild_train")
        return self.rebuild_train()


def build_matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    max_bin: int,
    n_jobs: int,
) -> Matrices:
    """Quantise train once (max_bin must equal the booster's) and validation on train's cuts.

    For the walk-forward windows, all alive during the study: quantised, validation takes half
    the memory of a plain DMatrix, for evaluations ~30% slower (same predictions).
    """
    dtrain = xgb.QuantileDMatrix(x_train, y_train, max_bin=max_bin, nthread=n_jobs)
    dval = xgb.QuantileDMatrix(x_val, y_val, ref=dtrain, max_bin=max_bin, nthread=n_jobs)
    return Matrices(train=dtrain, val=dval)


@dataclass
class Rows:
    """One segment's rows for XGBoost: features read by position, and the label of each
    position. `read(positions)` takes increasing positions and returns their feature rows in
    model column order (a frame's rows, or a `feature_store`'s)."""

    read: Callable[[np.ndarray], pd.DataFrame]
    label: np.ndarray  # of every position
    rows: np.ndarray  # the positions to use, increasing


class RowBatches(xgb.DataIter):
    """Rows of a segment, a batch at a time, for a `QuantileDMatrix`.

    XGBoost quantises the batches as they come, so a segment of a large panel becomes a matrix
    without first being copied out in full (0.4 GB at whole-market scale with 18 features,
    2.7 GB with 198).
    """

    def __init__(self, rows: Rows, batch_rows: int) -> None:
        self._source, self._batch_rows = rows, batch_rows
        self._at = 0
        super().__init__()

    def next(self, input_data: Callable[..., None]) -> bool:
        """Hand XGBoost the next batch; False when every row was given."""
        rows = self._source.rows
        if self._at >= len(rows):
            return False
        batch = rows[self._at : self._at + self._batch_rows]
        input_data(data=self._source.read(batch), label=self._source.label[batch])
        self._at += self._batch_rows
        return True

    def reset(self) -> None:
        """Start again from the first row (XGBoost reads the batches twice)."""
        self._at = 0


def frame_rows(frame: pd.DataFrame, columns: list[str], label: str, rows: np.ndarray) -> Rows:
    """`Rows` of a frame: its `columns` at positions `rows`, labels from its `label` column."""
    where = [frame.columns.get_loc(c) for c in columns]
    return Rows(lambda at: frame.iloc[at, where], frame[label].to_numpy(), rows)


def build_matrices_in_batches(
    train: Segment,
    val: Segment,
    columns: list[str],
    label: str,
    max_bin: int,
    n_jobs: int,
    batch_rows: int = 1 << 20,
    watch_rows: int | None = None,
    trial_rows: int | None = None,
    seed: int = 0,
) -> Matrices:
    """Like `build_matrices`, from a panel's rows in batches instead of copies of the segments,
    with validation as a plain DMatrix of the rows evaluated (`build_matrices_from_rows`).

    Args:
        train: the frame holding the training rows and their positions in it.
        val: the frame holding the validation rows and their positions in it.
        columns: the feature columns, in model order.
        label: the label column.
        max_bin, n_jobs, batch_rows, watch_rows, trial_rows, seed: see
            `build_matrices_from_rows`.
    """
    return build_matrices_from_rows(
        frame_rows(train[0], columns, label, train[1]),
        frame_rows(val[0], columns, label, val[1]),
        max_bin,
        n_jobs,
        batch_rows=batch_rows,
        watch_rows=watch_rows,
        trial_rows=trial_rows,
        seed=seed,
    )


def build_matrices_from_rows(
    train: Rows,
    val: Rows,
    max_bin: int,
    n_jobs: int,
    batch_rows: int = 1 << 20,
    watch_rows: int | None = None,
    trial_rows: int | None = None,
    seed: int = 0,
    watch_quantised: bool = False,
    keep_train: bool = True,
) -> Matrices:
    """Train (and the trials' sample of it) quantised batch by batch; validation as a plain
    DMatrix of the rows evaluated (or quantised on train's cuts).

    Args:
        train: the training rows.
        val: the validation rows.
        max_bin: histogram bins (must equal the booster's).
        n_jobs: threads.
        batch_rows: rows per batch.
        watch_rows: when validation has more rows, `val` holds a seeded sample of this many.
        trial_rows: when train has more rows, also build `trial_train` from a seeded sample
            of this many of them.
        seed: seed of the samples.
        watch_quantised: validation as a `QuantileDMatrix` on train's cuts: ~1 byte an entry
            instead of a plain DMatrix's 8, the same predictions, slower to evaluate.
        keep_train: False: when the trials train on a sample, do not hold all training rows
            during the study; `Matrices.full_train` quantises them again (same cuts) for the
            final model.
    """

    def sample(rows: np.ndarray, n: int | None) -> np.ndarray:
        """A seeded sample of `n` of `rows`, in order; all of them when there are not more."""
        if n is None or len(rows) <= n:
            return rows
        return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))

    def quantise(seg: Rows, ref: xgb.QuantileDMatrix | None) -> xgb.QuantileDMatrix:
        batches = RowBatches(seg, batch_rows)
        return xgb.QuantileDMatrix(batches, ref=ref, max_bin=max_bin, nthread=n_jobs)

    dtrain = quantise(train, None)
    watched = sample(val.rows, watch_rows)
    if watch_quantised:
        dval = quantise(replace(val, rows=watched), dtrain)
    else:
        dval = xgb.DMatrix(val.read(watched), val.label[watched], nthread=n_jobs)
    trial_sample = sample(train.rows, trial_rows)
    if len(trial_sample) == len(train.rows):
        return Matrices(train=dtrain, val=dval)
    trial = quantise(replace(train, rows=trial_sample), dtrain)
    if keep_train:
        return Matrices(train=dtrain, val=dval, trial_train=trial)
    # the same rows in the same batches give the same cuts: the trials' and validation's
    return Matrices(None, dval, trial, rebuild_train=lambda: quantise(train, None))


def dataset_rows(ds: Dataset, name: str, frame_rows: np.ndarray) -> Rows:
    """The rows of `ds.frame` at increasing positions `frame_rows` (all in segment `name`) as
    XGBoost `Rows`, read from the frame or the feature store."""
    segment = ds.masks(all_rows=True)[name]
    positions = np.cumsum(segment)[frame_rows] - 1  # row numbers among the segment's rows
    label = ds.frame["label"].to_numpy()[segment]
    return Rows(lambda at: ds.features(name, at), label, positions)
