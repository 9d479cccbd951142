"""Hydra multirun: `python -m ashare_autotune.train -m label.min_return=a,b` runs one study per
value, each its own parent run (tagged and named by what it trains and its overrides) with its
trials nested under it, all in one experiment, and ends with one table comparing the jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import cli_env


@pytest.mark.slow
def test_two_job_multirun_gives_two_tagged_parents_with_their_trials(
    tmp_path: Path, tracking_uri: str
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "ashare_autotune.train",
        "-m",
        "debug=default",
        "tuning.n_trials=2",
        "label.min_return=0.03,0.05",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
    ]
    done = subprocess.run(
        cmd, cwd=tmp_path, env=cli_env(tracking_uri), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    experiments = [e for e in mlflow.search_experiments() if e.name != "Default"]
    assert [e.name for e in experiments] == ["ashare-autotune"]
    runs = mlflow.search_runs(experiment_ids=[experiments[0].experiment_id])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()].sort_values("params.label.min_return")
    assert list(parents["params.label.min_return"]) == ["0.03", "0.05"]
    for job, (_, parent) in enumerate(parents.iterrows()):
        value = parent["params.label.min_return"]
        assert f"label.min_return={value}" in parent["tags.hydra_overrides"]
        trained = f"{parent['tags.data_start']}..{parent['tags.data_end']}"
        assert parent["tags.mlflow.runName"] == (
            f"touch/full xgboost 2 trials {trained} "
            f"debug=default tuning.n_trials=2 label.min_return={value}"
        )
        assert parent["tags.hydra_job"] == str(job)
        trials = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
        assert sorted(trials["tags.number"].astype(int)) == [0, 1]
        assert trials["metrics.val_auc"].between(0, 1).all()
        assert 0 <= parent["metrics.test_topk_precision_mean"] <= 1
    assert parents["tags.study_name"].nunique() == 2  # one study per job
    table = (tmp_path / "multirun" / "sweep_summary.md").read_text().splitlines()
    assert table[0].startswith("| job | overrides | val AUC |")
    assert len(table) == 4  # header, rule, a row per job
    for _, parent in parents.iterrows():
        row = next(line for line in table[2:] if parent["run_id"] in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        value = parent["params.label.min_return"]
        assert cells[:3] == [
            parent["tags.hydra_job"],
            f"debug=default tuning.n_trials=2 label.min_return={value}",
            f"{parent['metrics.val_auc']:.4f}",
        ]
        # also an artifact of each job's parent run
        attached = mlflow.artifacts.load_text(f"runs:/{parent['run_id']}/sweep_summary.md")
        assert attached.splitlines() == table
    assert "sweep_summary.md" in done.stdout + done.stderr
