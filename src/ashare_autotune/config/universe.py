"""The `universe` config group: which stock-days are candidates (`modelling.universe`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.errors import ConfigError

BOARDS = ("main", "ChiNext", "STAR", "BJ")  # `data.boards.board_of`


@dataclass(frozen=True)
class UniverseRules:
    """Which stock-days are candidates (config group `universe`).

    Attributes:
        min_list_days: market trading days since listing, the listing day counting as day 1.
        exclude_st: drop ST / *ST names.
        min_amount: minimum mean `amount` (thousand CNY) over the stock's last 20 bars to T.
        exclude_boards: boards to drop, from `BOARDS`.
    """

    min_list_days: int = 20
    exclude_st: bool = True
    min_amount: float | None = None
    exclude_boards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.min_list_days, bool) or not isinstance(self.min_list_days, int):
            raise ConfigError(
                f"universe.min_list_days must be an integer, got {self.min_list_days!r}"
            )
        if self.min_list_days < 0:
            raise ConfigError(f"universe.min_list_days must be >= 0, got {self.min_list_days}")
        if not isinstance(self.exclude_st, bool):
            raise ConfigError(
                f"universe.exclude_st must be true or false, got {self.exclude_st!r}"
            )
        if self.min_amount is not None and not (
            isinstance(self.min_amount, int | float) and self.min_amount > 0
        ):
            raise ConfigError(
                f"universe.min_amount must be a positive number or null, got {self.min_amount!r}"
            )
        unknown = [b for b in self.exclude_boards if b not in BOARDS]
        if isinstance(self.exclude_boards, str) or unknown:
            raise ConfigError(
                f"universe.exclude_boards has unknown board(s) {unknown or self.exclude_boards!r}"
                f"; choose from {list(BOARDS)}"
            )


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
