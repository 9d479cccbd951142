"""The rolling retrain's Optuna studies: one per tuning round (the first window's, then every
`rolling.retune_every` windows), each on its window's validation; a later round starts from
the previous round's best parameters (its first trial) and a rerun resumes the study."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from mlflow.entities import Run

from ashare_autotune.config.loading import objective_identity
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError
from ashare_autotune.jobs.rolling.window import WindowData
from ashare_autotune.models.base import ScoreModel
from ashare_autotune.tracking import trial_runs
from ashare_autotune.tuning import scoring
from ashare_autotune.tuning.objective import make_objective
from ashare_autotune.tuning.study import (
    check_objective,
    open_or_create_study,
    redact_uri,
    run_study,
)

log = logging.getLogger(__name__)


def tune_round(
    app: AppConfig,
    model: ScoreModel,
    data: WindowData,
    study_name: str,
    storage: str,
    warm: dict[str, Any] | None,
    run: Run,
) -> dict[str, Any]:
    """Run the round's study to `tuning.n_trials` (each trial a run nested under `run`) and
    return its best parameters.

    Args:
        app: the configuration (tuning, trading.top_k).
        model: the configured model.
        data: the tuning window's matrices (trials on `tuning.trial_rows`) and per-day rows.
        study_name, storage: the round's study.
        warm: the previous round's best parameters, enqueued as a new study's first trial.
        run: the rolling run's parent run.
    """
    study, created = open_or_create_study(app.tuning, study_name, storage)
    check_objective(study, objective_identity(app), scoring.TRIAL_METRICS)
    if created and warm:
        study.enqueue_trial(warm)
    metric = scoring.TRIAL_METRICS[app.tuning.metric]
    score = scoring.trial_scorer(
        app.tuning.metric, model, data.matrices, data.per_day, app.trading.top_k, None
    )
    objective = make_objective(data.matrices, model, app.tuning.eval_every, score)
    run_study(study, objective, app.tuning, [trial_runs.trial_callback(run, metric)])
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise UserError(
            f"study {study_name!r} in {redact_uri(storage)} has no complete trial: run more trials"
        )
    log.info("study %s: best %s %.4f, %s", study_name, metric, study.best_value, study.best_params)
    return dict(study.best_params)
