"""Scoring a trial by what a trader reads (`tuning.metric`): each validation day's top-k
precision or Rank IC over the day's candidates, averaged over days (`evaluation.signal`), or
the validation backtest's information ratio after costs (`backtest_scoring`).

Early stopping and pruning still watch validation AUC every few rounds (cheap, and it is a
per-round curve); the trial's value is the chosen metric of the model at its best round, on
whole validation days (a per-day statistic needs every candidate of its day; the backtest,
every eligible row of every validation day).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pandas as pd

from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.evaluation.backtest_window import BacktestInputs
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import FittedModel, Matrices, ScoreModel, dataset_rows
from ashare_autotune.tuning import backtest_scoring

# tuning.metric -> the trial's metric name in MLflow (`<segment>_<metric>`)
TRIAL_METRICS = {
    "auc": "val_auc",
    "topk_precision": "val_topk_precision_mean",
    "rank_ic": "val_rank_ic_mean",
    "bt_information_ratio": backtest_scoring.METRIC,
}
SIGNAL_COLUMNS = ["trade_date", "label", "fwd_return"]


def validation_rows(
    ds: Dataset, tuning: TuningConfig, trained: np.ndarray | None = None
) -> tuple[np.ndarray, int | None, pd.DataFrame | backtest_scoring.ScoredRows | None]:
    """The validation rows the trials are evaluated on, and what the trial's value needs.

    With `tuning.metric=auc`: every validation row, sampled to `tuning.watch_rows` later (by
    row). With a per-day metric: a seeded sample of whole days of at most `watch_rows` rows.
    With `bt_information_ratio`: as auc for early stopping, and every eligible validation row
    (the unfillable ones too) for the backtest.

    Args:
        ds: the dataset (day, trade_date, label, fwd_return, fillable and the features).
        tuning: the `tuning` group (metric, watch_rows and seed).
        trained: the rows of `ds.frame` the objective has a target for (None: the labelled).

    Returns:
        (positions of the labelled rows in `ds.frame`, the row sample size still to apply,
        and trade_date, label and fwd_return of the rows for a per-day metric, the rows to
        backtest for bt_information_ratio, else None).
    """
    frame = ds.frame
    known = ds.masks()["val"]
    rows = np.flatnonzero(known if trained is None else known & trained)
    if tuning.metric == "auc":
        return rows, tuning.watch_rows, None
    if tuning.metric == "bt_information_ratio":
        scored = np.flatnonzero(ds.masks(all_rows=True)["val"])
        keys = frame.iloc[scored][["ts_code", "trade_date"]].reset_index(drop=True)
        features = dataset_rows(ds, "val", scored)
        scored_rows = backtest_scoring.ScoredRows(features, keys)
        return rows, tuning.watch_rows, scored_rows
    rows = whole_days(frame["day"].to_numpy(), rows, tuning.watch_rows, tuning.seed)
    return rows, None, frame.loc[rows, SIGNAL_COLUMNS].reset_index(drop=True)


def backtest_start(ds: Dataset) -> str:
    """The first day (YYYYMMDD) whose bars the job keeps for backtests: the validation
    segment's (the final model's validation and test backtests, and the trials' with
    `tuning.metric=bt_information_ratio`)."""
    return ds.date_range("val")[0]


def trial_scorer(
    metric: str,
    model: ScoreModel,
    matrices: Matrices,
    rows: pd.DataFrame | backtest_scoring.ScoredRows | None,
    top_k: int,
    backtest: BacktestInputs | None,
) -> Callable[[FittedModel], float] | None:
    """The trial's value of a model for `tuning.metric` (None for auc).

    Args:
        metric: the `tuning.metric`.
        model: the configured model (how it reads the backtest's rows).
        matrices: the study's matrices (validation for a per-day metric, train's cuts for
            the backtest's rows).
        rows: what `validation_rows` returned for the metric.
        top_k: the daily list's size (`trading.top_k`).
        backtest: the bars from the validation start on (`backtest_start`), benchmark and
            configuration, for bt_information_ratio.
    """
    if isinstance(rows, backtest_scoring.ScoredRows):  # bt_information_ratio
        vbt = backtest_scoring.validation_backtest(rows, model, matrices, backtest)
        return backtest_scoring.make_backtest_scorer(vbt)
    return make_scorer(metric, matrices.val, rows, top_k)


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
    metric: str, dval: Any, rows: pd.DataFrame | None, top_k: int
) -> Callable[[FittedModel], float] | None:
    """The trial's value of a model: `metric` on validation rows, per day then averaged
    (None for auc, which early stopping already measures, or without rows).

    Args:
        metric: "topk_precision" (mean daily precision of the top k) or "rank_ic" (mean daily
            Spearman correlation of the score and the forward return).
        dval: the validation rows' features (whole days), in the model's form (`Matrices.val`).
        rows: trade_date, label and fwd_return of the same rows, in the same order.
        top_k: the daily list's size (`trading.top_k`).
    """
    if metric == "auc" or rows is None:
        return None
    key = {"topk_precision": "topk_precision_mean", "rank_ic": "rank_ic_mean"}[metric]
    frame = rows.loc[:, SIGNAL_COLUMNS].reset_index(drop=True)

    def score(fitted: FittedModel) -> float:
        proba = fitted.predict(dval)
        return float(summarise_signal(daily_signal(frame.assign(score=proba), top_k))[key])

    return score


def best_trial_metrics(study: optuna.Study, metric: str) -> dict[str, float]:
    """The best trial's objective (`best_trial_<its trial metric>`) and its validation AUC
    (`best_trial_val_auc`: the objective itself with `tuning.metric=auc`; absent for a
    ranking or regression objective, which early-stops on another score)."""
    best = study.best_trial
    out = {f"best_trial_{TRIAL_METRICS[metric]}": best.value}
    if metric == "auc" or "val_auc" in best.user_attrs:  # not kept for a non-binary objective
        out["best_trial_val_auc"] = float(best.user_attrs.get("val_auc", study.best_value))
    return out
