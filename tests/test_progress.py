"""The study's progress: one compact line per trial (n/N, value, best so far, pruned count,
elapsed, time left) instead of Optuna's long trial lines."""

from __future__ import annotations

import logging

import optuna
import pytest

from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.tuning.progress import clock, time_left
from ashare_autotune.tuning.study import open_or_create_study, run_study

PROGRESS_LOGGER = "ashare_autotune.tuning.progress"


def _objective(trial: optuna.Trial) -> float:
    """Complete with x, pruned when x < 0.3 (a report first, as a model's would be)."""
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(x, step=10)
    if x < 0.3:
        raise optuna.TrialPruned()
    return x


def _study(tmp_path_name: str) -> optuna.Study:
    sampler = optuna.samplers.RandomSampler(seed=3)
    return optuna.create_study(direction="maximize", sampler=sampler, study_name=tmp_path_name)


def test_each_trial_logs_one_line_with_its_count_the_best_so_far_and_the_pruned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    study = _study("progress")
    with caplog.at_level(logging.INFO):
        run_study(study, _objective, TuningConfig(n_trials=8))
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert len(lines) == 8
    trials = study.get_trials(deepcopy=False)
    best_so_far: float | None = None
    pruned = 0
    for n, (line, trial) in enumerate(zip(lines, trials, strict=True), start=1):
        if trial.state == optuna.trial.TrialState.PRUNED:
            pruned += 1
            assert f"(#{trial.number}) pruned at step 10 |" in line
        else:
            best_so_far = max(best_so_far or 0.0, float(trial.value))
            assert f"(#{trial.number}) val_auc {trial.value:.4f} |" in line
        assert line.startswith(f"trial {n}/8 ")
        assert f"| {pruned} pruned |" in line
        if best_so_far is not None:
            assert f"best {best_so_far:.4f}" in line
        assert len(line) < 120
    assert 0 < pruned < 8, "the seed gives both kinds of trial"
    assert lines[-1].endswith("~0:00 left")


def test_a_resumed_study_counts_its_earlier_trials(caplog: pytest.LogCaptureFixture) -> None:
    study = _study("resumed")
    run_study(study, _objective, TuningConfig(n_trials=3))
    earlier_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    with caplog.at_level(logging.INFO):
        run_study(study, _objective, TuningConfig(n_trials=5))
    lines = [r.getMessage() for r in caplog.records if r.name == PROGRESS_LOGGER]
    assert [line.split(" (")[0] for line in lines] == ["trial 4/5", "trial 5/5"]
    pruned = earlier_pruned + sum(
        t.state == optuna.trial.TrialState.PRUNED for t in study.trials[3:]
    )
    assert f"| {pruned} pruned |" in lines[-1]
    assert f"best {study.best_value:.4f} (#{study.best_trial.number})" in lines[-1]


def test_optuna_no_longer_logs_each_trial_with_its_parameters(
    caplog: pytest.LogCaptureFixture, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = f"sqlite:///{tmp_path_factory.mktemp('quiet') / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.INFO)  # as a fresh process has it
    optuna.logging.enable_propagation()  # Optuna's records reach caplog
    try:
        with caplog.at_level(logging.INFO):
            study, _ = open_or_create_study(TuningConfig(n_trials=2), "quiet", storage)
            run_study(study, _objective, TuningConfig(n_trials=2))
    finally:
        optuna.logging.disable_propagation()
    optuna_lines = [r.getMessage() for r in caplog.records if r.name.startswith("optuna")]
    assert not [m for m in optuna_lines if "finished with value" in m or "parameters" in m]
    assert not [m for m in optuna_lines if "A new study created" in m]


@pytest.mark.parametrize(
    ("elapsed", "ran", "remaining", "timeout", "left"),
    [
        (30.0, 3, 7, None, 70.0),  # 10 s a trial, 7 to go
        (30.0, 3, 7, 60.0, 30.0),  # the time budget ends first
        (30.0, 0, 7, None, None),  # nothing to go by yet
        (30.0, 0, 7, 100.0, 70.0),  # but the budget
        (30.0, 3, 0, None, 0.0),  # done
    ],
)
def test_time_left_is_the_mean_trial_time_times_the_trials_to_go_within_the_budget(
    elapsed: float, ran: int, remaining: int, timeout: float | None, left: float | None
) -> None:
    assert time_left(elapsed, ran, remaining, timeout) == left


def test_clock_reads_as_minutes_or_hours() -> None:
    assert [clock(s) for s in (0, 59.6, 61, 3599, 3600 + 62)] == [
        "0:00",
        "1:00",
        "1:01",
        "59:59",
        "1:01:02",
    ]
