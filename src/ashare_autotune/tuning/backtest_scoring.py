"""Scoring a trial by the validation backtest (`tuning.metric=bt_information_ratio`): the
information ratio after costs of the account trading the model's scores of every eligible
validation row, with the engine, rules, costs and benchmark of the test backtest
(`evaluation.backtest_window`).

Every validation row of the universe is scored, also one whose T+1 entry will not fill (the
signal at T cannot know; the simulation decides the fills). Its features are read once in the
model's own form (`ScoreModel.scoring_matrix`: XGBoost quantises them on the training matrix's
cuts, about a byte a value, with the same predictions as the raw features) and the bars are cut
at the validation window's last day, so no trial reads the test window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    run_window_backtest,
    signal_scores,
    trading_window,
)
from ashare_autotune.models.base import FittedModel, Matrices, Rows, ScoreModel

SEGMENT = "val"
METRIC = f"{SEGMENT}_bt_information_ratio"
NEEDS_BACKTEST = "tuning.metric=bt_information_ratio scores each trial by the validation backtest"


@dataclass
class ScoredRows:
    """Which validation rows a backtest trial scores: their features, read in batches from the
    dataset (its frame or feature store, not a copy), and their ts_code and trade_date."""

    features: Rows
    keys: pd.DataFrame  # ts_code, trade_date of the rows, in order


@dataclass
class ValidationBacktest:
    """The rows a trial scores, in the model's form, with their ts_code and trade_date, and the
    bars and benchmark of the validation window only."""

    dval: Any  # `ScoreModel.scoring_matrix` of the rows
    keys: pd.DataFrame  # ts_code, trade_date of dval's rows, in order
    inputs: BacktestInputs


def validation_backtest(
    scored: ScoredRows,
    model: ScoreModel,
    matrices: Matrices,
    inputs: BacktestInputs | None,
) -> ValidationBacktest:
    """Read the scored rows in the model's form and keep the bars of their window only.

    Args:
        scored: every eligible validation row (`ScoredRows`).
        model: the configured model (`ScoreModel.scoring_matrix`).
        matrices: the study's matrices (XGBoost: train's cuts).
        inputs: the backtest's bars from the validation start on, benchmark and configuration
            (None: `backtest.enabled=false`, which the config refuses with this metric).

    Returns:
        The `ValidationBacktest`.
    """
    if inputs is None:
        raise ConfigError(f"config key 'backtest.enabled'=False: {NEEDS_BACKTEST}")
    # no label is read: the unfillable rows have none, and prediction needs none
    dval = model.scoring_matrix(scored.features, matrices)
    keys = scored.keys
    return ValidationBacktest(dval, keys, window_only(inputs, keys["trade_date"]))


def window_only(inputs: BacktestInputs, signal_days: pd.Series) -> BacktestInputs:
    """The bars and benchmark closes up to the last day the signals of `signal_days` trade
    (`max_days` market days after the last one): nothing after it is kept."""
    _, end = trading_window(inputs, signal_days)
    bars = inputs.bars.loc[pd.to_datetime(inputs.bars["trade_date"]) <= end]
    index = inputs.index_bars.loc[pd.to_datetime(inputs.index_bars["trade_date"]) <= end]
    return BacktestInputs(bars.reset_index(drop=True), index.reset_index(drop=True), inputs.cfg)


def make_backtest_scorer(vbt: ValidationBacktest) -> Callable[[FittedModel], float]:
    """The trial's value of a model: the validation backtest's information ratio after
    costs (annualised, against `backtest.benchmark`) of its scores at its best round."""

    def score(fitted: FittedModel) -> float:
        proba = fitted.predict(vbt.dval)
        # the threshold is chosen after the study: `top_k` (required) ignores the picks
        report = run_window_backtest(vbt.inputs, signal_scores(vbt.keys, proba, 1.0), SEGMENT)
        return float(report.metrics[METRIC])

    return score
