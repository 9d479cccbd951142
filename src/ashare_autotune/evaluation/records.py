"""Predictions as a record (qlib's pred.pkl): every scored candidate of a segment, whether its
entry fills, and the signal metrics recomputed from nothing but that record.

The record holds the unfillable and the unlabelled candidates too: at T nobody knows which
entries will fill, so a top-k taken from a record of the fillable rows only would know it in
advance (`signal.bought_top_k` ranks among all and counts an unfillable pick as not bought).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.evaluation.signal import daily_signal, summarise_signal
from ashare_autotune.evaluation.threshold import signal_picks
from ashare_autotune.modelling.dataset import Dataset

SOURCE_COLUMNS = ["ts_code", "trade_date", "label", "fwd_return", "fillable"]
RECORD_COLUMNS = [
    "ts_code",
    "trade_date",
    "probability",
    "pick",
    "eligible",
    "fillable",
    "label",
    "fwd_return",
]


def prediction_record(
    rows: pd.DataFrame,
    proba: np.ndarray,
    threshold: float,
    max_picks_per_day: int | None = None,
) -> pd.DataFrame:
    """The scored rows with the model's probability and pick (probability >= threshold, and
    with `max_picks_per_day` among the day's best scores: `threshold.signal_picks`).

    Args:
        rows: ts_code, trade_date, label (NaN where unknown), fwd_return and fillable of the
            candidates in the universe (without fillable: every row fills).
        proba: the model's probability per row.
        threshold: the pick threshold.
        max_picks_per_day: the picks a day (`threshold.max_picks_per_day`; None: no cap).

    Returns:
        The `RECORD_COLUMNS` frame; `eligible` is True (only universe rows reach a record),
        `pick` is the signal at T (fill or not), label float32 with NaN where unknown.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) != len(rows):
        raise ValueError(f"{len(proba)} probabilities for {len(rows)} rows")
    fillable = (
        rows["fillable"].to_numpy(bool) if "fillable" in rows else np.ones(len(rows), dtype=bool)
    )
    return pd.DataFrame(
        {
            "ts_code": rows["ts_code"].astype(str).to_numpy(),
            "trade_date": rows["trade_date"].to_numpy(),
            "probability": proba,
            "pick": signal_picks(
                proba, rows["trade_date"].to_numpy(), threshold, max_picks_per_day
            ),
            "eligible": np.ones(len(rows), dtype=bool),
            "fillable": fillable,
            "label": rows["label"].to_numpy(np.float32),
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
        topk_excess_return_mean, topk_bought_mean, picks_per_day, days_with_picks (a count)
        and days.
    """
    frame = record.rename(columns={"probability": "score"})
    summary = summarise_signal(daily_signal(frame, top_k))
    return {f"{prefix}_{name}": value for name, value in summary.items()}


def segment_records(
    ds: Dataset,
    scores: dict[str, np.ndarray],
    threshold: float,
    top_k: int,
    max_picks_per_day: int | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """The record and the signal metrics of each scored segment of a dataset.

    Args:
        ds: the dataset (every candidate per segment, in the order they were scored).
        scores: the model's probabilities of every candidate (`Dataset.predict(...,
            all_rows=True)`) by segment name ("val", "test").
        threshold: the pick threshold.
        top_k: the daily top-k list's size.
        max_picks_per_day: the picks a day (`threshold.max_picks_per_day`).

    Returns:
        (records by segment, `<segment>_<metric>` signal metrics of all of them).
    """
    records, metrics = {}, {}
    for name, proba in scores.items():
        rows = ds.segment_rows(name, SOURCE_COLUMNS, all_rows=True)
        records[name] = prediction_record(rows, proba, threshold, max_picks_per_day)
        metrics |= signal_metrics(records[name], top_k, name)
    return records, metrics
