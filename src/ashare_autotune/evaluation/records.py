"""Predictions as a record (qlib's pred.pkl): the scored rows of a segment, and the signal
metrics recomputed from nothing but that record."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.modelling.dataset import Dataset

SOURCE_COLUMNS = ["ts_code", "trade_date", "label", "fwd_return"]
RECORD_COLUMNS = [
    "ts_code",
    "trade_date",
    "probability",
    "pick",
    "eligible",
    "label",
    "fwd_return",
]


def prediction_record(rows: pd.DataFrame, proba: np.ndarray, threshold: float) -> pd.DataFrame:
    """The scored rows with the model's probability and pick (probability >= threshold).

    Args:
        rows: ts_code, trade_date, label, fwd_return of the fillable rows in the universe.
        proba: the model's probability per row.
        threshold: the pick threshold.

    Returns:
        The `RECORD_COLUMNS` frame; `eligible` is True (only universe rows reach a record).
    """
    proba = np.asarray(proba, dtype=np.float64)
    return pd.DataFrame(
        {
            "ts_code": rows["ts_code"].astype(str).to_numpy(),
            "trade_date": rows["trade_date"].to_numpy(),
            "probability": proba,
            "pick": proba >= threshold,
            "eligible": np.ones(len(rows), dtype=bool),
            "label": rows["label"].to_numpy(np.float64).astype(np.int8),
            "fwd_return": rows["fwd_return"].to_numpy(np.float64),
        }
    )


def signal_metrics(record: pd.DataFrame, top_k: int, prefix: str) -> dict[str, float]:
    """`signal.summarise_signal` of a record, named `<prefix>_<metric>`.

    Args:
        record: a `prediction_record`.
        top_k: the daily top-k list's size (`trading.top_k`).
        prefix: the segment, e.g. "test".

    Returns:
        ic_*, rank_ic_* (mean, std, ir, t, pos_share), topk_precision_mean/std,
        topk_excess_return_mean, picks_per_day, days_with_picks (a count) and days.
    """
    frame = record.rename(columns={"probability": "score"})
    summary = summarise_signal(daily_signal(frame, top_k))
    return {f"{prefix}_{name}": value for name, value in summary.items()}


def segment_records(
    ds: Dataset, scores: dict[str, np.ndarray], threshold: float, top_k: int
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """The record and the signal metrics of each scored segment of a dataset.

    Args:
        ds: the dataset (its fillable rows per segment, in the order they were scored).
        scores: the model's probabilities by segment name ("val", "test").
        threshold: the pick threshold.
        top_k: the daily top-k list's size.

    Returns:
        (records by segment, `<segment>_<metric>` signal metrics of all of them).
    """
    records, metrics = {}, {}
    for name, proba in scores.items():
        records[name] = prediction_record(ds.segment_rows(name, SOURCE_COLUMNS), proba, threshold)
        metrics |= signal_metrics(records[name], top_k, name)
    return records, metrics
