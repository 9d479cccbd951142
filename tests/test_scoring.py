"""Tuning for what a trader reads (`tuning.metric`): trials scored per validation day (top-k
precision, Rank IC) over whole days, logged under the metric's own name."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.models.xgboost.fitted import XGBoostFitted
from ashare_autotune.tuning.scoring import make_scorer, whole_days


def test_a_day_sample_keeps_whole_days_within_the_row_budget() -> None:
    day = np.repeat(np.arange(50), 20)  # 50 days of 20 rows
    rows = np.arange(200, 1000)  # days 10..49
    chosen = whole_days(day, rows, 300, seed=3)
    assert len(chosen) == 300 and np.all(np.diff(chosen) > 0)
    counts = pd.Series(day[chosen]).value_counts()
    assert (counts == 20).all() and counts.index.min() >= 10  # whole days, from `rows` only
    np.testing.assert_array_equal(chosen, whole_days(day, rows, 300, seed=3))  # seeded
    assert whole_days(day, rows, None, seed=3) is rows


def _planted(n_days: int = 30, per_day: int = 40) -> tuple[xgb.DMatrix, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = n_days * per_day
    x = rng.normal(size=(n, 3)).astype(np.float32)
    fwd = 0.02 * x[:, 0] + rng.normal(scale=0.02, size=n)
    rows = pd.DataFrame(
        {
            "trade_date": np.repeat(pd.bdate_range("2024-01-01", periods=n_days), per_day),
            "label": (fwd >= 0.01).astype(np.int8),
            "fwd_return": fwd.astype(np.float32),
        }
    )
    return xgb.DMatrix(x, rows["label"].to_numpy()), rows


@pytest.mark.parametrize(
    ("metric", "key"), [("topk_precision", "topk_precision_mean"), ("rank_ic", "rank_ic_mean")]
)
def test_the_score_is_the_daily_metric_of_the_booster_at_its_best_round(
    metric: str, key: str
) -> None:
    dval, rows = _planted()
    booster = xgb.train(
        {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1},
        dval,
        num_boost_round=30,
        evals=[(dval, "val")],
        early_stopping_rounds=3,
        verbose_eval=False,
    )
    score = make_scorer(metric, dval, rows, top_k=5)
    proba = booster.predict(dval, iteration_range=(0, booster.best_iteration + 1))
    expected = summarise_signal(daily_signal(rows.assign(score=proba), 5))[key]
    fitted = XGBoostFitted(booster, booster.best_iteration + 1)
    assert score(fitted) == pytest.approx(expected)
    assert score(fitted) > 0.1  # the planted signal is found
    assert make_scorer("auc", dval, rows, top_k=5) is None


def test_a_per_day_metric_is_the_objective_and_the_trials_metric(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app(
        "tuning.metric=topk_precision", "tuning.n_trials=2", "registry.register=false"
    )
    result = run_training(app)
    runs = mlflow.search_runs(experiment_ids=[result.experiment_id])
    trials = runs[runs["tags.mlflow.parentRunId"] == result.run_id]
    done = trials[trials["tags.state"] == "COMPLETE"]
    assert len(done) >= 1 and done["metrics.val_topk_precision_mean"].between(0, 1).all()
    assert "metrics.val_auc" not in trials or trials["metrics.val_auc"].isna().all()
    best = done["metrics.val_topk_precision_mean"].max()
    assert result.metrics["best_trial_val_topk_precision_mean"] == pytest.approx(best)
    assert 0.4 < result.metrics["best_trial_val_auc"] < 1  # the AUC of that trial, not the score


def test_a_per_day_metric_needs_a_single_split(compose_app: Callable[..., AppConfig]) -> None:
    with pytest.raises(ConfigError, match="tuning.metric"):
        compose_app("tuning.metric=rank_ic", "split=walk_forward")
