"""Tuning internals that the pipeline tests do not pin down."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import optuna
import xgboost as xgb

from ashare_autotune.tuning import OBSERVATION_KEY, PeriodicPruningCallback


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
