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
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from ashare_autotune.evaluation.threshold import ThresholdChoice, precision_recall_at  # noqa: E402

log = logging.getLogger(__name__)

DPI = 110
CURVE_POINTS = 400  # thresholds on a curve: enough to look smooth, cheap on millions of rows


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
    return vis.plot_optimization_history(study, target_name="val_auc")


def _importances(study: optuna.Study, matplotlib_backend: bool) -> Any:
    vis = optuna.visualization.matplotlib if matplotlib_backend else optuna.visualization
    return vis.plot_param_importances(study, target_name="val_auc")


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
    y_val: np.ndarray,
    val_proba: np.ndarray,
    y_test: np.ndarray,
    test_proba: np.ndarray,
    choice: ThresholdChoice,
    gain: dict[str, float],
    out_dir: Path,
) -> list[Path]:
    """Precision-recall curve, precision/recall vs threshold, feature gain and calibration.

    Args:
        y_val, val_proba: validation labels and probabilities (the threshold was chosen there).
        y_test, test_proba: test labels and probabilities.
        choice: the chosen threshold and its target precision.
        gain: total gain per feature (`Booster.get_score(importance_type="gain")`).
        out_dir: where the PNG files go.

    Returns:
        The files written.
    """
    return [
        _save(
            pr_curve_figure(y_val, val_proba, y_test, test_proba, choice), out_dir / "pr_curve.png"
        ),
        _save(
            threshold_figure(y_val, val_proba, choice),
            out_dir / "precision_recall_vs_threshold.png",
        ),
        _save(feature_gain_figure(gain), out_dir / "feature_importance_gain.png"),
        _save(calibration_figure(y_test, test_proba), out_dir / "calibration.png"),
    ]


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


def threshold_figure(y_val: np.ndarray, val_proba: np.ndarray, choice: ThresholdChoice) -> Figure:
    """Validation precision and recall as the threshold moves, with the target line."""
    precision, recall, grid = _curve(y_val, val_proba)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    ax.plot(grid, precision, label="precision")
    ax.plot(grid, recall, label="recall")
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
    ax.set_xlabel("threshold (pick when probability >= threshold)")
    ax.set_ylim(0, 1)
    ax.set_title("Validation precision and recall vs threshold")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def feature_gain_figure(gain: dict[str, float]) -> Figure:
    """Horizontal bars of total gain per feature, largest on top."""
    items = sorted(gain.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6.4, max(3.0, 0.28 * len(items) + 1)), layout="constrained")
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (gain)")
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
