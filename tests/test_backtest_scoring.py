"""Tuning for the account (`tuning.metric=bt_information_ratio`): a trial's value is the
information ratio after costs of the validation backtest of its booster, with the test
backtest's engine, rules, costs and benchmark, on every eligible validation row, and no trial
reads the test window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest_window import (
    BacktestInputs,
    run_window_backtest,
    signal_scores,
    window_inputs,
)
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.dataset import Dataset, build_dataset
from ashare_autotune.models.base import Matrices
from ashare_autotune.models.build import build_model
from ashare_autotune.models.xgboost.fitted import XGBoostFitted
from ashare_autotune.models.xgboost.matrices import build_matrices_in_batches
from ashare_autotune.tuning import backtest_scoring, scoring

METRIC = "tuning.metric=bt_information_ratio"
PARAMS = {"learning_rate": 0.3, "max_depth": 3}


@pytest.fixture(scope="module")
def study(
    compose_app: Callable[..., AppConfig],
) -> tuple[AppConfig, Dataset, BacktestInputs, Matrices, backtest_scoring.ScoredRows]:
    """The debug synthetic market prepared as the training job does for this metric."""
    app = compose_app(METRIC, "data.n_stocks=30")
    market = load_market(app.data)
    bench = label_benchmark(app.data, app.label, market)
    ds = build_dataset(market, app.features, app.label, app.split, app.universe.rules(), bench)
    index_bars = load_benchmark(app.data, market, app.backtest.benchmark)
    inputs = window_inputs(app.backtest, index_bars, market, scoring.backtest_start(ds))
    val, watch, scored = scoring.validation_rows(ds, app.tuning)
    matrices = build_matrices_in_batches(
        (ds.frame, np.flatnonzero(ds.masks()["train"])),
        (ds.frame, val),
        ds.feature_names,
        "label",
        app.model.max_bin,
        1,
        watch_rows=watch,
    )
    assert isinstance(scored, backtest_scoring.ScoredRows)
    return app, ds, inputs, matrices, scored


def _booster(app: AppConfig, matrices: Matrices) -> XGBoostFitted:
    """A trial's model: trained as a trial is, early-stopped on validation AUC."""
    return build_model(app.model).fit(PARAMS, matrices, 1)


def test_the_trial_value_is_the_validation_backtest_of_the_boosters_scores(study) -> None:
    app, ds, inputs, matrices, scored = study
    booster = _booster(app, matrices)
    model = build_model(app.model)
    score = scoring.trial_scorer(
        app.tuning.metric, model, matrices, scored, app.trading.top_k, inputs
    )
    assert score is not None
    value = score(booster)
    # the same scores, from the raw features of every validation row of the universe (also
    # those whose next open cannot fill), backtested as the test segment is
    rows = ds.segment_rows("val", all_rows=True)
    # the unfillable rows are scored too
    assert len(rows) == len(scored.features.rows) > ds.masks()["val"].sum()
    proba = booster.predict(rows[ds.feature_names])  # the fitted model: its missing values
    report = run_window_backtest(inputs, signal_scores(rows, proba, 1.0), "val")
    assert report.metrics["val_bt_trades"] > 0
    assert value == pytest.approx(report.metrics["val_bt_information_ratio"], abs=1e-12)
    assert np.isfinite(value)
    # another booster trades differently: the value follows the scores
    other = model.fit(PARAMS | {"max_depth": 1, "seed": 3}, matrices, 1)
    assert score(other) != value


def test_no_trial_reads_the_test_window(study) -> None:
    app, ds, inputs, matrices, scored = study
    booster = _booster(app, matrices)
    value = backtest_scoring.make_backtest_scorer(
        backtest_scoring.validation_backtest(scored, build_model(app.model), matrices, inputs)
    )(booster)
    test_start = pd.Timestamp(ds.date_range("test")[0])
    # The test window's bars become unusable prices (the simulation refuses them when it
    # reads them), its benchmark closes vanish and its features are garbage: same value.
    later = pd.to_datetime(inputs.bars["trade_date"]) >= test_start
    bars = inputs.bars.copy()
    bars.loc[later, ["open", "close", "pre_close"]] = np.nan
    index = inputs.index_bars.loc[pd.to_datetime(inputs.index_bars["trade_date"]) < test_start]
    frame = ds.frame.copy()
    frame.loc[ds.masks(all_rows=True)["test"], ds.feature_names] = 1e6
    broken = scoring.validation_rows(replace(ds, frame=frame), app.tuning)[2]
    assert isinstance(broken, backtest_scoring.ScoredRows)
    vbt = backtest_scoring.validation_backtest(
        broken, build_model(app.model), matrices, BacktestInputs(bars, index, inputs.cfg)
    )
    assert backtest_scoring.make_backtest_scorer(vbt)(booster) == value
    assert vbt.inputs.bars["trade_date"].max() < test_start
    assert vbt.keys["trade_date"].max() <= pd.Timestamp(ds.date_range("val")[1])


def test_the_backtest_metric_is_the_objective_and_the_trials_metric(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app(METRIC, "tuning.n_trials=2", "registry.register=false")
    result = run_training(app)
    runs = mlflow.search_runs(experiment_ids=[result.experiment_id])
    trials = runs[runs["tags.mlflow.parentRunId"] == result.run_id]
    done = trials[trials["tags.state"] == "COMPLETE"]
    assert len(done) >= 1 and np.isfinite(done["metrics.val_bt_information_ratio"]).all()
    best = result.metrics["best_trial_val_bt_information_ratio"]
    assert best == pytest.approx(done["metrics.val_bt_information_ratio"].max())
    # the test segment is still backtested from its own first day
    parent = runs[runs["run_id"] == result.run_id].iloc[0]
    assert np.isfinite(parent["metrics.test_bt_information_ratio"])


@pytest.mark.parametrize(
    "override", ["backtest.enabled=false", "backtest.strategy=threshold", "split=walk_forward"]
)
def test_the_backtest_metric_needs_a_top_k_backtest_of_one_split(
    compose_app: Callable[..., AppConfig], override: str
) -> None:
    with pytest.raises(ConfigError, match="tuning.metric"):
        compose_app(METRIC, override)
