"""What drives the model: its own SHAP values (`FittedModel.contributions`) on a validation
sample."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import FittedModel

SHAP_ROWS = 3000  # a seeded sample: the ranking of features is stable well below this


def validation_sample(ds: Dataset, n_rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most `n_rows` validation rows' features (a copy of those rows only).

    Args:
        ds: the dataset (its validation rows).
        n_rows: the most rows to return.
        seed: seed of the sample.
    """
    rows = ds.positions("val")
    if len(rows) > n_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, n_rows, replace=False))
    return ds.features("val", rows)


def shap_values(fitted: FittedModel, x: pd.DataFrame) -> pd.DataFrame:
    """Per-row SHAP contributions of each feature to the margin (log-odds for the binary
    objective), from the model's tree SHAP; each row's contributions plus the bias sum to its
    margin.

    Args:
        fitted: the trained model.
        x: feature rows in the model's column order.

    Returns:
        float32 frame like `x` (the bias column dropped).
    """
    contribs = fitted.contributions(x)
    return pd.DataFrame(contribs[:, :-1].astype(np.float32), columns=x.columns)


def mean_abs_shap(contribs: pd.DataFrame) -> pd.DataFrame:
    """Features by mean |SHAP| (largest first): the model's reliance on each, in log-odds.

    Returns:
        columns feature, mean_abs_shap, mean_shap.
    """
    table = pd.DataFrame(
        {
            "feature": contribs.columns,
            "mean_abs_shap": contribs.abs().mean().to_numpy(np.float64),
            "mean_shap": contribs.mean().to_numpy(np.float64),
        }
    )
    return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)
