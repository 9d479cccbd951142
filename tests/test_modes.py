"""tuning.mode: workers add their share of trials to one study and register nothing; finalize
runs no trial and registers the best; bad settings fail naming the key."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError
from ashare_autotune.jobs.pipeline import PARENT_RUN_ATTR, run_training, run_worker
from ashare_autotune.tuning.study import FINISHED_STATES
from tests.test_resume import trial_runs

MODEL = "modes-model"


@pytest.mark.slow
def test_workers_add_their_trials_and_finalize_registers_the_best(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    common = ("tuning.study_name=modes", f"registry.model_name={MODEL}")
    first = run_worker(compose_app("tuning.mode=worker", "tuning.n_trials=2", *common))
    second = run_worker(compose_app("tuning.mode=worker", "tuning.n_trials=1", *common))
    assert (first.n_trials_run, second.n_trials_run, second.n_trials_total) == (2, 1, 3)
    assert second.run_id == first.run_id
    assert MlflowClient().search_registered_models() == []

    result = run_training(compose_app("tuning.mode=finalize", *common))

    study = optuna.load_study(study_name="modes", storage="sqlite:///optuna.db")
    finished = sorted(t.number for t in study.trials if t.state in FINISHED_STATES)
    assert finished == [0, 1, 2] and result.n_trials == 3
    assert result.run_id == first.run_id == study.user_attrs[PARENT_RUN_ATTR]
    assert trial_runs(result.run_id, result.experiment_id) == finished
    assert result.best_params == study.best_params and result.model_version == "1"
    parents = mlflow.search_runs(filter_string="tags.mlflow.parentRunId IS NULL")
    assert list(parents["run_id"]) == [result.run_id]


def test_finalize_without_a_study_names_the_storage(
    compose_app: Callable[..., AppConfig], tracking_uri: str
) -> None:
    app = compose_app("tuning.mode=finalize", "tuning.study_name=never-run")
    with pytest.raises(UserError, match="no study 'never-run' in tuning.storage=.*optuna.db"):
        run_training(app)
