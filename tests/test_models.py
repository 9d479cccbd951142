"""Models as plug-ins: XGBoost and LightGBM behind one protocol train on the synthetic market,
round-trip through the registry as a pyfunc in a fresh process, are pruned when the pruner
says so, explain by contributions that sum to the margin; a toy model is one package and one
YAML file; a model or objective that does not exist is one line naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from hydra.errors import HydraException

from ashare_autotune.config.schema import AppConfig, ModelConfig, ParamSpec
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError, config_error_text
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.models.base import Matrices, RowOptions, Rows, ScoreModel, frame_rows
from ashare_autotune.models.build import build_model
from ashare_autotune.tuning.objective import make_objective
from tests.conftest import ROOT

MODELS = ("xgboost", "lightgbm")
RANKERS = [("lightgbm", "lambdarank"), ("xgboost", "rank:pairwise")]  # (model, objective)
TOY_CONF = ROOT / "tests" / "conf"


def _rows(n: int = 800, seed: int = 0) -> tuple[Rows, Rows, pd.DataFrame]:
    """A planted signal: the label is mostly the sign of `a`; train is the first 3/4."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] + 0.7 * rng.normal(size=n) > 0).astype(np.int8)
    cut = n * 3 // 4
    train = frame_rows(frame, ["a", "b", "c"], "label", np.arange(cut))
    val = frame_rows(frame, ["a", "b", "c"], "label", np.arange(cut, n))
    return train, val, frame


def _model(name: str, compose_app: Callable[..., AppConfig], *overrides: str) -> ScoreModel:
    app = compose_app(f"model={name}", "model.max_bin=32", *overrides)
    return build_model(app.model)


@pytest.mark.parametrize("name", MODELS)
def test_the_configured_model_is_the_class_its_yaml_names(
    name: str, compose_app: Callable[..., AppConfig]
) -> None:
    model = _model(name, compose_app)
    assert model.kind == name and model.cfg.objective == "binary"
    assert model.cfg.space and type(model).__module__ == f"ashare_autotune.models.{name}.model"


class AlwaysPrune(optuna.pruners.BasePruner):
    """A pruner that prunes every trial at its first report."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


@pytest.mark.parametrize("name", MODELS)
def test_a_trial_is_pruned_when_the_pruner_says_so(
    name: str, compose_app: Callable[..., AppConfig]
) -> None:
    train, val, _ = _rows()
    model = _model(name, compose_app, "model.num_boost_round=30")
    matrices = model.build_matrices(train, val, RowOptions())
    for pruner, state, steps in (
        (AlwaysPrune(), optuna.trial.TrialState.PRUNED, [4]),  # its first report, round 5
        (optuna.pruners.NopPruner(), optuna.trial.TrialState.COMPLETE, None),
    ):
        sampler = optuna.samplers.TPESampler(seed=0)
        study = optuna.create_study(direction="maximize", pruner=pruner, sampler=sampler)
        study.optimize(make_objective(matrices, model, eval_every=5), n_trials=1)
        trial = study.trials[0]
        assert trial.state == state, name
        if steps is not None:
            assert sorted(trial.intermediate_values) == steps
        else:  # every 5th round until it stopped (its AUCs, the planted signal found)
            reported = sorted(trial.intermediate_values)
            assert reported[:2] == [4, 9] and all(s % 5 == 4 for s in reported)
            # the best validation AUC: of the reported rounds (XGBoost evaluates only those),
            # or of every round (LightGBM evaluates each; the pruner hears every 5th)
            best_reported = max(trial.intermediate_values.values())
            assert trial.value >= best_reported - 1e-12
            if name == "xgboost":
                assert trial.value == pytest.approx(best_reported)
            assert trial.value > 0.75


@pytest.mark.parametrize("name", MODELS)
def test_contributions_sum_to_the_margin_of_each_row(
    name: str, compose_app: Callable[..., AppConfig]
) -> None:
    train, val, frame = _rows()
    model = _model(name, compose_app, "model.num_boost_round=20")
    fitted = model.fit({"learning_rate": 0.3}, model.build_matrices(train, val, RowOptions()))
    x = frame[["a", "b", "c"]].iloc[600:]
    contribs = fitted.contributions(x)
    assert contribs.shape == (200, 4)  # the three features, then the bias
    proba = fitted.predict(x)
    margin = np.log(proba / (1 - proba))
    np.testing.assert_allclose(contribs.sum(axis=1), margin, rtol=1e-4, atol=1e-4)
    # the planted feature carries the model
    assert np.abs(contribs[:, 0]).mean() > 3 * np.abs(contribs[:, 1:3]).mean()
    assert max(fitted.importance(), key=fitted.importance().get) == "a"


@pytest.mark.parametrize("name", MODELS)
def test_the_saved_model_scores_as_the_trained_one_at_its_best_round(
    name: str, compose_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    train, val, frame = _rows()
    model = _model(name, compose_app, "model.num_boost_round=200", "model.early_stopping_rounds=5")
    fitted = model.fit({"learning_rate": 0.5}, model.build_matrices(train, val, RowOptions()))
    assert 1 <= fitted.best_round < 200  # it stopped early: the rounds after its best are cut
    fitted.save(tmp_path)
    loaded = type(fitted).load(tmp_path, 1)
    x = frame[["a", "b", "c"]].to_numpy(np.float32)
    np.testing.assert_allclose(loaded.predict(x), fitted.predict(x), rtol=1e-6)


def _train(compose_app: Callable[..., AppConfig], name: str, *overrides: str):
    app = compose_app(
        f"model={name}",
        "tuning.n_trials=2",
        f"registry.model_name=models-{name}",
        "threshold.target_precision=0.5",
        *overrides,
    )
    return run_training(app)


# (model, objective): binary scores are probabilities, the others' are scores
MODEL_OBJECTIVES = [(name, "binary") for name in MODELS]
MODEL_OBJECTIVES += [(name, "regression") for name in MODELS] + RANKERS


@pytest.mark.slow
@pytest.mark.parametrize(("name", "objective"), MODEL_OBJECTIVES)
def test_each_model_trains_and_round_trips_through_the_registry_in_a_fresh_process(
    name: str,
    objective: str,
    compose_app: Callable[..., AppConfig],
    tracking_uri: str,
    tmp_path: Path,
) -> None:
    # a ranking or regression score is tuned by the daily Rank IC (its early stopping: no AUC)
    metric = "auc" if objective == "binary" else "rank_ic"
    result = _train(compose_app, name, f"model.objective={objective}", f"tuning.metric={metric}")
    assert result.model_version == "1"
    uri = f"models:/models-{name}/1"
    # the test segment's record: every candidate's score from the trained model
    record_dir = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="predictions"
    )
    record = pd.read_parquet(Path(record_dir) / "test.parquet")
    meta = mlflow.pyfunc.load_model(uri).unwrap_python_model().meta
    assert meta["model"]["kind"] == name and meta["objective"] == objective
    # the features of the record's first rows, rebuilt from the same synthetic market
    market = load_market(compose_app().data)  # the debug market the model was trained on
    features = build_feature_set(market, None, meta["features"])
    keys = record[["ts_code", "trade_date"]].head(7)
    keys = keys.assign(trade_date=pd.to_datetime(keys["trade_date"]))
    rows = keys.merge(
        features.assign(trade_date=pd.to_datetime(features["trade_date"])), how="left"
    )
    x = rows[meta["features"]].astype(np.float64)
    x.to_parquet(tmp_path / "x.parquet")
    script = f"""
import json, mlflow, pandas as pd
model = mlflow.pyfunc.load_model("{uri}")
out = model.predict(pd.read_parquet("{tmp_path / "x.parquet"}"))
kind = model.unwrap_python_model().meta["model"]["kind"]
print(json.dumps({{"cols": list(out.columns), "kind": kind,
                  "p": out["probability"].tolist(), "pick": out["pick"].astype(bool).tolist()}}))
"""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["cols"] == ["probability", "pick"] and out["kind"] == name
    # the registered model scores as the trained one did in the run's test record
    np.testing.assert_allclose(out["p"], record["probability"].head(7), rtol=1e-5, atol=1e-6)
    assert out["pick"] == [p >= result.threshold.threshold for p in out["p"]]
    assert record["probability"].nunique() > 10
    assert result.metrics["test_auc"] > 0.52  # the planted reversal (debug strength) is learned
    assert result.metrics["test_rank_ic_mean"] > 0.02  # ... in each day's order too
    if objective == "binary":
        assert all(0 <= p <= 1 for p in out["p"])
    else:  # no AUC early stopping: none reported as the best trial's
        assert "best_trial_val_auc" not in result.metrics


def _toy_overrides() -> tuple[str, ...]:
    return (f"hydra.searchpath=[file://{TOY_CONF}]", "model=toy")


@pytest.mark.slow
def test_a_toy_model_of_one_package_and_one_yaml_runs_the_pipeline(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app(*_toy_overrides(), "tuning.n_trials=2", "registry.register=false")
    assert app.model._target_ == "tests.toy_model.model.ToyModel"
    result = run_training(app)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert model.unwrap_python_model().meta["model"] == {
        "kind": "toy",
        "class": "tests.toy_model.model:ToyFitted",
    }
    assert result.metrics["test_auc"] > 0.55  # a linear model finds the planted reversal too
    assert set(result.best_params) == {"learning_rate"}


def test_an_unknown_model_is_one_line_naming_it(compose_app: Callable[..., AppConfig]) -> None:
    with pytest.raises(HydraException) as err:
        compose_app("model=foo")
    message = config_error_text(err.value)
    assert message.startswith("config key 'model'='foo': no such option in conf/model/ (it has:")
    assert "xgboost" in message and "\n" not in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.objective=multiclass", "config key 'model.objective'='multiclass'"),
        ("model._target_=ashare_autotune.models.nope.Nope", "config key 'model._target_'"),
    ],
)
@pytest.mark.parametrize("name", MODELS)
def test_an_objective_or_class_a_model_lacks_is_one_line_naming_the_key(
    name: str, override: str, key: str, compose_app: Callable[..., AppConfig]
) -> None:
    app = compose_app(f"model={name}", override)
    with pytest.raises(ConfigError) as err:
        build_model(app.model)
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


def test_a_searched_fixed_parameter_is_refused() -> None:
    space = {"max_bin": ParamSpec(type="int", low=16, high=64)}
    with pytest.raises(ConfigError, match=r"model\.space\.max_bin"):
        ModelConfig(space=space)


def test_changing_the_model_changes_the_study(compose_app: Callable[..., AppConfig]) -> None:
    from ashare_autotune.config.loading import config_fingerprint

    xgb_app, lgb_app = compose_app("model=xgboost"), compose_app("model=lightgbm")
    assert config_fingerprint(xgb_app) != config_fingerprint(lgb_app)
    narrower = replace(xgb_app.model, space=dict(list(xgb_app.model.space.items())[:-1]))
    assert config_fingerprint(replace(xgb_app, model=narrower)) != config_fingerprint(xgb_app)


def test_lightgbm_reads_each_batch_of_rows_at_most_twice(
    compose_app: Callable[..., AppConfig],
) -> None:
    """Binning samples single rows: they come from their batch, not one read each."""
    train, val, frame = _rows(3000)
    reads: list[int] = []

    def read(at: np.ndarray) -> pd.DataFrame:
        reads.append(len(at))
        return frame.iloc[at, :3]

    counted = replace(train, read=read)
    model = _model("lightgbm", compose_app, "model.num_boost_round=5")
    matrices = model.build_matrices(counted, val, RowOptions(batch_rows=500))
    fitted = model.refit({}, matrices.train, 5)
    # 2250 training rows in 5 batches: once for the bins' sample, once to fill the dataset
    assert reads == [500, 500, 500, 500, 250] * 2
    direct = model.frame_matrices(frame.iloc[:2250, :3], frame["label"][:2250], frame, frame)
    again = model.refit({}, direct.train, 5)
    x = frame[["a", "b", "c"]].to_numpy(np.float32)
    np.testing.assert_allclose(fitted.predict(x), again.predict(x), rtol=1e-6)


def _daily_rows(n_days: int = 60, per_day: int = 30) -> tuple[pd.DataFrame, int, int]:
    """Days of candidates whose forward return is planted in `a`; the first 3/4 of the days
    train. Columns: a, b, c, fwd (the return), rel (its quintile within the day, 0-4), day."""
    rng = np.random.default_rng(1)
    n = n_days * per_day
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["a", "b", "c"])
    frame["day"] = np.repeat(np.arange(n_days), per_day)
    frame["fwd"] = 0.02 * frame["a"] + rng.normal(scale=0.02, size=n)
    frame["rel"] = (
        frame.groupby("day")["fwd"].transform(lambda r: pd.qcut(r, 5, labels=False)).astype(int)
    )
    cut = n_days * 3 // 4 * per_day
    return frame, cut, n


def _split(frame: pd.DataFrame, cut: int, n: int, target: str) -> tuple[Rows, Rows]:
    day = frame["day"].to_numpy()
    rows = [
        frame_rows(frame, ["a", "b", "c"], target, r) for r in (np.arange(cut), np.arange(cut, n))
    ]
    return tuple(replace(r, group=day) for r in rows)


def _regression(
    name: str, compose_app: Callable[..., AppConfig], *overrides: str
) -> tuple[ScoreModel, Matrices, pd.DataFrame, int]:
    """A regression model of the daily rows, its matrices, the rows and the validation cut."""
    frame, cut, n = _daily_rows()
    train, val = _split(frame, cut, n, "fwd")
    model = _model(name, compose_app, "model.objective=regression", *overrides)
    return model, model.build_matrices(train, val, RowOptions()), frame, cut


@pytest.mark.parametrize("name", MODELS)
def test_regression_early_stops_on_minus_the_validation_squared_error(
    name: str, compose_app: Callable[..., AppConfig]
) -> None:
    model, matrices, frame, cut = _regression(name, compose_app)
    fitted = model.fit({"learning_rate": 0.1}, matrices)
    x, y = frame.loc[cut:, ["a", "b", "c"]], frame.loc[cut:, "fwd"].to_numpy()
    pred = fitted.predict(x)  # the forward return itself, not a probability
    assert fitted.best_score == pytest.approx(-np.mean((pred - y) ** 2), rel=1e-5)
    assert np.corrcoef(pred, frame.loc[cut:, "a"])[0, 1] > 0.8
    np.testing.assert_allclose(fitted.contributions(x).sum(axis=1), pred, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_a_regression_trial_is_pruned_on_its_validation_curve(
    name: str, compose_app: Callable[..., AppConfig]
) -> None:
    model, matrices, _, _ = _regression(name, compose_app, "model.num_boost_round=30")
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(make_objective(matrices, model, eval_every=5), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    # its first report, round 5: minus the squared error (a variance of about 0.0008)
    assert list(trial.intermediate_values) == [4]
    assert -0.01 < trial.intermediate_values[4] < 0


def _ndcg_at(scores: np.ndarray, relevance: np.ndarray, days: np.ndarray, k: int) -> float:
    """Mean over days of DCG@k / ideal DCG@k, gains 2^rel - 1 (LightGBM's default)."""
    values = []
    for day in np.unique(days):
        on = days == day
        rel, score = relevance[on], scores[on]
        discount = 1 / np.log2(np.arange(2, k + 2))
        dcg = ((2.0 ** rel[np.argsort(-score, kind="stable")][:k] - 1) * discount).sum()
        ideal = ((2.0 ** np.sort(rel)[::-1][:k] - 1) * discount).sum()
        values.append(dcg / ideal)
    return float(np.mean(values))


def test_lightgbm_lambdarank_ranks_each_day_and_early_stops_on_its_ndcg(
    compose_app: Callable[..., AppConfig],
) -> None:
    frame, cut, n = _daily_rows()
    train, val = _split(frame, cut, n, "rel")
    model = _model("lightgbm", compose_app, "model.objective=lambdarank")
    fitted = model.fit({"learning_rate": 0.1}, model.build_matrices(train, val, RowOptions()))
    held = frame.loc[cut:]
    scores = fitted.predict(held[["a", "b", "c"]])
    ndcg = _ndcg_at(scores, held["rel"].to_numpy(), held["day"].to_numpy(), 10)
    assert fitted.best_score == pytest.approx(ndcg, abs=1e-6)
    daily_ic = held.assign(s=scores).groupby("day")[["s", "fwd"]].corr("spearman")
    assert daily_ic.xs("s", level=1)["fwd"].mean() > 0.5  # each day's order is learned
    with pytest.raises(ValueError, match="Rows.group"):
        model.build_matrices(replace(train, group=None), val, RowOptions())


@pytest.mark.parametrize(("name", "objective"), RANKERS)
def test_a_ranker_reads_rows_in_stock_order_and_scores_validation_in_their_order(
    name: str, objective: str, compose_app: Callable[..., AppConfig]
) -> None:
    frame, cut, n = _daily_rows()
    # a dataset's frame is sorted by stock, then day: each day's rows are spread out
    frame = frame.assign(stock=np.tile(np.arange(30), 60)).sort_values(["stock", "day"])
    frame = frame.reset_index(drop=True)
    train_at = np.flatnonzero(frame["day"] < 45)
    val_at = np.flatnonzero(frame["day"] >= 45)
    train, val = (
        replace(frame_rows(frame, ["a", "b", "c"], "rel", at), group=frame["day"].to_numpy())
        for at in (train_at, val_at)
    )
    model = _model(name, compose_app, f"model.objective={objective}")
    matrices = model.build_matrices(train, val, RowOptions(batch_rows=100))
    fitted = model.fit({"learning_rate": 0.1}, matrices)
    held = frame.iloc[val_at]
    direct = fitted.predict(held[["a", "b", "c"]])
    np.testing.assert_allclose(fitted.predict(matrices.val), direct, rtol=1e-6)
    # NDCG@10 over the 15 validation days: each day one query, its rows contiguous
    ndcg = _ndcg_at(direct, held["rel"].to_numpy(), held["day"].to_numpy(), 10)
    assert fitted.best_score == pytest.approx(ndcg, abs=1e-5)
    daily_ic = held.assign(s=direct).groupby("day")[["s", "fwd"]].corr("spearman")
    assert daily_ic.xs("s", level=1)["fwd"].mean() > 0.5


def test_the_training_job_refuses_to_tune_a_ranker_by_the_auc_it_does_not_stop_on(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("model=lightgbm", "model.objective=lambdarank", "tuning.metric=auc")
    with pytest.raises(ConfigError) as err:
        run_training(app)
    text = "config key 'tuning.metric'='auc': scores the model's own AUC"
    assert str(err.value).startswith(text) and "\n" not in str(err.value)


def _rows_with_missing(n: int = 1600) -> tuple[Rows, Rows, pd.DataFrame]:
    """`_rows`, with `a` missing in a fifth of the rows, and those rows mostly labelled 1 while
    low `a` is labelled 0: a model must keep the missing rows apart from the lowest values."""
    train, val, frame = _rows(n)
    gone = np.random.default_rng(1).random(n) < 0.2
    frame.loc[gone, "a"] = np.nan
    frame.loc[gone, "label"] = (np.random.default_rng(2).random(gone.sum()) < 0.9).astype(np.int8)
    cut = n * 3 // 4
    columns = ["a", "b", "c"]
    train = frame_rows(frame, columns, "label", np.arange(cut))
    return train, frame_rows(frame, columns, "label", np.arange(cut, n)), frame


@pytest.mark.parametrize("missing", ["fill", "native"])
def test_a_missing_feature_is_scored_alike_from_the_matrices_a_frame_and_the_saved_model(
    missing: str, compose_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    train, val, frame = _rows_with_missing()
    model = _model("xgboost", compose_app, f"model.missing={missing}", "model.num_boost_round=60")
    matrices = model.build_matrices(train, val, RowOptions())
    # fill: no entry of the quantised matrix is missing (XGBoost's 1-byte histogram index)
    dense = matrices.train.num_nonmissing() == matrices.train.num_row() * 3
    assert dense == (missing == "fill")
    fitted = model.fit({"learning_rate": 0.3, "max_depth": 3}, matrices)
    x = frame[["a", "b", "c"]].iloc[1200:]
    from_matrix = fitted.predict(matrices.val)
    np.testing.assert_allclose(fitted.predict(x), from_matrix, rtol=1e-6)
    fitted.save(tmp_path)
    loaded = type(fitted).load(tmp_path, 1)
    np.testing.assert_allclose(loaded.predict(x.to_numpy(np.float32)), from_matrix, rtol=1e-6)
    contribs = loaded.contributions(x)
    np.testing.assert_allclose(
        contribs.sum(axis=1), np.log(from_matrix / (1 - from_matrix)), rtol=1e-4, atol=1e-4
    )
    # the missing rows were learned as their own group (label rate 0.9), not as the lowest `a`
    gone = x["a"].isna().to_numpy()
    assert from_matrix[gone].mean() > 0.7 > from_matrix[~gone & (x["a"] < -1).to_numpy()].mean()
