"""Plot files: what is drawn for a study with few trials, and the model plots as real PNGs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest

from ashare_autotune.evaluation.threshold import pick_threshold
from ashare_autotune.tracking.plots import (
    _picks_per_day,
    feature_gain_figure,
    write_model_plots,
    write_study_plots,
)

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
    days = np.datetime64("2024-01-01") + rng.integers(0, 60, len(y))
    choice = pick_threshold(y, proba, days, target)
    scored = (y, proba, days)
    written = write_model_plots(scored, scored, choice, {"a": 3.0, "b": 1.0}, tmp_path, 10)
    assert _names(written) == {
        "pr_curve.png",
        "precision_recall_vs_threshold.png",
        "threshold_frontier.png",
        "picks_per_day.png",
        "feature_importance_gain.png",
        "calibration.png",
    }
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path.name


def test_picks_per_day_count_the_capped_picks_with_zero_on_a_day_without() -> None:
    days = np.array(["2024-01-02"] * 12 + ["2024-01-03"] * 2 + ["2024-01-04"] * 3)
    proba = np.r_[np.full(12, 0.9), [0.8, 0.2], np.full(3, 0.1)]
    counts = _picks_per_day(days, proba, 0.5, 10)
    assert counts.tolist() == [10, 1, 0]  # twelve above, ten bought; one; none
    assert [d.strftime("%Y-%m-%d") for d in counts.index] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
    ]


def test_feature_importance_shows_the_30_features_of_most_gain_of_many() -> None:
    gain = {f"f{i:03d}": float(i) for i in range(192)}  # f191 has the most
    fig = feature_gain_figure(gain)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"f{i:03d}" for i in range(162, 192)]  # largest on top (last bar)
    assert len(ax.patches) == 30
    assert ax.get_title() == "Feature importance (gain): top 30 of 192 features"
    height_inches = fig.get_size_inches()[1]
    assert height_inches < 10  # 192 bars made 51 inches (5,600 pixels)
    plt.close(fig)


def test_feature_importance_of_few_features_shows_them_all() -> None:
    fig = feature_gain_figure({"a": 2.0, "b": 1.0})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b", "a"]
    assert fig.axes[0].get_title() == "Feature importance (gain): all features"
    plt.close(fig)
