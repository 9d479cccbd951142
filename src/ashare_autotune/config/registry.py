"""The `registry` group's schema: where models are registered and the promotion policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.config.choices import PROMOTION_METRICS, check


@dataclass
class RegistryConfig:
    """Model registry. A new version becomes champion only if its threshold met
    threshold.target_precision on validation (with at least threshold.min_picks picks) and it
    is not worse than the champion on promotion_metrics (validation metrics: nothing is chosen
    on test); otherwise it gets the challenger alias."""

    model_name: str = "ashare-autotune"  # up to 0.1: ashare-autotune-xgb
    register: bool = True
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    # Compared with the current champion, most important first; all higher-is-better.
    # The validation account at its own exposure first (after costs; cash cannot flatter it),
    # then the seed's precision at the threshold (issue 24: chosen with the honest account).
    promotion_metrics: list[str] = field(
        default_factory=lambda: ["val_bt_excess_return_exposure", "val_precision"]
    )

    def __post_init__(self) -> None:
        key, metrics = "registry.promotion_metrics", self.promotion_metrics
        check(bool(metrics), key, metrics, "needs at least one metric")
        on_test = [m for m in metrics if not str(m).startswith("val_")]
        why = "promotion compares validation (val_*) metrics only; test ones are only reported"
        check(not on_test, key, on_test, why)
        bad = [m for m in metrics if m not in PROMOTION_METRICS]
        check(not bad, key, bad, f"unknown metric(s); choose from {list(PROMOTION_METRICS)}")
        check(
            self.challenger_alias != self.champion_alias,
            "registry.challenger_alias",
            self.challenger_alias,
            "must differ from registry.champion_alias",
        )
