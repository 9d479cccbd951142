"""Scoring a trial by the validation backtest (`tuning.metric=bt_information_ratio`): the
information ratio after costs of the account trading the booster's scores of every eligible
validation row, with the engine, rules, costs and benchmark of the test backtest
(`evaluation.backtest_window`).

Every validation row of the universe is scored, also one whose T+1 entry will not fill (the
signal at T cannot know; the simulation decides the fills). Its features are quantised once on
the training matrix's cuts (about a byte a value; the same predictions as the raw features) and
the bars are cut at the validation window's last day, so no trial reads the test window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xgboost as xgb

from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    run_window_backtest,
    signal_scores,
    trading_window,
)
from ashare_autotune.tuning.booster import best_round_range
from ashare_autotune.tuning.matrices import RowBatches, Rows

SEGMENT = "val"
METRIC = f"{SEGMENT}_bt_information_ratio"
NEEDS_BACKTEST = "tuning.metric=bt_information_ratio scores each trial by the validation backtest"


@dataclass
class ScoredRows:
    """Which validation rows a backtest trial scores: their features, read in batches from the
    dataset (its frame or feature store, not a copy), and their ts_code and trade_date."""

    features: Rows
    keys: pd.DataFrame  # ts_code, trade_date of the rows, in order
    n_jobs: int  # threads to quantise them with
    max_bin: int  # the training matrix's (and the booster's)


@dataclass
class ValidationBacktest:
    """The rows a trial scores, quantised, with their ts_code and trade_date, and the bars and
    benchmark of the validation window only."""

    dval: xgb.QuantileDMatrix
    keys: pd.DataFrame  # ts_code, trade_date of dval's rows, in order
    inputs: BacktestInputs


def validation_backtest(
    scored: ScoredRows,
    ref: xgb.QuantileDMatrix,
    inputs: BacktestInputs | None,
    batch_rows: int = 1 << 20,
) -> ValidationBacktest:
    """Quantise the scored rows on `ref`'s cuts and keep the bars of their window only.

    Args:
        scored: every eligible validation row (`ScoredRows`).
        ref: the training matrix (its cuts; its max_bin is the booster's).
        inputs: the backtest's bars from the validation start on, benchmark and configuration
            (None: `backtest.enabled=false`, which the config refuses with this metric).
        batch_rows: rows quantised at a time.

    Returns:
        The `ValidationBacktest`.
    """
    if inputs is None:
        raise ConfigError(f"config key 'backtest.enabled'=False: {NEEDS_BACKTEST}")
    # no label is read: the unfillable rows have none, and prediction needs none
    unused = np.zeros(len(scored.features.label), np.float32)
    batches = RowBatches(replace(scored.features, label=unused), batch_rows)
    dval = xgb.QuantileDMatrix(batches, ref=ref, max_bin=scored.max_bin, nthread=scored.n_jobs)
    keys = scored.keys
    return ValidationBacktest(dval, keys, window_only(inputs, keys["trade_date"]))


def window_only(inputs: BacktestInputs, signal_days: pd.Series) -> BacktestInputs:
    """The bars and benchmark closes up to the last day the signals of `signal_days` trade
    (`max_days` market days after the last one): nothing after it is kept."""
    _, end = trading_window(inputs, signal_days)
    bars = inputs.bars.loc[pd.to_datetime(inputs.bars["trade_date"]) <= end]
    index = inputs.index_bars.loc[pd.to_datetime(inputs.index_bars["trade_date"]) <= end]
    return BacktestInputs(bars.reset_index(drop=True), index.reset_index(drop=True), inputs.cfg)


def make_backtest_scorer(vbt: ValidationBacktest) -> Callable[[xgb.Booster], float]:
    """The trial's value of a booster: the validation backtest's information ratio after
    costs (annualised, against `backtest.benchmark`) of its scores at its best round."""

    def score(booster: xgb.Booster) -> float:
        proba = booster.predict(vbt.dval, iteration_range=best_round_range(booster))
        # the threshold is chosen after the study: `top_k` (required) ignores the picks
        report = run_window_backtest(vbt.inputs, signal_scores(vbt.keys, proba, 1.0), SEGMENT)
        return float(report.metrics[METRIC])

    return score
