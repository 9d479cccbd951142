"""Tuning internals that the pipeline tests do not pin down."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
import xgboost as xgb
from optuna_integration.xgboost import XGBoostPruningCallback
from sklearn.metrics import roc_auc_score

from ashare_autotune.config.schema import ModelConfig, ParamSpec
from ashare_autotune.models.base import Matrices, Rows, frame_rows
from ashare_autotune.models.xgboost.matrices import (
    build_matrices,
    build_matrices_from_rows,
    build_matrices_in_batches,
)
from ashare_autotune.models.xgboost.model import (
    OBSERVATION_KEY,
    XGBoostModel,
    train_early_stopping,
)
from ashare_autotune.tuning.objective import make_objective
from ashare_autotune.tuning.refit import fit_best, raised_learning_rate
from ashare_autotune.tuning.study import SnapshotPruner, make_pruner


def _matrices(n: int = 400, noise: float = 1.0) -> Matrices:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] + noise * rng.normal(size=n) > 0).astype(np.int8)
    cut = n * 3 // 4
    return Matrices(train=xgb.DMatrix(x[:cut], y[:cut]), val=xgb.DMatrix(x[cut:], y[cut:]))


def _xgb(model: ModelConfig, space: dict[str, ParamSpec] | None = None) -> XGBoostModel:
    """The XGBoost model of `model` searching `space`."""
    return XGBoostModel(dataclasses.replace(model, space=space or {}))


PARAMS = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": 1, "max_depth": 2}


def _train_with_pruning(eval_every: int, rounds: int) -> optuna.trial.FrozenTrial:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    model = ModelConfig(num_boost_round=rounds, early_stopping_rounds=rounds, n_jobs=1)
    pruning = XGBoostPruningCallback(trial, OBSERVATION_KEY)
    train_early_stopping(PARAMS, _matrices(), model, eval_every, [pruning])
    study.tell(trial, 0.5)
    return study.trials[0]


def test_validation_is_evaluated_every_eval_every_rounds_and_at_the_last() -> None:
    trial = _train_with_pruning(eval_every=10, rounds=35)
    assert sorted(trial.intermediate_values) == [9, 19, 29, 34]
    assert all(0.5 <= v <= 1 for v in trial.intermediate_values.values())


def test_eval_every_one_reports_every_round() -> None:
    trial = _train_with_pruning(eval_every=1, rounds=5)
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3, 4]


def test_evaluating_every_round_early_stops_exactly_as_xgboost_does() -> None:
    m = _matrices(600, noise=3.0)
    params = PARAMS | {"max_depth": 6, "learning_rate": 0.5}
    model = ModelConfig(num_boost_round=200, early_stopping_rounds=7, n_jobs=1)
    ours = train_early_stopping(params, m, model, eval_every=1)
    theirs = xgb.train(
        params, m.train, 200, evals=[(m.val, "val")], early_stopping_rounds=7, verbose_eval=False
    )
    assert ours.num_boosted_rounds() < 200  # it did stop early
    assert ours.num_boosted_rounds() == theirs.num_boosted_rounds()
    assert ours.best_iteration == theirs.best_iteration
    assert ours.best_score == pytest.approx(theirs.best_score)


def test_early_stopping_patience_is_counted_in_rounds_between_evaluations() -> None:
    m = _matrices(600, noise=3.0)
    params = PARAMS | {"max_depth": 6, "learning_rate": 0.5}
    model = ModelConfig(num_boost_round=200, early_stopping_rounds=10, n_jobs=1)
    booster = train_early_stopping(params, m, model, eval_every=5)
    last = booster.num_boosted_rounds() - 1
    assert last < 199 and last - booster.best_iteration == 10
    assert (booster.best_iteration + 1) % 5 == 0  # the best is one of the evaluated rounds
    proba = booster.predict(m.val, iteration_range=(0, booster.best_iteration + 1))
    assert booster.best_score == pytest.approx(roc_auc_score(m.val.get_label(), proba))


def _openmp_env_after_import(env: dict[str, str]) -> tuple[str | None, str | None]:
    code = (
        "import os, ashare_autotune\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    policy, spin = out.stdout.split()
    return (None if policy == "None" else policy), (None if spin == "None" else spin)


def test_importing_the_package_shortens_openmp_spinning_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert _openmp_env_after_import(env) == (None, "10000")
    assert _openmp_env_after_import(env | {"GOMP_SPINCOUNT": "5"}) == (None, "5")
    assert _openmp_env_after_import(env | {"OMP_WAIT_POLICY": "PASSIVE"}) == ("PASSIVE", None)


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


def test_batched_matrices_in_one_batch_train_and_score_as_segment_copies() -> None:
    """Same model; and validation as a plain DMatrix predicts exactly as quantised on train's
    cuts (the splits are on cut values), so evaluating it changes no result."""
    frame = _panel()
    frame.loc[::7, "a"] = np.nan  # missing values take the learned default direction in both
    masks = {"train": frame["day"].to_numpy() < 60, "val": frame["day"].to_numpy() >= 70}
    batched = build_matrices_in_batches(*_segments(frame, masks), ["a", "b"], "label", 32, 1)
    train, val = frame.loc[masks["train"]], frame.loc[masks["val"]]
    copied = build_matrices(
        train[["a", "b"]], train["label"], val[["a", "b"]], val["label"], 32, 1
    )
    params = {"objective": "binary:logistic", "max_bin": 32, "nthread": 1, "max_depth": 2}
    preds = [xgb.train(params, m.train, 5).predict(m.val) for m in (batched, copied)]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_large_validation_is_evaluated_on_a_sample_which_gives_the_trial_its_value() -> None:
    """Early stopping, pruning and the trial's value use `watch_rows` sampled validation rows:
    the value is the sample's AUC at the best iteration."""
    frame = _panel(2000)
    days = frame["day"].to_numpy()
    masks = {"train": days < 60, "val": days >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["a", "b"], "label", 32, 1, watch_rows=100
    )
    assert m.val.num_row() == 100 < masks["val"].sum()
    model = ModelConfig(max_bin=32, num_boost_round=30, early_stopping_rounds=5, n_jobs=1)
    space = {"max_depth": ParamSpec(type="int", low=2, high=3)}
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(m, _xgb(model, space), eval_every=2), n_trials=1)
    trial = study.trials[0]
    booster = xgb.train(
        _xgb(model).base_params() | trial.params,
        m.train,
        num_boost_round=trial.user_attrs["best_iteration"] + 1,
    )
    on_sample = roc_auc_score(m.val.get_label(), booster.predict(m.val))
    every_row = frame.loc[masks["val"]]
    on_all = roc_auc_score(every_row["label"], booster.inplace_predict(every_row[["a", "b"]]))
    assert trial.value == pytest.approx(on_sample)
    assert on_sample != pytest.approx(on_all)  # it really is the sample's


def test_small_validation_is_watched_in_full() -> None:
    frame = _panel()
    days = frame["day"].to_numpy()
    masks = {"train": days < 60, "val": days >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["a"], "label", 32, 1, watch_rows=10_000
    )
    assert m.val.num_row() == masks["val"].sum()
    np.testing.assert_array_equal(m.val.get_label(), frame.loc[masks["val"], "label"])


def _large_train_matrices(trial_rows: int | None) -> tuple[pd.DataFrame, dict, Matrices]:
    frame = _panel(3000)
    days = frame["day"].to_numpy()
    masks = {"train": days < 60, "val": days >= 70}
    m = build_matrices_in_batches(
        *_segments(frame, masks), ["a", "b"], "label", 32, 1, trial_rows=trial_rows
    )
    return frame, masks, m


def test_large_train_gives_the_trials_a_seeded_sample_of_its_rows() -> None:
    frame, masks, m = _large_train_matrices(trial_rows=500)
    assert m.trial_train is not None and m.trial_train.num_row() == 500
    assert m.train.num_row() == masks["train"].sum()  # the final model still gets all rows
    assert set(m.trial_train.get_label()) <= set(frame.loc[masks["train"], "label"])
    again = _large_train_matrices(trial_rows=500)[2]
    np.testing.assert_array_equal(m.trial_train.get_label(), again.trial_train.get_label())
    assert _large_train_matrices(trial_rows=10_000)[2].trial_train is None


def test_trials_train_on_the_sample_and_the_final_model_on_all_rows() -> None:
    _, _, m = _large_train_matrices(trial_rows=500)
    model = ModelConfig(max_bin=32, num_boost_round=60, early_stopping_rounds=10, n_jobs=1)
    params = _xgb(model).base_params() | {"max_depth": 3, "learning_rate": 0.3}
    trial_booster = train_early_stopping(params, m, model, eval_every=5)
    on_sample = xgb.train(params, m.trial_train, trial_booster.num_boosted_rounds())
    np.testing.assert_array_equal(trial_booster.predict(m.val), on_sample.predict(m.val))

    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"max_depth": 3, "learning_rate": 0.3})
    space = {
        "max_depth": ParamSpec(type="int", low=2, high=3),
        "learning_rate": ParamSpec(type="float", low=0.1, high=0.3),
    }
    study.optimize(make_objective(m, _xgb(model, space), eval_every=5), n_trials=1)
    final = fit_best(_xgb(model, space), m, study, eval_every=5)
    full = dataclasses.replace(m, trial_train=None)
    stopped = train_early_stopping(params, full, model, eval_every=5)
    assert final.best_round == stopped.best_iteration + 1  # cut at its best round
    refit = xgb.train(params, m.train, final.best_round)
    np.testing.assert_array_equal(final.predict(m.val), refit.predict(m.val))


def test_the_final_fit_raises_a_learning_rate_below_tuning_refit_learning_rate() -> None:
    assert raised_learning_rate({"learning_rate": 0.02, "max_depth": 7}, 0.1) == {
        "learning_rate": 0.1,
        "max_depth": 7,
    }
    assert raised_learning_rate({"learning_rate": 0.3}, 0.1) == {"learning_rate": 0.3}
    members = {"xgb.learning_rate": 0.05, "lgb.learning_rate": 0.2, "lgb.num_leaves": 31}
    raised = raised_learning_rate(members, 0.1)
    assert raised == {"xgb.learning_rate": 0.1, "lgb.learning_rate": 0.2, "lgb.num_leaves": 31}
    assert raised_learning_rate({"learning_rate": 0.02}, None) == {"learning_rate": 0.02}

    _, _, m = _large_train_matrices(trial_rows=500)
    model = ModelConfig(max_bin=32, num_boost_round=60, early_stopping_rounds=10, n_jobs=1)
    space = {"learning_rate": ParamSpec(type="float", low=0.01, high=0.02)}
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"learning_rate": 0.015})
    study.optimize(make_objective(m, _xgb(model, space), eval_every=5), n_trials=1)
    final = fit_best(_xgb(model, space), m, study, eval_every=5, refit_learning_rate=0.3)
    params = _xgb(model).base_params() | {"learning_rate": 0.3}
    stopped = train_early_stopping(params, dataclasses.replace(m, trial_train=None), model, 5)
    assert final.best_round == stopped.best_iteration + 1
    refit = xgb.train(params, m.train, final.best_round)
    np.testing.assert_array_equal(final.predict(m.val), refit.predict(m.val))


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> Rows:
    return frame_rows(frame, ["a", "b"], "label", np.flatnonzero(mask))


def test_a_study_that_does_not_keep_train_rebuilds_it_on_the_same_cuts_for_the_final_fit() -> None:
    """`keep_train=False`: during a sampled study only the sample and validation are held;
    the final model trains on all rows quantised again, exactly as on the kept matrix."""
    frame = _panel(3000)
    frame.loc[::5, "b"] = np.nan
    days = frame["day"].to_numpy()
    train, val = _rows(frame, days < 60), _rows(frame, days >= 70)
    kept = build_matrices_from_rows(train, val, 32, 1, batch_rows=400, trial_rows=500)
    lean = build_matrices_from_rows(
        train, val, 32, 1, batch_rows=400, trial_rows=500, keep_train=False
    )
    assert lean.train is None and lean.rebuild_train is not None
    np.testing.assert_array_equal(lean.trial_train.get_label(), kept.trial_train.get_label())
    rebuilt = lean.full_train()
    for a, b in zip(rebuilt.get_quantile_cut(), kept.train.get_quantile_cut(), strict=True):
        np.testing.assert_array_equal(a, b)
    params = {"objective": "binary:logistic", "max_bin": 32, "nthread": 1, "max_depth": 3}
    preds = [xgb.train(params, m, 8).predict(kept.val) for m in (rebuilt, kept.train)]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_validation_quantised_on_trains_cuts_predicts_as_the_plain_matrix() -> None:
    frame = _panel(2000)
    frame.loc[::7, "a"] = np.nan
    days = frame["day"].to_numpy()
    train, val = _rows(frame, days < 60), _rows(frame, days >= 70)
    plain = build_matrices_from_rows(train, val, 32, 1, watch_rows=300)
    quantised = build_matrices_from_rows(train, val, 32, 1, watch_rows=300, watch_quantised=True)
    assert isinstance(quantised.val, xgb.QuantileDMatrix)
    assert not isinstance(plain.val, xgb.QuantileDMatrix)
    np.testing.assert_array_equal(quantised.val.get_label(), plain.val.get_label())
    params = {"objective": "binary:logistic", "max_bin": 32, "nthread": 1, "max_depth": 3}
    booster = xgb.train(params, plain.train, 10)
    np.testing.assert_array_equal(booster.predict(quantised.val), booster.predict(plain.val))


def test_without_a_sample_the_final_model_is_the_best_trial_refitted_for_its_rounds() -> None:
    _, _, m = _large_train_matrices(trial_rows=None)
    model = ModelConfig(max_bin=32, num_boost_round=60, early_stopping_rounds=10, n_jobs=1)
    study = optuna.create_study(direction="maximize")
    xgb_model = _xgb(model, {"max_depth": ParamSpec(type="int", low=2, high=3)})
    study.optimize(make_objective(m, xgb_model, 5), 2)
    final = fit_best(xgb_model, m, study, eval_every=5)
    rounds = study.best_trial.user_attrs["best_iteration"] + 1
    assert final.booster.num_boosted_rounds() == rounds


def _pruned_study(pruner: optuna.pruners.BasePruner, storage: str) -> optuna.Study:
    """30 seeded trials reporting a noisy curve every 10 steps (better for larger x)."""
    study = optuna.create_study(
        direction="maximize",
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=3),
        pruner=pruner,
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        noise = np.random.default_rng(trial.number).normal(0.0, 0.05, 10)
        value = 0.0
        for k in range(10):
            value = x * (1 - 0.8 ** (k + 1)) + noise[k]
            trial.report(value, 10 * k + 9)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=30)
    return study


def test_the_median_pruner_reading_trials_once_per_trial_prunes_exactly_as_optuna_s(
    tmp_path,
) -> None:
    def median() -> optuna.pruners.MedianPruner:
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)

    plain = _pruned_study(median(), f"sqlite:///{tmp_path / 'plain.db'}")
    ours = _pruned_study(make_pruner("median"), f"sqlite:///{tmp_path / 'ours.db'}")

    def outcome(study: optuna.Study) -> list[tuple]:
        return [(t.state, t.last_step, t.params["x"]) for t in study.trials]

    assert isinstance(ours.pruner, SnapshotPruner)
    assert outcome(ours) == outcome(plain)
    assert {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE} <= {
        t.state for t in plain.trials
    }


def test_the_snapshot_pruner_reads_the_completed_trials_once_per_trial(tmp_path) -> None:
    study = optuna.create_study(direction="maximize", storage=f"sqlite:///{tmp_path / 's.db'}")
    for value in (0.1, 0.2, 0.3):
        trial = study.ask()
        trial.report(value, 29)
        study.tell(trial, value)
    reads = []
    get_trials = study.get_trials
    study.get_trials = lambda *a, **k: reads.append(k) or get_trials(*a, **k)  # type: ignore
    pruner = SnapshotPruner(optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))

    trial = study.ask()
    decisions = []
    for step, value in ((9, 0.0), (19, 0.01), (29, 0.05)):
        trial.report(value, step)
        decisions.append(pruner.prune(study, study._storage.get_trial(trial._trial_id)))

    assert len(reads) == 1
    assert decisions == [False, False, True]  # its best, 0.05, < the median at 29, 0.2
    nxt = study.ask()
    nxt.report(0.0, 29)
    pruner.prune(study, study._storage.get_trial(nxt._trial_id))
    assert len(reads) == 2
