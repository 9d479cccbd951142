"""SHAP from XGBoost's own tree SHAP: contributions that add up to the margin, the planted
feature on top, and the summary plot and table on the training run (the table alone without
figures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.evaluation.explain import mean_abs_shap, shap_values
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.models.xgboost.fitted import XGBoostFitted
from tests.conftest import TrainedModel


def _planted_model() -> tuple[XGBoostFitted, pd.DataFrame]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 4)), columns=["noise_a", "signal", "noise_b", "weak"])
    y = (x["signal"] + 0.3 * x["weak"] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x, y),
        num_boost_round=30,
    )
    return XGBoostFitted(booster), x.astype(np.float32)


def test_contributions_add_up_to_each_rows_margin() -> None:
    booster, x = _planted_model()
    contribs = shap_values(booster, x)
    assert list(contribs.columns) == list(x.columns) and contribs.dtypes.eq(np.float32).all()
    bias = booster.booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, -1]
    margin = booster.booster.predict(xgb.DMatrix(x), output_margin=True)
    np.testing.assert_allclose(contribs.sum(axis=1) + bias, margin, rtol=1e-4, atol=1e-4)


def test_the_planted_features_lead_the_mean_abs_shap_table() -> None:
    booster, x = _planted_model()
    table = mean_abs_shap(shap_values(booster, x))
    assert table["feature"].tolist()[:2] == ["signal", "weak"]
    assert table["mean_abs_shap"].is_monotonic_decreasing


def test_the_training_run_logs_the_shap_plot_and_table(trained_model: TrainedModel) -> None:
    mlflow.set_tracking_uri(trained_model.tracking_uri)
    run_id = trained_model.result.run_id
    plots = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots")
    assert (Path(plots) / "shap_summary.png").stat().st_size > 1000
    table_dir = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="shap")
    table = pd.read_csv(Path(table_dir) / "mean_abs.csv")
    assert list(table.columns) == ["feature", "mean_abs_shap", "mean_shap"]
    features = mlflow.pyfunc.load_model(trained_model.result.model_uri).unwrap_python_model()
    assert sorted(table["feature"]) == sorted(features.meta["features"])
    assert (table["mean_abs_shap"] >= 0).all()


@pytest.mark.slow
def test_without_figures_the_run_logs_the_shap_table_and_no_figure(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    result = run_training(compose_app("registry.register=false", "features=basic"))  # debug
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert "shap" in artifacts and "plots" not in artifacts
    backtest = mlflow.MlflowClient().list_artifacts(result.run_id, "backtest")
    names = {Path(a.path).name for a in backtest}
    assert {"summary.md", "trades.parquet", "daily.parquet", "baselines.csv"} <= names
    assert not {n for n in names if n.endswith((".png", ".html"))}
