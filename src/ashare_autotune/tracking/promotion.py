"""Champion/challenger promotion policy: a pure decision on metrics, no MLflow."""

from __future__ import annotations

import math
from dataclasses import dataclass

CHAMPION = "champion"
CHALLENGER = "challenger"
# Absolute difference below which two metric values count as equal (float noise, not skill).
TIE_TOLERANCE = 1e-9


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
    threshold_feasible: bool,
    target_precision: float,
    min_picks: int,
    compare: list[str],
    champion: dict[str, float] | None = None,
    champion_version: str | None = None,
) -> Decision:
    """Decide champion or challenger for a newly trained model.

    The candidate must (1) have found a threshold meeting the precision target on validation,
    (2) reach `test_precision >= target_precision` on test at that threshold with at least
    `min_picks` test picks, and (3) be no worse than the current champion on `compare`,
    read lexicographically (the first metric that differs decides; all higher-is-better;
    a full tie goes to the newer model).

    Args:
        candidate: the new model's metrics (needs test_precision, test_n_picks and `compare`).
        threshold_feasible: whether the threshold met the precision target on validation.
        target_precision: the precision constraint, e.g. 0.60.
        min_picks: fewest test picks for the test precision to count.
        compare: metric names, most important first, e.g. ["test_precision", "test_recall"].
        champion: the current champion's metrics, or None when there is no champion.
        champion_version: the champion's version number, for the reason text.

    Returns:
        The `Decision`.
    """
    if not threshold_feasible:
        return Decision(
            False,
            f"no threshold reached precision >= {target_precision:.2f} on validation",
        )
    precision, picks = candidate["test_precision"], int(candidate["test_n_picks"])
    if precision < target_precision:
        return Decision(
            False,
            f"test precision {precision:.4f} is below the target {target_precision:.2f}",
        )
    if picks < min_picks:
        return Decision(False, f"only {picks} test picks (fewer than min_picks={min_picks})")
    if champion is None:
        return Decision(
            True,
            f"meets the precision target on test ({precision:.4f} >= {target_precision:.2f}) "
            "and there is no champion yet",
        )
    return _compare(candidate, champion, compare, f"version {champion_version}")


def _compare(
    candidate: dict[str, float], champion: dict[str, float], compare: list[str], who: str
) -> Decision:
    """Lexicographic comparison with the champion; a champion metric that is missing or not
    a number is skipped, a candidate's keeps the champion."""
    skipped = []
    for name in compare:
        new, old = candidate.get(name), champion.get(name)
        if new is None:
            hint = " (a *_bt_* metric needs backtest.enabled=true)" if "_bt_" in name else ""
            return Decision(False, f"the new model has no metric {name!r} to compare{hint}")
        if not math.isfinite(new):  # e.g. an information ratio of an account that never traded
            return Decision(
                False, f"the new model's {name} is {new}, not comparable; kept champion"
            )
        if old is None or not math.isfinite(old):  # e.g. trained before the backtest existed
            skipped.append(name)
            continue
        if abs(new - old) <= TIE_TOLERANCE:
            continue
        verb = "beats" if new > old else "is worse than"
        reason = f"{name} {new:.4f} {verb} champion {who}'s {old:.4f}"
        return Decision(new > old, reason if new > old else f"{reason}; champion kept")
    note = f" (champion has no {', '.join(skipped)})" if skipped else ""
    return Decision(True, f"ties champion {who} on {', '.join(compare)}{note}; newer model wins")
