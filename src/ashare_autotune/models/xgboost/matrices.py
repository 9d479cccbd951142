"""XGBoost's matrices of a study: train and validation quantised once, shared by every trial.

In `Matrices` (`models.base`): `train` and `trial_train` are `QuantileDMatrix`es; `val` holds
the validation rows evaluated every `eval_every` rounds, a plain DMatrix of all of them or of a
seeded sample when there are many: AUC over millions of rows every round cost several times
more than the round itself, and XGBoost predicts new trees faster on raw features than on
quantised bins, with the same predictions (benchmarks/README.md). `rebuild_train` quantises all
training rows again, on the same cuts, when they were not kept during a sampled study: at 3.3M
rows x 198 features it is 1.5 GB the trials never read.

With `fill` (`model.missing=fill`, the default) every NaN feature enters as `MISSING_FILL`:
XGBoost's CPU histogram index keeps 1 byte an entry only for a matrix without missing values
(4 bytes with any, and slower rounds: benchmarks/README.md); the fitted model fills its input the
same way (`fitted.XGBoostFitted`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ashare_autotune.modelling.targets import group_order
from ashare_autotune.models.base import Matrices, Rows, by_group, frame_rows, sample_rows

# a frame and the positions of one segment's rows in it
Segment = tuple[pd.DataFrame, np.ndarray]
# A missing feature's value under `model.missing=fill`: below every feature (float32's range
# ends at -3.4e38), so it has a bin of its own and a split can keep it apart.
MISSING_FILL = -3.0e38


def filled(x: Any, fill: float | None) -> Any:
    """A float32 copy of a frame or array `x` with every NaN as `fill`, a frame for a frame
    (None: `x` as it is). NumPy's `putmask`: pandas' `fillna` took ~30x longer on a 500k x 198
    block."""
    if fill is None:
        return x
    values = np.array(x, dtype=np.float32)  # a copy: the caller's data is left as it is
    np.putmask(values, np.isnan(values), np.float32(fill))
    if isinstance(x, pd.DataFrame):
        return pd.DataFrame(values, index=x.index, columns=x.columns, copy=False)
    return values


def build_matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    max_bin: int,
    n_jobs: int,
    fill: float | None = None,
) -> Matrices:
    """Quantise train once (max_bin must equal the booster's) and validation on train's cuts,
    NaN features as `fill` (None: missing).

    For the walk-forward windows, all alive during the study: quantised, validation takes half
    the memory of a plain DMatrix, for evaluations ~30% slower (same predictions).
    """
    x_train, x_val = filled(x_train, fill), filled(x_val, fill)
    dtrain = xgb.QuantileDMatrix(x_train, y_train, max_bin=max_bin, nthread=n_jobs)
    dval = xgb.QuantileDMatrix(x_val, y_val, ref=dtrain, max_bin=max_bin, nthread=n_jobs)
    return Matrices(train=dtrain, val=dval)


class RowBatches(xgb.DataIter):
    """Rows of a segment, a batch at a time, for a `QuantileDMatrix`.

    XGBoost quantises the batches as they come, so a segment of a large panel becomes a matrix
    without first being copied out in full (0.4 GB at whole-market scale with 18 features,
    2.7 GB with 198).
    """

    def __init__(
        self, rows: Rows, batch_rows: int, qid: bool = False, fill: float | None = None
    ) -> None:
        self._source, self._batch_rows, self._qid, self._fill = rows, batch_rows, qid, fill
        self._at = 0
        super().__init__()

    def next(self, input_data: Callable[..., None]) -> bool:
        """Hand XGBoost the next batch (with each row's day as `qid` for a ranker, the rows
        in day order); False when every row was given."""
        rows = self._source.rows
        if self._at >= len(rows):
            return False
        batch = rows[self._at : self._at + self._batch_rows]
        query = {"qid": self._source.group[batch]} if self._qid else {}
        data = filled(self._source.read(batch), self._fill)
        input_data(data=data, label=self._source.label[batch], **query)
        self._at += self._batch_rows
        return True

    def reset(self) -> None:
        """Start again from the first row (XGBoost reads the batches twice)."""
        self._at = 0


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
    ranking: bool = False,
    fill: float | None = None,
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
        ranking: every matrix's rows in day order with the day as `qid` (a ranker's queries);
            validation's `row_order` maps them back to the watched rows' order (`predict`).
        fill: every NaN feature as this value (`MISSING_FILL`; None: missing).
    """

    def quantise(seg: Rows, ref: xgb.QuantileDMatrix | None) -> xgb.QuantileDMatrix:
        batches = RowBatches(by_group(seg) if ranking else seg, batch_rows, ranking, fill)
        return xgb.QuantileDMatrix(batches, ref=ref, max_bin=max_bin, nthread=n_jobs)

    dtrain = quantise(train, None)
    watched = sample_rows(val.rows, watch_rows, seed)
    if watch_quantised:
        dval = quantise(replace(val, rows=watched), dtrain)
    elif ranking:
        ranked = by_group(replace(val, rows=watched))
        at = ranked.rows
        x = filled(ranked.read(at), fill)
        dval = xgb.DMatrix(x, val.label[at], qid=val.group[at], nthread=n_jobs)
    else:
        x = filled(val.read(watched), fill)
        dval = xgb.DMatrix(x, val.label[watched], nthread=n_jobs)
    if ranking:  # XGBoost scores a matrix in its rows' order: the day order
        dval.row_order = group_order(val.group[watched])
    trial_sample = sample_rows(train.rows, trial_rows, seed)
    if len(trial_sample) == len(train.rows):
        return Matrices(train=dtrain, val=dval)
    trial = quantise(replace(train, rows=trial_sample), dtrain)
    if keep_train:
        return Matrices(train=dtrain, val=dval, trial_train=trial)
    # the same rows in the same batches give the same cuts: the trials' and validation's
    return Matrices(None, dval, trial, rebuild_train=lambda: quantise(train, None))
