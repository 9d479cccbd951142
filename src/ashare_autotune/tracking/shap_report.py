"""The SHAP summary of the final model on the run: `plots/shap_summary.png` and
`shap/mean_abs.csv` (computed by `evaluation.explain`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ashare_autotune.evaluation.explain import mean_abs_shap, shap_values  # noqa: E402
from ashare_autotune.models.base import FittedModel  # noqa: E402
from ashare_autotune.tracking import runs as tracking  # noqa: E402

TOP = 20  # features shown in the summary plot


def log_shap(
    fitted: FittedModel, x: pd.DataFrame, seed: int, member: str = "", figure: bool = True
) -> pd.DataFrame:
    """Compute SHAP values of `x`, log the mean |SHAP| table and the summary plot.

    Args:
        fitted: the final model (or an ensemble's member).
        x: the sampled validation rows (`explain.validation_sample`).
        seed: seed of the plot's vertical jitter.
        member: an ensemble member's name: its table in `shap/<member>/`, its plot
            `plots/shap_summary_<member>.png`.
        figure: log the summary plot too (`mlflow.figures`).

    Returns:
        the mean |SHAP| table (feature, mean_abs_shap, mean_shap).
    """
    contribs = shap_values(fitted, x)
    table = mean_abs_shap(contribs)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        table.to_csv(out / "mean_abs.csv", index=False)
        tracking.log_artifacts(out, f"shap/{member}" if member else "shap")
    if not figure:
        return table
    with tempfile.TemporaryDirectory() as tmp:
        fig = shap_summary_figure(contribs, x, table, seed)
        name = f"shap_summary_{member}.png" if member else "shap_summary.png"
        fig.savefig(Path(tmp) / name, dpi=110, bbox_inches="tight")
        tracking.log_artifacts(Path(tmp), "plots")
    return table


def shap_summary_figure(
    contribs: pd.DataFrame, x: pd.DataFrame, table: pd.DataFrame, seed: int
) -> Figure:
    """Each top feature's SHAP values as a row of dots, coloured by the feature's value rank in
    the sample (blue low, red high): which way a feature pushes the probability, and how far."""
    top = table["feature"].head(TOP).tolist()[::-1]  # largest at the top
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(8, 0.35 * len(top) + 1.5))
    ax = fig.subplots()
    for i, name in enumerate(top):
        values = contribs[name].to_numpy()
        colour = x[name].rank(pct=True).fillna(0.5).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(values))
        dots = ax.scatter(values, i + jitter, c=colour, cmap="coolwarm", s=4, alpha=0.6)
    ax.set_yticks(range(len(top)), top)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="SHAP value (contribution to the log-odds)", title="SHAP summary (validation)")
    if top:
        fig.colorbar(dots, ax=ax, label="feature value (rank in sample)")
    return fig
