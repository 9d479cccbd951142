"""Champion/challenger promotion policy: a pure decision on validation metrics, no MLflow.

Which model becomes champion is a choice, so it reads validation only; test (and out-of-time)
metrics are reported with the version, never used to decide.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.evaluation.threshold import ThresholdChoice

CHAMPION = "champion"
CHALLENGER = "challenger"
# Absolute difference below which two metric values count as equal (float noise, not skill).
TIE_TOLERANCE = 1e-9
# The market facts that make two models' validation metrics comparable (`data_fingerprint`).
FINGERPRINT_DATA = ("source", "start", "end", "n_stocks", "n_rows")


@dataclass(frozen=True)
class Decision:
    """Whether a new version takes the champion alias, and the sentence saying why."""

    promote: bool
    reason: str

    @property
    def role(self) -> str:
        """`champion` or `challenger`."""
        return CHAMPION if self.promote else CHALLENGER


def decide_promotion(
    candidate: dict[str, float],
    choice: ThresholdChoice,
    rule: ThresholdConfig,
    compare: list[str],
    champion: dict[str, float] | None = None,
    champion_version: str | None = None,
    fingerprints: tuple[str, str | None] | None = None,
) -> Decision:
    """Decide champion or challenger for a newly trained model, on validation only.

    The candidate must (1) have a feasible threshold on validation: precision >=
    `choice.target_precision` counted as `rule` says (at most `max_picks_per_day` picks a day,
    at least `min_picks` picks over `min_days` days: `choice.feasible`, set by
    `pick_threshold`), and (2) be no worse than the current champion on `compare` (validation
    metrics), read lexicographically: the first metric that differs decides, all
    higher-is-better, a full tie goes to the newer model.

    Args:
        candidate: the new model's metrics (needs the `compare` names; test ones are ignored).
        choice: the threshold chosen on validation and what it reached there.
        rule: the `threshold` group `pick_threshold` counted by (for the reason text).
        compare: metric names, most important first, e.g. ["val_precision", "val_recall"].
        champion: the current champion's metrics, or None when there is no champion.
        champion_version: the champion's version number, for the reason text.
        fingerprints: (the candidate's, the champion's) `data_fingerprint`; when they differ
            (or the champion has none) the two are not compared and the candidate is a
            challenger: metrics of other data, label, universe or segments mean other things.

    Returns:
        The `Decision`.
    """
    target = choice.target_precision
    if not choice.feasible:
        return Decision(
            False,
            f"no threshold reached precision >= {target:.2f} {rule.describe()} on "
            f"validation (best {choice.best_precision:.4f})",
        )
    if champion is None:
        return Decision(
            True,
            f"meets the precision target on validation ({choice.precision:.4f} >= "
            f"{target:.2f}, {choice.n_picks} picks over {choice.n_days} days) and there is no "
            "champion yet",
        )
    if fingerprints is not None and fingerprints[0] != fingerprints[1]:
        theirs = fingerprints[1] or "none recorded"
        return Decision(
            False,
            f"champion version {champion_version} was trained on other data/label/universe "
            f"(data fingerprint {theirs}, this model's {fingerprints[0]}): not compared; "
            "champion kept",
        )
    return _compare(candidate, champion, compare, f"version {champion_version}")


def data_fingerprint(meta: dict[str, Any]) -> str:
    """A short hash of what a model's validation metrics depend on besides the model: the
    market (source, first and last day, stocks, rows), the label, the universe and the
    train/val/test segments, as recorded in its meta.json (`reports.model_meta`).

    Args:
        meta: the model's meta.json facts.

    Returns:
        12 hex digits; equal for models whose validation metrics are comparable.
    """
    facts = {
        "data": {k: meta["data"][k] for k in FINGERPRINT_DATA if k in meta["data"]},
        "label": meta["label"],
        "universe": meta.get("universe", {}),
        "segments": {k: list(v) for k, v in meta.get("segments", {}).items()},
    }
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _compare(
    candidate: dict[str, float], champion: dict[str, float], compare: list[str], who: str
) -> Decision:
    """Lexicographic comparison with the champion; a champion metric that is missing or not
    a number is skipped (and named in the reason), a candidate's keeps the champion."""
    skipped: list[str] = []
    for name in compare:
        new, old = candidate.get(name), champion.get(name)
        if new is None:
            return Decision(False, f"the new model has no metric {name!r} to compare")
        if not math.isfinite(new):  # e.g. a validation AUC of a segment with one class
            return Decision(
                False, f"the new model's {name} is {new}, not comparable; kept champion"
            )
        # e.g. a champion registered when promotion still read test: it logged no val_ metrics
        if old is None or not math.isfinite(old):
            skipped.append(name)
            continue
        if abs(new - old) <= TIE_TOLERANCE:
            continue
        verb = "beats" if new > old else "is worse than"
        reason = f"{name} {new:.4f} {verb} champion {who}'s {old:.4f}{_lacks(skipped)}"
        return Decision(new > old, reason if new > old else f"{reason}; champion kept")
    if len(skipped) == len(compare):
        return Decision(
            True, f"champion {who} has no {', '.join(skipped)} to compare; newer model wins"
        )
    return Decision(
        True, f"ties champion {who} on {', '.join(compare)}{_lacks(skipped)}; newer model wins"
    )


def _lacks(skipped: list[str]) -> str:
    return f" (champion has no {', '.join(skipped)})" if skipped else ""
