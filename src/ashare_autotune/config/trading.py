"""The `trading` group's schema: how the test segment is read as a daily top-k list."""

from __future__ import annotations

from dataclasses import dataclass

from ashare_autotune.config.choices import check


@dataclass
class TradingConfig:
    """The trading view of the test segment (test_topk_*, test_hit_rate_*, ...)."""

    top_k: int = 10  # each day the k highest-probability stocks form the top-k list

    def __post_init__(self) -> None:
        check(self.top_k >= 1, "trading.top_k", self.top_k, "must be >= 1")
