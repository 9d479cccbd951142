"""Registering a trained model: a new version in the MLflow registry, described and tagged, with
the champion or challenger alias by the promotion policy (`promotion.decide_promotion`)."""

from __future__ import annotations

import logging
from typing import Any

import mlflow

from ashare_autotune import store_locks
from ashare_autotune.config.schema import RegistryConfig, ThresholdConfig
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.tracking import registry
from ashare_autotune.tracking.promotion import Decision, data_fingerprint, decide_promotion

log = logging.getLogger(__name__)


def register_and_promote(
    reg: RegistryConfig,
    target: ThresholdConfig,
    model_uri: str,
    choice: ThresholdChoice,
    metrics: dict[str, float],
    meta: dict[str, Any],
) -> tuple[str, Decision]:
    """Register a logged model and give it the champion or challenger alias by the policy.

    Args:
        reg: the `registry` group (model name, aliases, promotion metrics).
        target: the `threshold` group (how validation picks count for the precision target).
        model_uri: the logged model to register.
        choice: the threshold chosen on validation (the promotion gate).
        metrics: val_/test_ metrics of the model at that threshold; the policy compares
            validation ones, test ones are only reported (tags and description).
        meta: the model's meta.json facts (label, data range, segments), for the description.

    Returns:
        (the new version number, the promotion `Decision`).
    """
    fingerprint = data_fingerprint(meta)
    # Compare-and-set: reading the champion, deciding, registering and moving the alias happen
    # under the store's lock, so two registrations of the same store cannot interleave.
    with store_locks.creating(mlflow.get_registry_uri()):
        decision = _decide(reg, target, choice, metrics, fingerprint)
        tags = _tags(choice, metrics, meta, decision) | {"data_fingerprint": fingerprint}
        description = f"{_describe(meta, metrics)} Promotion: {decision.role}, {decision.reason}."
        version = registry.register_version(model_uri, reg.model_name, tags, description)
        alias = reg.champion_alias if decision.promote else reg.challenger_alias
        registry.set_alias(reg.model_name, alias, version.version)
    (log.info if decision.promote else log.warning)(
        "version %s is %s@%s: %s", version.version, reg.model_name, alias, decision.reason
    )
    return str(version.version), decision


def _tags(
    choice: ThresholdChoice, metrics: dict[str, float], meta: dict[str, Any], decision: Decision
) -> dict[str, Any]:
    """The version's tags: test metrics, threshold, label, universe, data and the decision."""
    return {
        "test_precision": round(metrics["test_precision"], 4),
        "test_recall": round(metrics["test_recall"], 4),
        "test_auc": round(metrics["test_auc"], 4),
        "threshold": choice.threshold,
        "threshold_feasible": str(choice.feasible).lower(),
        "val_precision": round(choice.precision, 4),
        "val_n_picks": choice.n_picks,
        "val_n_pick_days": choice.n_days,
        "label": _label_text(meta["label"]),
        "entry": _entry_text(meta["label"]),
        "universe": meta.get("universe_text", "every stock (no universe rule)"),
        "data_range": f"{meta['data']['start']}..{meta['data']['end']}",
        "promotion": decision.role,
        "promotion_reason": decision.reason,
    }


def _decide(
    reg: RegistryConfig,
    target: ThresholdConfig,
    choice: ThresholdChoice,
    metrics: dict[str, float],
    fingerprint: str,
) -> Decision:
    """Apply the promotion policy (validation only) against the current champion, compared
    only when it was trained on the same data, label, universe and segments."""
    champion = registry.alias_version(reg.model_name, reg.champion_alias)
    return decide_promotion(
        metrics,
        choice,
        rule=target,
        compare=list(reg.promotion_metrics),
        champion=registry.version_metrics(champion) if champion else None,
        champion_version=champion.version if champion else None,
        fingerprints=(fingerprint, champion.tags.get("data_fingerprint")) if champion else None,
    )


def _label_text(label: dict[str, Any]) -> str:
    entry = "the open of T+1" if label.get("entry", "close") == "next_open" else "the close of T"
    return (
        f"max close T+{label['min_days']}..T+{label['max_days']} >= "
        f"+{label['min_return']:.1%} over {entry}"
    )


def _entry_text(label: dict[str, Any]) -> str:
    if label.get("entry", "close") == "next_open":
        return (
            "bought at the open of T+1 (rows whose T+1 has no bar or opens at limit-up are "
            "not labelled, trained on or counted)"
        )
    return "bought at the close of T (the signal day's own close)"


def _describe(meta: dict[str, Any], metrics: dict[str, float]) -> str:
    lab, data = meta["label"], meta["data"]
    segments = ", ".join(f"{name} {lo}..{hi}" for name, (lo, hi) in meta["segments"].items())
    met = "met" if meta["threshold_feasible"] else "NOT met"
    return (
        f"XGBoost stock picker. Data {data['source']} {data['start']}..{data['end']}, "
        f"{data['n_stocks']} stocks. Entry: {_entry_text(lab)}. Universe: "
        f"{meta.get('universe_text', 'every stock (no universe rule)')}. Label: "
        f"{_label_text(lab)}. Segments: {segments}. "
        f"Threshold {meta['threshold']:.3f} (target precision {meta['target_precision']:.2f}, "
        f"{met} on validation: precision {metrics['val_precision']:.4f}, recall "
        f"{metrics['val_recall']:.4f}, {int(metrics['val_n_picks'])} picks). "
        f"Test (reported, not used to promote): AUC {metrics['test_auc']:.4f}, precision "
        f"{metrics['test_precision']:.4f}, recall {metrics['test_recall']:.4f}, "
        f"{int(metrics['test_n_picks'])} picks{_signal_text(meta, metrics)}."
    )


def _signal_text(meta: dict[str, Any], metrics: dict[str, float]) -> str:
    if "test_rank_ic_mean" not in metrics:
        return ""
    return (
        f", daily Rank IC mean {metrics['test_rank_ic_mean']:.4f}, top-{meta.get('top_k', 10)} "
        f"precision {metrics['test_topk_precision_mean']:.4f}"
    )
