"""A finished run reads as this project: its parent run is named by what it trained, its trial
runs last as long as the trials did, the experiment is of the model-training kind with a
headline view, and the job ends with a summary of what was learned and the next commands."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import mlflow
import pytest

from ashare_autotune.data.synthetic import CAVEAT
from ashare_autotune.tracking import experiment
from ashare_autotune.tracking.summary import (
    ACCOUNT_COLUMNS,
    Outcome,
    account_table,
    training_summary,
)
from ashare_autotune.tracking.trial_runs import child_runs
from tests.conftest import TrainedModel, cli_env, run_entry_point, train_command


@pytest.fixture
def trained_run(trained_model: TrainedModel) -> mlflow.entities.Run:
    mlflow.set_tracking_uri(trained_model.tracking_uri)
    return mlflow.get_run(trained_model.result.run_id)


def test_the_parent_run_is_named_by_label_features_model_trials_and_days(
    trained_run: mlflow.entities.Run,
) -> None:
    tags = trained_run.data.tags
    # conf/debug: the touch label, every feature set, XGBoost, 2 trials
    expected = f"touch/full xgboost 2 trials {tags['data_start']}..{tags['data_end']}"
    assert trained_run.info.run_name == expected


def test_each_trial_run_lasts_as_long_as_its_trial(trained_run: mlflow.entities.Run) -> None:
    trials = child_runs(trained_run.info.run_id, trained_run.info.experiment_id)
    assert len(trials) == 2
    for trial in trials.to_dict("records"):
        start = datetime.fromisoformat(trial["tags.datetime_start"])
        end = datetime.fromisoformat(trial["tags.datetime_complete"])
        assert abs(trial["start_time"].timestamp() - start.timestamp()) < 0.002
        assert abs(trial["end_time"].timestamp() - end.timestamp()) < 0.002
        assert (trial["end_time"] - trial["start_time"]).total_seconds() > 0.05


def test_the_experiment_is_model_training_with_a_view_of_the_headline_metrics(
    trained_run: mlflow.entities.Run,
) -> None:
    tags = mlflow.get_experiment(trained_run.info.experiment_id).tags
    assert tags[experiment.KIND_TAG] == "custom_model_development"
    view = json.loads(tags[experiment.VIEW_TAG])
    columns = [c for c in view["selectedColumns"] if c.startswith("metrics.")]
    assert columns == [f"metrics.`{m}`" for m in experiment.HEADLINE_METRICS]
    # a binary model logs every headline metric on its parent run
    assert set(experiment.HEADLINE_METRICS) <= set(trained_run.data.metrics)
    url = experiment.view_url(trained_run.info.experiment_id)
    assert url.endswith(
        f"/runs?viewStateShareKey={experiment.VIEW_KEY}&workflowType=machine_learning"
    )


def test_the_summary_says_what_was_learned_beside_the_baselines_and_what_to_run_next(
    trained_model: TrainedModel, trained_run: mlflow.entities.Run
) -> None:
    result = trained_model.result
    outcome = Outcome("ashare-autotune-debug", result.model_version, "the reason", "champion")
    data_args = ["data.n_stocks=40"]
    text = training_summary(
        result.run_id, result.best_params, outcome, data_args, trained_model.tracking_uri
    )
    metrics = trained_run.data.metrics
    assert text.splitlines()[0] == f"summary: {trained_run.info.run_name} (run {result.run_id})"
    assert "2 trials, " in text and f"val_auc {metrics['best_trial_val_auc']:.4f}" in text
    for name in result.best_params:
        assert f" {name}=" in text
    auc = f"AUC {metrics['val_auc']:.4f} {metrics['test_auc']:.4f}"
    assert auc in " ".join(text.split())
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    for who in ("model", "reversal_20", "volatility_20", "amount_20", "blend"):
        stem = "test_bt_" if who == "model" else f"test_baseline_{who}_bt_"
        assert f"{metrics[stem + 'annual_return']:+.1%}" in rows[who]
    assert f"{metrics['test_bt_benchmark_annual_return']:+.1%}" in rows["index"]
    assert f"ashare-autotune-debug v{result.model_version} @champion: the reason" in text
    assert f"  caveat      {CAVEAT}" in text
    model = "model_uri=models:/ashare-autotune-debug@champion data.n_stocks=40"
    assert f"python -m ashare_autotune.predict {model}" in text
    assert f"python -m ashare_autotune.evaluate {model}" in text
    ui = f"mlflow ui --backend-store-uri {trained_model.tracking_uri}"
    assert ui in text and experiment.view_url(trained_run.info.experiment_id) in text


@pytest.mark.slow
def test_the_command_line_ends_with_a_summary_whose_predict_command_works(
    tmp_path: Path, tracking_uri: str
) -> None:
    done = subprocess.run(
        train_command(tmp_path, "tuning.n_trials=2"),
        cwd=tmp_path,
        env=cli_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "finished with value" not in out and "Downloading artifacts" not in out
    assert "trial 2/2 (#1) " in out
    summary = out[out.index("summary: ") :]
    assert CAVEAT in summary
    commands = [line.split(" -m ")[1].split() for line in summary.splitlines() if " -m " in line]
    assert [c[0] for c in commands] == ["ashare_autotune.predict", "ashare_autotune.evaluate"]
    # the debug market's data keys, so that the model's own market is loaded
    assert commands[0][1:] == [
        "model_uri=models:/ashare-autotune-debug@champion",
        "data.n_stocks=40",
        "data.n_days=300",
        "data.signal_strength=20.0",
    ]
    predicted = run_entry_point("predict", tmp_path, tracking_uri, *commands[0][1:])
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert "picks on " in predicted.stdout


def test_the_account_table_puts_each_value_under_its_column_name() -> None:
    metrics = {}
    for stem in ("test_bt_", "test_baseline_reversal_20_bt_"):
        metrics |= {
            f"{stem}annual_return": 0.193,
            f"{stem}excess_return_exposure": -0.09,
            f"{stem}information_ratio_exposure": -1.43,
            f"{stem}sharpe": 1.08,
            f"{stem}max_drawdown": -0.092,
        }
    metrics["test_bt_benchmark_annual_return"] = 0.294
    header, *rows = account_table(metrics, "000905.SH")
    # where each column name ends, and where each value of a row ends
    name_ends = [header.index(name) + len(name) for name, _, _ in ACCOUNT_COLUMNS]
    for row in rows[:-1]:
        value_ends = [m.end() for m in re.finditer(r"\S+", row)][1:]
        assert value_ends == name_ends, row
    assert [m.end() for m in re.finditer(r"\S+", rows[-1])][-1] == name_ends[0]  # the index
