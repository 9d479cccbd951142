"""The `features` group's schema: named feature sets, an optional narrowing to chosen names,
and per-day cross-sectional ranks (`modelling.feature_sets` builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.config.choices import FeatureSet, check, choose


@dataclass
class FeaturesConfig:
    """Which features the model sees.

    `sets`: basic (the project's 18), alpha158 (qlib's 158), ashare (limit history, listing
    age, liquidity, breadth, industry strength, and Tushare daily_basic columns when the data
    has them), full (all three). `names`: keep only these features of the sets (empty: all).
    `cs_rank`: features whose per-day cross-sectional percentile rank is added as
    `<name>_csrank`. Unknown names are reported when the features are built (the daily_basic
    names depend on the data).
    """

    # full: chosen on validation (docs/evaluation.md); basic is the light option
    sets: list[str] = field(default_factory=lambda: [FeatureSet.full.value])
    names: list[str] = field(default_factory=list)
    cs_rank: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check(bool(self.sets), "features.sets", self.sets, "needs at least one feature set")
        self.sets = [choose(FeatureSet, s, "features.sets") for s in self.sets]
