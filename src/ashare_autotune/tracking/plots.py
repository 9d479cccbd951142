"""Plots of a study and its final model, written as files (PNG, plus Optuna's interactive HTML).

No MLflow here: the pipeline writes the files into a temporary directory and `tracking` logs it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from ashare_autotune.evaluation.threshold import (  # noqa: E402
    ThresholdChoice,
    capped_picks,
    precision_recall_at,
)

log = logging.getLogger(__name__)

DPI = 110
CURVE_POINTS = 400  # thresholds on a curve: enough to look smooth, cheap on millions of rows
TOP_FEATURES = 30  # bars of the feature importance plot


def write_study_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimisation history and parameter importances as PNG, and both in one HTML page.

    Importances need at least two completed trials; with fewer they are left out (logged).

    Args:
        study: the finished study.
        out_dir: where the files go.

    Returns:
        The files written.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        log.warning("no completed trial: no study plots")
        return []
    makers = {"optimization_history": _history}
    if len(complete) >= 2:
        makers["param_importances"] = _importances
    else:
        log.info("parameter importances need >= 2 completed trials, the study has 1: skipped")
    written, figures = [], []
    for name, make in makers.items():
        # rc_context: Optuna switches matplotlib to its ggplot style globally; keep that local
        with warnings.catch_warnings(), plt.rc_context():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = make(study, matplotlib_backend=True)
            written.append(_save(axes.figure, out_dir / f"{name}.png", tight=True))
        figures.append(make(study, matplotlib_backend=False))
    written.append(_write_html(figures, out_dir / "optuna_study.html", study.study_name))
    return written


def _history(study: optuna.Study, matplotlib_backend: bool) -> Any:
    vis = optuna.visualization.matplotlib if matplotlib_backend else optuna.visualization
    return vis.plot_optimization_history(study, target_name=_target(study))


def _importances(study: optuna.Study, matplotlib_backend: bool) -> Any:
    vis = optuna.visualization.matplotlib if matplotlib_backend else optuna.visualization
    return vis.plot_param_importances(study, target_name=_target(study))


def _target(study: optuna.Study) -> str:
    """The objective's name (the pipeline records it on the study), val_auc by default."""
    return str(study.user_attrs.get("objective_metric", "val_auc"))


def _write_html(figures: list[Any], path: Path, title: str) -> Path:
    """One self-contained page (plotly.js inlined once: the UI may have no internet)."""
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)
    ]
    body = "\n".join(parts)
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def write_model_plots(
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    choice: ThresholdChoice,
    gain: dict[str, float],
    out_dir: Path,
    max_picks_per_day: int,
    probabilities: bool = True,
) -> list[Path]:
    """Precision-recall curve, the threshold's frontier (precision, recall, picks and days
    under the per-day cap), picks per day at the threshold, feature gain and calibration.

    Args:
        val: validation (labels, probabilities, signal days): the threshold was chosen there.
        test: the same of test.
        choice: the chosen threshold with its frontier (`pick_threshold`).
        gain: total gain per feature (`FittedModel.importance`).
        out_dir: where the PNG files go.
        max_picks_per_day: the picks a day that count (`threshold.max_picks_per_day`).
        probabilities: the scores are probabilities (the binary objective): only then is
            there a calibration curve.

    Returns:
        The files written.
    """
    (y_val, val_proba, _), (y_test, test_proba, _) = val, test
    per_day = {
        name: _picks_per_day(days, proba, choice.threshold, max_picks_per_day)
        for name, (_, proba, days) in (("validation", val), ("test", test))
    }
    files = [
        _save(
            pr_curve_figure(y_val, val_proba, y_test, test_proba, choice), out_dir / "pr_curve.png"
        ),
        _save(threshold_figure(choice), out_dir / "precision_recall_vs_threshold.png"),
        _save(frontier_figure(choice), out_dir / "threshold_frontier.png"),
        _save(
            picks_per_day_figure(per_day, choice, max_picks_per_day),
            out_dir / "picks_per_day.png",
        ),
        _save(feature_gain_figure(gain), out_dir / "feature_importance_gain.png"),
    ]
    if probabilities:
        files.append(_save(calibration_figure(y_test, test_proba), out_dir / "calibration.png"))
    return files


def _picks_per_day(days: np.ndarray, proba: np.ndarray, threshold: float, cap: int) -> pd.Series:
    """Picks bought each day at the threshold under the cap (0 on a day without one)."""
    picked = capped_picks(proba, days, threshold, cap)
    counts = pd.Series(picked.astype(np.int64)).groupby(pd.to_datetime(days)).sum()
    return counts.sort_index()


def _curve(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and thresholds on a bounded grid: probability quantiles (the bulk),
    evenly spaced probabilities and the highest scores (the sparse top tail, where a strict
    precision target puts the threshold)."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    top = np.sort(proba)[-CURVE_POINTS // 4 :]
    grid = np.unique(
        np.concatenate(
            [
                np.quantile(proba, np.linspace(0, 1, CURVE_POINTS)),
                np.linspace(proba.min(), proba.max(), CURVE_POINTS),
                top,
            ]
        )
    )
    precision, recall, _ = precision_recall_at(y, proba, grid)
    return precision, recall, grid


def pr_curve_figure(
    y_val: np.ndarray,
    val_proba: np.ndarray,
    y_test: np.ndarray,
    test_proba: np.ndarray,
    choice: ThresholdChoice,
) -> Figure:
    """Precision against recall on validation and test, the chosen threshold marked on both."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    for name, y, proba in (("validation", y_val, val_proba), ("test", y_test, test_proba)):
        precision, recall, _ = _curve(y, proba)
        keep = recall > 0
        (line,) = ax.plot(recall[keep], precision[keep], label=name)
        at = precision_recall_at(
            np.asarray(y, np.int64), np.asarray(proba), np.array([choice.threshold])
        )
        ax.plot(at[1], at[0], "o", color=line.get_color(), markersize=8)
    ax.axhline(choice.target_precision, color="grey", linestyle="--", label="target precision")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xscale("log")  # a strict precision target usually means a small recall
    ax.set_title(f"Precision-recall (dots: threshold {choice.threshold:.3f})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def threshold_figure(choice: ThresholdChoice) -> Figure:
    """Validation precision and recall under the per-day cap as the threshold moves, with the
    target line and the chosen threshold."""
    frontier = _frontier(choice)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    ax.plot(frontier["threshold"], frontier["precision"], label="precision")
    ax.plot(frontier["threshold"], frontier["recall"], label="recall")
    ax.axhline(
        choice.target_precision,
        color="grey",
        linestyle="--",
        label=f"target precision {choice.target_precision:.2f}",
    )
    status = "meets target" if choice.feasible else "target NOT met"
    ax.axvline(
        choice.threshold,
        color="red",
        linestyle=":",
        label=f"chosen {choice.threshold:.3f} ({status})",
    )
    ax.set_xlabel("threshold (pick when probability >= threshold, best of the day first)")
    ax.set_ylim(0, 1)
    ax.set_title("Validation precision and recall vs threshold (picks capped per day)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def frontier_figure(choice: ThresholdChoice) -> Figure:
    """The validation frontier under the per-day cap: precision against recall (where picks
    and days suffice, solid), and picks and days with a pick against the threshold."""
    frontier = _frontier(choice)
    enough = frontier["enough"].to_numpy(bool)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.2), layout="constrained")
    top.plot(frontier["recall"], frontier["precision"], color="lightgrey", label="too few")
    shown = frontier["precision"].where(enough)
    top.plot(frontier["recall"], shown, color="C0", label="enough picks and days")
    top.plot(choice.recall, choice.precision, "o", color="red", markersize=8, label="chosen")
    top.axhline(choice.target_precision, color="grey", linestyle="--", label="target")
    top.set_xlabel("recall")
    top.set_ylabel("precision")
    top.set_title(
        f"Validation frontier (best precision with enough picks {choice.best_precision:.3f})"
    )
    top.legend(loc="best")
    top.grid(alpha=0.3)
    bottom.plot(frontier["threshold"], frontier["n_picks"], label="picks")
    bottom.plot(frontier["threshold"], frontier["n_days"], label="days with a pick")
    bottom.axvline(choice.threshold, color="red", linestyle=":", label="chosen")
    bottom.set_yscale("symlog")
    bottom.set_xlabel("threshold")
    bottom.legend(loc="best")
    bottom.grid(alpha=0.3)
    return fig


def picks_per_day_figure(
    per_day: dict[str, pd.Series], choice: ThresholdChoice, max_picks_per_day: int
) -> Figure:
    """Picks bought each day at the chosen threshold, per segment, with the cap."""
    fig, ax = plt.subplots(figsize=(8.0, 4.0), layout="constrained")
    for name, counts in per_day.items():
        days = int((counts > 0).sum())
        ax.step(counts.index, counts.to_numpy(), where="mid", label=f"{name} ({days} days)")
    ax.axhline(max_picks_per_day, color="grey", linestyle="--", label="cap per day")
    ax.set_ylabel("picks")
    ax.set_title(f"Picks per day at threshold {choice.threshold:.3f}")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def _frontier(choice: ThresholdChoice) -> pd.DataFrame:
    if choice.frontier is None:
        raise ValueError("the threshold choice carries no frontier (made by pick_threshold)")
    return choice.frontier


def feature_gain_figure(gain: dict[str, float], top: int = TOP_FEATURES) -> Figure:
    """Horizontal bars of total gain of the `top` features with the most, largest on top; the
    title says of how many (192 bars of `features=full` made a 5,600-pixel picture)."""
    items = sorted(gain.items(), key=lambda kv: kv[1])[-top:]
    fig, ax = plt.subplots(figsize=(6.4, max(3.0, 0.28 * len(items) + 1)), layout="constrained")
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("total gain")
    shown = f"top {len(items)} of {len(gain)} features" if len(gain) > top else "all features"
    ax.set_title(f"Feature importance (gain): {shown}")
    return fig


def calibration_figure(y_test: np.ndarray, test_proba: np.ndarray, n_bins: int = 10) -> Figure:
    """Reliability diagram on test (observed positive rate per probability bin) and a histogram."""
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(6.4, 6.4),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
        layout="constrained",
    )
    observed, predicted = calibration_curve(y_test, test_proba, n_bins=n_bins, strategy="quantile")
    lo = float(min(predicted.min(), observed.min(), np.min(test_proba)))
    hi = float(max(predicted.max(), observed.max(), np.max(test_proba)))
    top.plot([lo, hi], [lo, hi], color="grey", linestyle="--", label="perfectly calibrated")
    top.plot(predicted, observed, "o-", label="model (test, quantile bins)")
    top.set_ylabel("observed positive rate")
    top.set_title("Calibration of probabilities (test)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.hist(test_proba, bins=50, range=(lo, hi))
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("rows")
    return fig


def _save(fig: Figure, path: Path, tight: bool = False) -> Path:
    # Our figures are laid out when made; Optuna's put the legend outside the axes ("tight").
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path
