"""What a study's parent run shows in MLflow: plots, the trading view of the test segment, the
training data as dataset inputs, the resolved config, one metric naming convention shared with
the trials, and the walk-forward check."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.loader import load_market, training_data
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.dataset import build_dataset
from ashare_autotune.tracking import runs as tracking
from tests.conftest import TrainedModel

PLOTS = {
    "optimization_history.png",
    "param_importances.png",
    "pr_curve.png",
    "precision_recall_vs_threshold.png",
    "threshold_frontier.png",
    "picks_per_day.png",
    "feature_importance_gain.png",
    "calibration.png",
    "shap_summary.png",
    "optuna_study.html",
}
# <segment>_<metric>, the segment optionally a walk-forward window (val_w2_auc) or their mean
# (test_wf_precision); the two run-level values carry no segment.
METRIC_NAME = re.compile(r"^(val|test)(_w\d+|_wf)?_[a-z0-9_]+$")
RUN_LEVEL = {"threshold", "best_trial_val_auc"}


def _artifact_names(run_id: str, path: str) -> set[str]:
    return {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(run_id, path)}


def _read_artifact(run_id: str, path: str) -> str:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_text()


@pytest.fixture
def parent(trained_model: TrainedModel) -> mlflow.entities.Run:
    mlflow.set_tracking_uri(trained_model.tracking_uri)
    return mlflow.get_run(trained_model.result.run_id)


def test_parent_run_has_every_plot_as_a_real_image(parent: mlflow.entities.Run) -> None:
    run_id = parent.info.run_id
    assert _artifact_names(run_id, "plots") == PLOTS
    for name in PLOTS - {"optuna_study.html"}:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"plots/{name}")
        data = Path(local).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
    html = _read_artifact(run_id, "plots/optuna_study.html")
    assert "plotly" in html and "Optimization History" in html  # self-contained, offline


def test_the_threshold_frontier_is_logged_and_holds_the_chosen_thresholds_counts(
    parent: mlflow.entities.Run,
) -> None:
    m = parent.data.metrics
    frontier = pd.read_csv(
        io.StringIO(_read_artifact(parent.info.run_id, "threshold/val_frontier.csv"))
    )
    assert list(frontier.columns) == [
        "threshold",
        "precision",
        "recall",
        "n_picks",
        "n_days",
        "enough",
        "meets",
    ]
    chosen = frontier.loc[np.isclose(frontier["threshold"], m["threshold"])].iloc[0]
    # the same picks (at most threshold.max_picks_per_day a day) as the validation metrics
    assert chosen["precision"] == pytest.approx(m["val_precision"])
    assert chosen["recall"] == pytest.approx(m["val_recall"])
    assert (chosen["n_picks"], chosen["n_days"]) == (m["val_n_picks"], m["val_n_pick_days"])
    assert m["val_best_precision"] == pytest.approx(
        frontier.loc[frontier["enough"], "precision"].max()
    )


def test_trading_view_metrics_agree_with_the_daily_table(parent: mlflow.entities.Run) -> None:
    m = parent.data.metrics
    daily = pd.read_csv(io.StringIO(_read_artifact(parent.info.run_id, "trading/test_daily.csv")))
    assert len(daily) == m["test_days"] == m["test_n_days_up"] + m["test_n_days_down"]
    # the labelled picks are the classification view's; every pick (at most
    # threshold.max_picks_per_day a day, the day's best) is the record's and the signal's
    assert daily["pick_labelled"].sum() == m["test_n_picks"]
    assert m["test_picks_per_day"] == pytest.approx(daily["n_picks"].sum() / m["test_days"])
    assert m["test_topk_precision_mean"] == pytest.approx(daily["topk_precision"].mean())
    assert 0 <= m["test_topk_precision_mean"] <= 1 and (daily["topk_n"] <= 10).all()
    # a name of the day's top 10 without a label (suspended before T+5) is not counted
    assert (daily["topk_n"] == 10).mean() > 0.9
    assert "test_topk_precision" not in m  # one name per quantity (the signal metrics')
    assert np.isfinite(m["test_mean_fwd_return_universe"])
    # the planted signal makes picks beat the universe on the synthetic market
    assert m["test_mean_fwd_return_picks"] > m["test_mean_fwd_return_universe"]
    summary = _read_artifact(parent.info.run_id, "trading/test_summary.md")
    assert "| up |" in summary and "| down |" in summary


def test_training_data_is_a_dataset_input_with_its_range(parent: mlflow.entities.Run) -> None:
    inputs = {
        {t.key: t.value for t in d.tags}["mlflow.data.context"]: d
        for d in parent.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "validation", "testing"}
    tags = parent.data.tags
    train = inputs["training"]
    train_tags = {t.key: t.value for t in train.tags}
    assert (train_tags["start"], train_tags["end"]) == (
        tags["split_train_start"],
        tags["split_train_end"],
    )
    assert train_tags["n_rows"] == tags["split_train_rows"]
    # 40 stocks drawn, 36 listed by the 300th day; 600009.SH lists on 20181115, after the train
    # segment, and 000013.SZ on 20180712 is 20 trading days old only after it ends, so the
    # universe (universe.min_list_days=20) leaves both out of training
    assert int(train_tags["n_stocks"]) == 34
    assert train_tags["data_source"].startswith("synthetic")
    assert '"num_rows": ' + tags["split_train_rows"] in train.dataset.profile


def test_dataset_schema_is_the_one_mlflow_infers_with_missing_values_past_the_first_rows() -> None:
    from mlflow.types.utils import _infer_schema

    n = 400
    frame = pd.DataFrame(
        {
            "ts_code": pd.Categorical(["000001.SZ", "600000.SH"] * (n // 2)),
            "trade_date": pd.date_range("2020-01-01", periods=n),
            "feature": np.arange(n, dtype=np.float32),
            "complete": np.ones(n, dtype=np.float32),
            "label": np.zeros(n, dtype=np.int8),
            "note": ["a"] * n,
            "late": pd.Series([None] * (n - 1) + [b"x"], dtype=object),  # binary: the last row
        }
    )
    frame.loc[n - 1, ["ts_code", "trade_date", "feature", "note"]] = [np.nan, pd.NaT, np.nan, None]
    expected = _infer_schema(frame)
    assert tracking.sample_schema(frame) == expected
    assert not expected.inputs[2].required and expected.inputs[3].required  # what is compared


def test_parent_and_trials_share_one_metric_convention_and_sort_together(
    parent: mlflow.entities.Run,
) -> None:
    runs = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id], order_by=["metrics.val_auc DESC"]
    )
    family = runs[
        (runs["run_id"] == parent.info.run_id)
        | (runs["tags.mlflow.parentRunId"] == parent.info.run_id)
    ]
    assert len(family) == 3  # the parent and its two trials, all ranked by the same val_auc
    assert family["metrics.val_auc"].is_monotonic_decreasing
    names = {c.removeprefix("metrics.") for c in family.columns if c.startswith("metrics.")}
    bad = {n for n in names if not METRIC_NAME.match(n) and n not in RUN_LEVEL}
    assert not bad, f"metrics outside the <segment>_<metric> convention: {sorted(bad)}"


def test_walk_forward_maximises_the_mean_validation_auc_over_windows(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("split=walk_forward", "split.n_windows=2", "registry.register=false")
    result = run_training(app, config_yaml="split:\n  kind: walk_forward\n", run_tags={"k": "v"})
    run = mlflow.get_run(result.run_id)
    assert _read_artifact(result.run_id, "config/resolved_config.yaml").startswith("split:")
    assert run.data.tags["k"] == "v"
    m = run.data.metrics
    assert m["val_auc"] == pytest.approx((m["val_w1_auc"] + m["val_w2_auc"]) / 2)
    for k in (1, 2):
        assert 0 <= m[f"test_w{k}_precision"] <= 1 and m[f"test_w{k}_n_picks"] >= 0
    assert m["test_precision"] == pytest.approx(m["test_w2_precision"])  # the last window
    # the signal metrics per window, the last window's equal to the split's own
    assert m["test_rank_ic_mean"] == pytest.approx(m["test_w2_rank_ic_mean"])
    assert m["test_topk_precision_mean"] == pytest.approx(m["test_w2_topk_precision_mean"])
    mean_ic = (m["test_w1_rank_ic_mean"] + m["test_w2_rank_ic_mean"]) / 2
    assert m["test_wf_rank_ic_mean"] == pytest.approx(mean_ic)
    trials = mlflow.search_runs(
        experiment_ids=[result.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    for _, trial in trials.iterrows():
        per_window = [float(trial[f"tags.val_w{k}_auc"]) for k in (1, 2)]
        assert trial["metrics.val_auc"] == pytest.approx(np.mean(per_window))
    table = pd.read_csv(io.StringIO(_read_artifact(result.run_id, "walk_forward/windows.csv")))
    assert list(table["window"]) == [1, 2]
    # every window is scored on all of its rows (none freed with the last window's train rows)
    market = load_market(training_data(app.data))  # training's days (not the held-out ones)
    ds = build_dataset(market, None, app.label, app.split, app.universe.rules())
    for k in (1, 2):
        masks = ds.window(k - 1).masks()
        row = table.iloc[k - 1]
        assert (row["val_n_rows"], row["test_n_rows"]) == (masks["val"].sum(), masks["test"].sum())
    assert table["test_start"].iloc[1] > table["test_end"].iloc[0]
