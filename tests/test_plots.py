"""Plot files: what is drawn for a study with few trials, and the model plots as real PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from ashare_autotune.evaluation.threshold import pick_threshold
from ashare_autotune.tracking.plots import write_model_plots, write_study_plots

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(values: list[float | None]) -> optuna.Study:
    """A study whose trials return `values` (None: pruned)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for value in values:
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.01, 0.3)
        trial.suggest_int("max_depth", 2, 8)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study


def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


def test_study_plots_include_importances_from_two_completed_trials(tmp_path: Path) -> None:
    written = write_study_plots(_study([0.6, 0.7, None]), tmp_path)
    assert _names(written) == {
        "optimization_history.png",
        "param_importances.png",
        "optuna_study.html",
    }
    html = (tmp_path / "optuna_study.html").read_text()
    assert html.count("* plotly.js v") == 1  # the library inlined once, for both charts
    assert html.count("Plotly.newPlot(") == 2 and "Hyperparameter Importances" in html


def test_one_completed_trial_gives_the_history_only(tmp_path: Path) -> None:
    written = write_study_plots(_study([0.6, None]), tmp_path)
    assert _names(written) == {"optimization_history.png", "optuna_study.html"}


def test_a_study_without_completed_trials_draws_nothing(tmp_path: Path) -> None:
    assert write_study_plots(_study([None, None]), tmp_path) == []


@pytest.mark.parametrize("target", [0.6, 0.99])  # a met and an unreachable precision target
def test_model_plots_are_png_files(tmp_path: Path, target: float) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2_000)
    proba = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.15, len(y)), 0, 1)
    choice = pick_threshold(y, proba, target)
    written = write_model_plots(y, proba, y, proba, choice, {"a": 3.0, "b": 1.0}, tmp_path)
    assert len(written) == 4
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name
