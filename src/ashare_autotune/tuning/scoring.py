"""Scoring a trial by what a trader reads (`tuning.metric`): each validation day's top-k
precision or Rank IC over the day's candidates, averaged over days (`evaluation.signal`).

Early stopping and pruning still watch validation AUC every few rounds (cheap, and it is a
per-round curve); the trial's value is the chosen metric of the booster at its best round, on
whole validation days (a per-day statistic needs every candidate of its day).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal

# tuning.metric -> the trial's metric name in MLflow (`<segment>_<metric>`)
TRIAL_METRICS = {
    "auc": "val_auc",
    "topk_precision": "val_topk_precision_mean",
    "rank_ic": "val_rank_ic_mean",
}
SIGNAL_COLUMNS = ["trade_date", "label", "fwd_return"]


def validation_rows(
    frame: pd.DataFrame, val: np.ndarray, tuning: TuningConfig
) -> tuple[np.ndarray, int | None, pd.DataFrame | None]:
    """The validation rows the trials are evaluated on, and what the objective needs of them.

    With `tuning.metric=auc`: every validation row, sampled to `tuning.watch_rows` later (by
    row). With a per-day metric: a seeded sample of whole days of at most `watch_rows` rows.

    Args:
        frame: the dataset's rows (day, trade_date, label, fwd_return).
        val: boolean mask of its validation rows.
        tuning: the metric, watch_rows and seed.

    Returns:
        (positions of the rows, the row sample size still to apply, and trade_date, label and
        fwd_return of the rows for a per-day metric, else None).
    """
    rows = np.flatnonzero(val)
    if tuning.metric == "auc":
        return rows, tuning.watch_rows, None
    rows = whole_days(frame["day"].to_numpy(), rows, tuning.watch_rows, tuning.seed)
    return rows, None, frame.loc[rows, SIGNAL_COLUMNS].reset_index(drop=True)


def whole_days(day: np.ndarray, rows: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """A seeded sample of whole days of `rows` holding at most `max_rows` rows (all rows when
    they fit; at least one day), in row order.

    Args:
        day: the trading-day number of every row of the frame.
        rows: positions of the candidate rows (e.g. validation) in the frame.
        max_rows: the most rows to keep (None: all).
        seed: seed of the sample.
    """
    if max_rows is None or len(rows) <= max_rows:
        return rows
    days, sizes = np.unique(day[rows], return_counts=True)
    order = np.random.default_rng(seed).permutation(len(days))
    fits = np.cumsum(sizes[order]) <= max_rows
    fits[0] = True
    chosen = days[order[fits]]
    return rows[np.isin(day[rows], chosen)]


def make_scorer(
    metric: str, dval: xgb.DMatrix, rows: pd.DataFrame | None, top_k: int
) -> Callable[[xgb.Booster], float] | None:
    """The trial's value of a booster: `metric` on validation rows, per day then averaged
    (None for auc, which early stopping already measures, or without rows).

    Args:
        metric: "topk_precision" (mean daily precision of the top k) or "rank_ic" (mean daily
            Spearman correlation of the score and the forward return).
        dval: the validation rows' features (whole days).
        rows: trade_date, label and fwd_return of the same rows, in the same order.
        top_k: the daily list's size (`trading.top_k`).
    """
    if metric == "auc" or rows is None:
        return None
    key = {"topk_precision": "topk_precision_mean", "rank_ic": "rank_ic_mean"}[metric]
    frame = rows.loc[:, SIGNAL_COLUMNS].reset_index(drop=True)

    def score(booster: xgb.Booster) -> float:
        best = getattr(booster, "best_iteration", None)
        rounds = (0, best + 1) if best is not None else (0, 0)
        proba = booster.predict(dval, iteration_range=rounds)
        return float(summarise_signal(daily_signal(frame.assign(score=proba), top_k))[key])

    return score


def best_trial_metrics(study: optuna.Study, metric: str) -> dict[str, float]:
    """The best trial's objective (`best_trial_<its trial metric>`) and its validation AUC
    (`best_trial_val_auc`: the objective itself with `tuning.metric=auc`)."""
    best = study.best_trial
    auc = best.user_attrs.get("val_auc", study.best_value)
    return {"best_trial_val_auc": float(auc), f"best_trial_{TRIAL_METRICS[metric]}": best.value}
