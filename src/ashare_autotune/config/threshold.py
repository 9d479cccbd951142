"""The `threshold` group's schema: how the decision threshold is chosen on validation."""

from __future__ import annotations

from dataclasses import dataclass

from ashare_autotune.config.choices import check


@dataclass
class ThresholdConfig:
    """Decision threshold chosen on validation: maximise recall subject to precision >=
    target_precision, counted on what a trader buys: at most max_picks_per_day picks a day (the
    day's best scores), with at least min_picks picks over at least min_days distinct days (so
    neither a few lucky picks nor one crowded day can satisfy it)."""

    target_precision: float = 0.60
    low: float = 0.05
    high: float = 0.95
    step: float = 0.005
    min_picks: int = 20
    # The top-k list of a day (trading.top_k, backtest.top_k: 10): a trader buys no more than
    # that. Pooled without a cap, one day with every score high carried the precision (809 of
    # 1,106 test picks on 2022-04-26).
    max_picks_per_day: int = 10
    # About a month of trading days: a precision on fewer days is one market episode; a
    # validation year (~240 days) leaves room for a strict threshold picking on a tenth of them.
    min_days: int = 20

    def __post_init__(self) -> None:
        p = self.target_precision
        check(0 < p < 1, "threshold.target_precision", p, "must be in (0, 1)")
        lo, hi = self.low, self.high
        check(0 <= lo < hi <= 1, "threshold.low", lo, f"must satisfy 0 <= low < high={hi} <= 1")
        check(
            0 < self.step < hi - lo + 1e-12,
            "threshold.step",
            self.step,
            "must be > 0 and no larger than high - low",
        )
        check(self.min_picks >= 1, "threshold.min_picks", self.min_picks, "must be >= 1")
        cap = self.max_picks_per_day
        check(cap >= 1, "threshold.max_picks_per_day", cap, "must be >= 1")
        check(self.min_days >= 1, "threshold.min_days", self.min_days, "must be >= 1")

    def describe(self) -> str:
        """The constraint's counting rule in words, for reasons and log lines."""
        return (
            f"with >= {self.min_picks} picks over >= {self.min_days} days (at most "
            f"{self.max_picks_per_day} a day)"
        )
