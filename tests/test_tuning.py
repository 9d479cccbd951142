"""Tuning internals that the pipeline tests do not pin down."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from ashare_autotune.config import ModelConfig, ParamSpec
from ashare_autotune.tuning import (
    OBSERVATION_KEY,
    PeriodicPruningCallback,
    base_params,
    build_matrices,
    build_matrices_in_batches,
    make_objective,
)


def _train_with_pruning(period: int, rounds: int) -> optuna.trial.FrozenTrial:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=400) > 0).astype(np.int8)
    dtrain, dval = xgb.DMatrix(x[:300], y[:300]), xgb.DMatrix(x[300:], y[300:])
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    xgb.train(
        {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1, "max_depth": 2},
        dtrain,
        num_boost_round=rounds,
        evals=[(dval, "val")],
        callbacks=[PeriodicPruningCallback(trial, OBSERVATION_KEY, period)],
        verbose_eval=False,
    )
    study.tell(trial, 0.5)
    return study.trials[0]


def test_pruning_callback_reports_every_period_rounds() -> None:
    trial = _train_with_pruning(period=10, rounds=35)
    assert sorted(trial.intermediate_values) == [9, 19, 29]
    assert all(0.5 <= v <= 1 for v in trial.intermediate_values.values())


def test_pruning_callback_with_period_one_reports_every_round() -> None:
    trial = _train_with_pruning(period=1, rounds=5)
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3, 4]


def _omp_policy_after_import(env: dict[str, str]) -> str:
    code = "import os, ashare_autotune; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_importing_the_package_makes_openmp_waiters_sleep_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _omp_policy_after_import(env) == "PASSIVE"
    assert _omp_policy_after_import(env | {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def _panel(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] + rng.normal(size=n) > 0).astype(np.int8)
    frame["day"] = np.arange(n) % 100
    return frame


def _segments(frame: pd.DataFrame, masks: dict[str, np.ndarray]) -> list[tuple]:
    return [(frame, np.flatnonzero(masks[name])) for name in ("train", "val")]


def test_batched_matrices_hold_the_segment_rows_labels_and_feature_names() -> None:
    frame = _panel()
    masks = {"train": frame["day"].to_numpy() < 60, "val": frame["day"].to_numpy() >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["c", "a"], "label", 32, 1, batch_rows=50
    )
    assert m.train.feature_names == ["c", "a"] and m.val.feature_names == ["c", "a"]
    assert m.train.num_row() == masks["train"].sum() and m.val.num_row() == masks["val"].sum()
    np.testing.assert_array_equal(m.train.get_label(), frame.loc[masks["train"], "label"])
    np.testing.assert_array_equal(m.val.get_label(), frame.loc[masks["val"], "label"])


def test_batched_matrices_in_one_batch_train_the_same_model_as_segment_copies() -> None:
    frame = _panel()
    masks = {"train": frame["day"].to_numpy() < 60, "val": frame["day"].to_numpy() >= 70}
    batched = build_matrices_in_batches(*_segments(frame, masks), ["a", "b"], "label", 32, 1)
    train, val = frame.loc[masks["train"]], frame.loc[masks["val"]]
    copied = build_matrices(
        train[["a", "b"]], train["label"], val[["a", "b"]], val["label"], 32, 1
    )
    params = {"objective": "binary:logistic", "max_bin": 32, "nthread": 1, "max_depth": 2}
    preds = [xgb.train(params, m.train, 5).predict(m.val) for m in (batched, copied)]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_large_validation_is_watched_on_a_sample_and_scored_on_all_rows() -> None:
    """Early stopping and pruning see `watch_rows` sampled rows; the trial's value is the AUC
    over the whole validation segment at the best iteration."""
    frame = _panel(2000)
    days = frame["day"].to_numpy()
    masks = {"train": days < 60, "val": days >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["a", "b"], "label", 32, 1, watch_rows=100
    )
    assert m.watch is not None and m.watch.num_row() == 100
    assert set(m.watch.get_label()) <= set(m.val.get_label())
    model = ModelConfig(max_bin=32, num_boost_round=30, early_stopping_rounds=5, n_jobs=1)
    space = {"max_depth": ParamSpec(type="int", low=2, high=3)}
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(m, model, space), n_trials=1)
    trial = study.trials[0]
    booster = xgb.train(
        base_params(model) | trial.params,
        m.train,
        num_boost_round=trial.user_attrs["best_iteration"] + 1,
    )
    expected = roc_auc_score(frame.loc[masks["val"], "label"], booster.predict(m.val))
    assert trial.value == pytest.approx(expected)
    assert "watch_auc" in trial.user_attrs


def test_small_validation_is_watched_in_full() -> None:
    frame = _panel()
    days = frame["day"].to_numpy()
    masks = {"train": days < 60, "val": days >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["a"], "label", 32, 1, watch_rows=10_000
    )
    assert m.watch is None
