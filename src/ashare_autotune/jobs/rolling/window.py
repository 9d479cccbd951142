"""One window of the rolling retrain: its matrices (one window's at a time), its fit and the
scores of its step, every candidate scored by the model that existed that day."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.evaluation.candidates import choose_threshold
from ashare_autotune.evaluation.metrics import classification_metrics
from ashare_autotune.evaluation.records import SOURCE_COLUMNS, prediction_record, signal_metrics
from ashare_autotune.jobs.pipeline_data import row_options
from ashare_autotune.modelling.dataset import PREDICT_ROWS, Dataset
from ashare_autotune.modelling.rolling_schedule import RollWindow, span_dates
from ashare_autotune.modelling.split import SplitPlan
from ashare_autotune.models.base import (
    FittedModel,
    Matrices,
    ScoreModel,
    batched_scores,
    dataset_rows,
    sample_rows,
)
from ashare_autotune.tuning import scoring

log = logging.getLogger(__name__)
SEGMENT = "train"  # a span dataset holds every row in this segment (`span_dataset`)
STEP_SIGNAL = ("rank_ic_mean", "rank_ic_t", "ic_mean", "topk_precision_mean")


@dataclass
class WindowData:
    """A window's matrices and what its trials are scored with (`scoring.validation_rows`)."""

    matrices: Matrices
    per_day: Any


@dataclass
class WindowFit:
    """A window's model and what it was chosen with."""

    fitted: FittedModel
    rounds: int
    threshold: float
    feasible: bool
    choice: dict[str, Any]  # the `ThresholdChoice` on validation, without its frontier
    metrics: dict[str, float]  # val_* of the early-stopped model at the threshold


def window_view(ds: Dataset, w: RollWindow) -> Dataset:
    """The span dataset seen through a window (masks only: its features stay in the span's
    store, read by frame position)."""
    return dataclasses.replace(ds, plan=SplitPlan(w.train, w.val, w.score, ds.plan.embargo))


def rows_in(ds: Dataset, span: tuple[int, int], only: np.ndarray | None = None) -> np.ndarray:
    """Frame positions of the rows whose day is in [span) (and `only`, when given)."""
    day = ds.frame["day"].to_numpy()
    inside = (day >= span[0]) & (day < span[1])
    return np.flatnonzero(inside if only is None else inside & only)


def window_matrices(
    app: AppConfig,
    ds: Dataset,
    model: ScoreModel,
    target: np.ndarray,
    train_span: tuple[int, int],
    w: RollWindow,
    sampled: bool,
    fit_rows: int | None = None,
) -> WindowData:
    """The model's matrices of a window: the trained rows of `train_span`, validation watched.

    Args:
        app: the configuration (tuning sample sizes, metric).
        ds: the span dataset.
        model: the configured model.
        target: the objective's target of every frame row (NaN: not trained on).
        train_span: the days trained on (the window's train, or train + validation).
        w: the window (its validation days).
        sampled: the trials train on `tuning.trial_rows` (a tuning window).
        fit_rows: train on a seeded sample of this many of the span's rows (None: all).
    """
    trained = np.isfinite(target)
    val, watch, per_day = scoring.validation_rows(window_view(ds, w), app.tuning, trained)
    train = sample_rows(rows_in(ds, train_span, trained), fit_rows, app.tuning.seed)
    trial_rows = app.tuning.trial_rows if sampled else None
    options = row_options(app.tuning, len(ds.feature_names), len(val), watch, trial_rows)
    matrices = model.build_matrices(
        dataset_rows(ds, SEGMENT, train, target), dataset_rows(ds, SEGMENT, val, target), options
    )
    return WindowData(matrices, per_day)


def score_rows(ds: Dataset, rows: np.ndarray, fitted: FittedModel) -> np.ndarray:
    """The model's score of frame rows (increasing positions), read `PREDICT_ROWS` at a time
    (`models.base.batched_scores`: an ensemble's blend ranks each row within its day)."""

    def score_batches(score: Callable[[Any], np.ndarray]) -> np.ndarray:
        parts = [
            np.asarray(score(ds.features(SEGMENT, rows[i : i + PREDICT_ROWS])))
            for i in range(0, len(rows), PREDICT_ROWS)
        ]
        return np.concatenate(parts) if parts else np.empty(0, np.float32)

    return batched_scores(fitted, score_batches, lambda: ds.frame["trade_date"].to_numpy()[rows])


def counted_rows(ds: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(0/1 labels with 0 where not counted, signal days, counted) of frame rows: a row counts
    by label when its entry fills and its label is known."""
    frame = ds.frame.iloc[rows]
    y = frame["label"].to_numpy(np.float64)
    counted = frame["fillable"].to_numpy(bool) & np.isfinite(y)
    return np.where(counted, y, 0.0), frame["trade_date"].to_numpy(), counted


def fit_window(
    app: AppConfig,
    ds: Dataset,
    model: ScoreModel,
    data: WindowData,
    params: dict[str, Any],
    w: RollWindow,
) -> WindowFit:
    """Train with `params` early-stopping on the window's validation, choose its threshold on
    validation (every candidate), measure validation at it."""
    full = dataclasses.replace(data.matrices, train=data.matrices.full_train(), trial_train=None)
    fitted = model.fit(params, full, app.tuning.eval_every)
    val_rows = rows_in(ds, w.val)
    proba = score_rows(ds, val_rows, fitted)
    y, days, counted = counted_rows(ds, val_rows)
    choice = choose_threshold(app.threshold, app.model.objective, y, proba, days, counted)
    cap = app.threshold.max_picks_per_day
    metrics = classification_metrics(y, proba, choice.threshold, "val", days, cap, counted)
    kept = {
        f.name: np.asarray(getattr(choice, f.name)).item()  # plain JSON values
        for f in dataclasses.fields(choice)
        if f.name != "frontier"
    }
    return WindowFit(fitted, fitted.best_round, choice.threshold, choice.feasible, kept, metrics)


def scored_record(
    app: AppConfig,
    ds: Dataset,
    span: tuple[int, int],
    fitted: FittedModel,
    threshold: float,
    k: int,
    fit_span: tuple[int, int],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every candidate of the days `span` scored by `fitted` (the model of window `k`, trained
    on the labels of `fit_span`), picked at `threshold`; and the frame rows scored."""
    rows = rows_in(ds, span)
    proba = score_rows(ds, rows, fitted)
    cap = app.threshold.max_picks_per_day
    record = prediction_record(ds.frame.iloc[rows][SOURCE_COLUMNS], proba, threshold, cap)
    fit_start, fit_end = span_dates(ds.calendar, fit_span)
    record = record.assign(
        window=np.int32(k), threshold=threshold, fit_start=fit_start, fit_end=fit_end
    )
    return record, rows


def step_record(
    app: AppConfig,
    ds: Dataset,
    w: RollWindow,
    fitted: FittedModel,
    fit: WindowFit,
    fit_span: tuple[int, int],
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every candidate of the window's step scored by `fitted`, with the window id and the
    days its labels trained on; and the step's metrics (`step_*`)."""
    record, rows = scored_record(app, ds, w.score, fitted, fit.threshold, w.k, fit_span)
    proba = record["probability"].to_numpy()
    cap = app.threshold.max_picks_per_day
    y, days, counted = counted_rows(ds, rows)
    metrics = classification_metrics(y, proba, fit.threshold, "step", days, cap, counted)
    signal = signal_metrics(record, app.trading.top_k, "step")
    metrics |= {f"step_{m}": signal[f"step_{m}"] for m in STEP_SIGNAL}
    return record, metrics
