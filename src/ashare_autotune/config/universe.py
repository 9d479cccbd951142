"""The `universe` config group: which stock-days are candidates (`modelling.universe`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.modelling.universe import UniverseRules

_DEFAULTS = UniverseRules()  # the one place each default lives


@dataclass
class UniverseConfig:
    """Candidate rules at T from data up to T (conf/universe; `none` disables every rule).

    Rows outside the universe are neither trained on nor counted in any metric; `predict`
    writes them with eligible=false and never picks them.
    """

    min_list_days: int = _DEFAULTS.min_list_days  # trading days since listing, listing day = 1
    exclude_st: bool = _DEFAULTS.exclude_st  # ST / *ST names (point-in-time when known)
    min_amount: float | None = _DEFAULTS.min_amount  # mean `amount` over 20 bars, thousand CNY
    exclude_boards: list[str] = field(default_factory=lambda: list(_DEFAULTS.exclude_boards))

    def __post_init__(self) -> None:
        self.rules()  # UniverseRules checks each value and names the key

    def rules(self) -> UniverseRules:
        """The rules as the pure `modelling.universe` functions take them."""
        return UniverseRules(
            min_list_days=self.min_list_days,
            exclude_st=self.exclude_st,
            min_amount=self.min_amount,
            exclude_boards=tuple(self.exclude_boards),
        )

    def describe(self) -> str:
        """One line for the model description and tags, e.g. `listed >= 20 days, no ST`."""
        parts = [f"listed >= {self.min_list_days} trading days"] if self.min_list_days else []
        parts += ["no ST"] if self.exclude_st else []
        if self.min_amount is not None:
            parts.append(f"mean 20-day amount >= {self.min_amount:g} thousand CNY")
        if self.exclude_boards:
            parts.append(f"excluding {', '.join(self.exclude_boards)}")
        return ", ".join(parts) or "every stock (no universe rule)"
