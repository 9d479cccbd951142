"""A segment's scored candidates as the threshold and the classification metrics read them, and
the threshold chosen on validation under the precision constraint (`threshold` group)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ashare_autotune.config.choices import PicksRule
from ashare_autotune.config.model import ModelConfig
from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.evaluation.picks_rule import pick_rule_threshold, rule_scores
from ashare_autotune.evaluation.threshold import (
    ThresholdChoice,
    pick_threshold,
    probability_grid,
    score_grid,
)
from ashare_autotune.modelling.dataset import Dataset
from ashare_autotune.models.base import FittedModel, segment_scores


class ScoredRows(NamedTuple):
    """A segment's candidates as the threshold and the classification metrics read them."""

    labels: np.ndarray  # 0/1 (0 where not counted)
    scores: np.ndarray
    days: np.ndarray
    counted: np.ndarray  # fillable and labelled: a pick here is a hit or a miss


def choose_threshold(
    th: ThresholdConfig,
    objective: str,
    y_val: np.ndarray,
    val_proba: np.ndarray,
    val_days: np.ndarray,
    fillable: np.ndarray | None = None,
) -> ThresholdChoice:
    """The threshold under the configured precision constraint, chosen on validation.

    Args:
        th: the `threshold` group.
        objective: the model's objective (`model.objective`): only the binary objective's
            score is a probability; another's threshold is searched over its validation
            quantiles at the levels threshold.low..high (`score_grid`).
        y_val, val_proba: validation labels and scores.
        val_days: each validation row's signal day (the per-day cap and `min_days`).
        fillable: the rows whose order can fill (default: all).
    """
    grid = None
    if objective != "binary":
        grid = score_grid(val_proba, th.low, th.high, th.step)
    return pick_threshold(
        y_val,
        val_proba,
        val_days,
        th.target_precision,
        th.low,
        th.high,
        th.step,
        th.min_picks,
        th.max_picks_per_day,
        th.min_days,
        fillable,
        grid,
    )


def segment_days(ds: Dataset, segment: str, all_rows: bool = False) -> np.ndarray:
    """Each measured row's signal day of a segment, in the row order of `ds.labels(segment)`
    (with `all_rows`, of every candidate, in the order of `ds.labels(segment, all_rows=True)`)."""
    return ds.segment_rows(segment, ["trade_date"], all_rows)["trade_date"].to_numpy()


def candidates(ds: Dataset, segment: str, scores: np.ndarray) -> ScoredRows:
    """Every candidate of a segment with its score, day and whether it counts by label.

    A candidate that cannot fill its entry, or whose label is unknown, takes its slot among
    the day's best scores but is neither a hit nor a miss (`threshold.capped_picks`).

    Args:
        ds: the dataset.
        segment: "val" or "test".
        scores: the model's score of every candidate (`Dataset.predict(..., all_rows=True)`).
    """
    y = ds.labels(segment, all_rows=True).astype(np.float64)
    counted = ds.fillable(segment) & np.isfinite(y)
    return ScoredRows(np.where(counted, y, 0.0), scores, segment_days(ds, segment, True), counted)


def scored_segments(
    ds: Dataset, fitted: FittedModel, model: ModelConfig, th: ThresholdConfig
) -> tuple[ThresholdChoice, dict[str, np.ndarray]]:
    """The threshold chosen on validation and the score of every candidate of validation and
    test that the picks, records and backtests read (`threshold.signal_picks` at it).

    The model's own score (`models.base.segment_scores`), its threshold by `choose_threshold`;
    with `model.picks=filter_then_rank` (an ensemble), the classifier member's threshold
    chosen with the rule's picks (`picks_rule.pick_rule_threshold` over the probability grid)
    and the rule's score (`picks_rule.rule_scores`) in place of the blend.
    """
    if model.picks != PicksRule.filter_then_rank:
        scores = {seg: segment_scores(ds, seg, fitted) for seg in ("val", "test")}
        choice = choose_threshold(th, model.objective, *candidates(ds, "val", scores["val"]))
        return choice, scores
    classifier, ranker = model.rule_members()
    names = list(fitted.members)  # type: ignore[attr-defined]
    at = names.index(classifier), names.index(ranker)
    parts = {}
    for seg in ("val", "test"):
        each = ds.predict(seg, fitted.member_scores, all_rows=True)  # type: ignore[attr-defined]
        parts[seg] = (each[:, at[0]], each[:, at[1]], segment_days(ds, seg, True))
    choice = rule_threshold(ds, th, *parts["val"][:2])
    return choice, {seg: rule_scores(*p, choice.threshold) for seg, p in parts.items()}


def rule_threshold(
    ds: Dataset, th: ThresholdConfig, probability: np.ndarray, order: np.ndarray
) -> ThresholdChoice:
    """The classifier's threshold of `model.picks=filter_then_rank`, chosen on validation
    (every candidate: the classifier's `probability`, the ranker's `order`) over the
    probability grid threshold.low..high by step, with the rule's capped picks."""
    y, _, days, counted = candidates(ds, "val", probability)
    grid = probability_grid(th.low, th.high, th.step)
    rule = (th.target_precision, th.min_picks, th.max_picks_per_day, th.min_days)
    return pick_rule_threshold(y, probability, order, days, grid, *rule, counted)
