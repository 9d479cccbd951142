"""End to end on a real SQLite tracking store: every trial nested under one parent run, test
metrics on the parent, a registered version with its metrics, and the champion alias only when
the precision constraint is met."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.jobs.pipeline import TrainResult, run_training
from ashare_autotune.tracking import registry
from tests.conftest import ROOT, fresh_store

MODEL = "test-model"


def _train(compose_app: Callable[..., AppConfig], *overrides: str) -> TrainResult:
    app = compose_app("tuning.n_trials=4", f"registry.model_name={MODEL}", *overrides)
    return run_training(app)


@pytest.fixture(scope="module")
def trained_store(
    compose_app: Callable[..., AppConfig],
    _migrated_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, TrainResult]:
    """One training for the tests that only read it: its store's URI and its result."""
    root = tmp_path_factory.mktemp("pipeline")
    uri = fresh_store(_migrated_db, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(uri)
        # the debug preset's target precision (0.25)
        return uri, _train(compose_app, f"mlflow.tracking_uri={uri}")


@pytest.fixture
def trained(
    trained_store: tuple[str, TrainResult], monkeypatch: pytest.MonkeyPatch
) -> TrainResult:
    """`trained_store`'s result, with this test's MLflow calls on its store."""
    uri, result = trained_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return result


def test_every_trial_is_a_run_nested_under_one_parent_with_its_val_auc(
    trained: TrainResult,
) -> None:
    runs = mlflow.search_runs(experiment_ids=[trained.experiment_id])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    trials = runs[runs["tags.mlflow.parentRunId"] == trained.run_id]
    assert list(parents["run_id"]) == [trained.run_id]
    assert len(trials) == 4 == trained.n_trials
    assert sorted(trials["tags.number"].astype(int)) == [0, 1, 2, 3]
    complete = trials[trials["tags.state"] == "COMPLETE"]
    assert len(complete) >= 1 and complete["metrics.val_auc"].between(0, 1).all()
    assert trials["params.learning_rate"].notna().all()


def test_parent_run_holds_test_metrics_threshold_and_config(trained: TrainResult) -> None:
    run = mlflow.get_run(trained.run_id)
    for key in (
        "test_auc",
        "test_precision",
        "test_recall",
        "test_f1",
        "test_pick_rate",
        "test_n_picks",
        "val_precision",
        "threshold",
        "best_trial_val_auc",
    ):
        assert key in run.data.metrics, key
    assert run.data.metrics["test_auc"] == pytest.approx(trained.metrics["test_auc"])
    assert run.data.params["label.min_return"] == "0.04"
    assert run.data.tags["threshold_feasible"] in ("true", "false")


def test_registered_version_carries_val_and_test_metrics_and_champion_alias(
    trained: TrainResult,
) -> None:
    client = MlflowClient()
    assert trained.threshold.feasible, "the debug market should reach precision 0.25"
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert str(version.version) == trained.model_version
    tags = version.tags
    assert float(tags["test_precision"]) == pytest.approx(
        trained.metrics["test_precision"], abs=1e-4
    )
    assert float(tags["test_recall"]) == pytest.approx(trained.metrics["test_recall"], abs=1e-4)
    assert float(tags["test_auc"]) == pytest.approx(trained.metrics["test_auc"], abs=1e-4)
    assert float(tags["threshold"]) == trained.threshold.threshold
    assert "Threshold" in version.description
    assert version.source == trained.model_uri  # the version is the logged model
    logged = mlflow.get_logged_model(trained.model_uri.removeprefix("models:/"))
    assert {m.key for m in logged.metrics} >= {"test_precision", "test_recall", "test_auc"}
    # the next training compares itself with this champion on these validation metrics
    champion = registry.version_metrics(version)
    for key in ("val_precision", "val_recall", "val_auc", "val_n_picks"):
        assert champion[key] == pytest.approx(trained.metrics[key]), key


@pytest.mark.slow  # a second Python process (~4 CPU-s of imports)
def test_model_loads_from_the_registry_in_a_fresh_process_and_predicts(
    trained: TrainResult, trained_store: tuple[str, TrainResult], small_market: object
) -> None:
    tracking_uri = trained_store[0]
    script = f"""
import json, mlflow, numpy as np, pandas as pd
model = mlflow.pyfunc.load_model("models:/{MODEL}@champion")
names = model.metadata.get_input_schema().input_names()
x = pd.DataFrame(np.random.default_rng(0).normal(0, 0.05, (7, len(names))), columns=names)
out = model.predict(x)
print(json.dumps({{"cols": list(out.columns), "n": len(out),
                  "p": out["probability"].tolist(), "pick": out["pick"].astype(bool).tolist()}}))
"""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["cols"] == ["probability", "pick"] and out["n"] == 7
    assert all(0 <= p <= 1 for p in out["p"])
    assert out["pick"] == [p >= trained.threshold.threshold for p in out["p"]]


def test_infeasible_precision_target_is_reported_and_not_promoted(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    # 50 validation picks at 99% precision: out of reach of the debug model (6 picks can be)
    result = _train(compose_app, "threshold.target_precision=0.99", "threshold.min_picks=50")
    assert not result.threshold.feasible and not result.champion
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["threshold_feasible"] == "false"
    assert "NO threshold reaches precision >= 0.99" in run.data.tags["threshold_status"]
    assert run.data.metrics["val_best_precision"] < 0.99
    client = MlflowClient()
    version = client.get_model_version(MODEL, result.model_version)
    assert version.aliases == ["challenger"]  # registered, never champion
    assert version.tags["threshold_feasible"] == "false"


@pytest.mark.slow
def test_rerunning_the_same_command_resumes_the_study_and_its_parent_run(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    first = _train(compose_app, "tuning.n_trials=2")
    second = _train(compose_app, "tuning.n_trials=3")
    assert second.study_name == first.study_name and second.run_id == first.run_id
    assert second.n_trials == 3
    trials = mlflow.search_runs(
        experiment_ids=[first.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first.run_id}'",
    )
    assert sorted(trials["tags.number"].astype(int)) == [0, 1, 2]
