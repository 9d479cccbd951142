"""The `backtest` config group: strategy, exit rule, capital, A-share costs and benchmark.

One schema for the config group and for `evaluation.backtest.run_backtest` (each default once,
here). The exit horizon and take-profit are the label's: `conf/backtest/default.yaml` takes
them from the `label` group by interpolation; where no label group is composed (evaluate and
backtest take the model's label) they stay None until `with_label` fills them in.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from ashare_autotune.config.choices import check, choose


class Strategy(StrEnum):
    """How scores become a portfolio."""

    # hold the top_k names equal weight, replace at most n_drop a day (qlib's TopkDropout)
    TOPK_DROPOUT = "topk_dropout"
    TOP_K = "top_k"  # buy the top_k highest scores of each signal day, hold to the exit
    THRESHOLD = "threshold"  # every row with pick == True, best score first


class Exit(StrEnum):
    """When a position is sold."""

    HORIZON = "horizon"  # close of T+max_days
    TAKE_PROFIT = "take_profit"  # first close >= entry*(1+min_return) from T+min_days


class Baseline(StrEnum):
    """One-line factors run through the same account beside the model (evaluation.baselines)."""

    REVERSAL_20 = "reversal_20"  # -(20-day return): losers first
    VOLATILITY_20 = "volatility_20"  # -(std of 20 daily returns): calm first
    AMOUNT_20 = "amount_20"  # -(mean traded amount over 20 days): small, illiquid first
    BLEND = "blend"  # the equal-weight mean of the three's daily percentile ranks


class Label(Protocol):
    """What `with_label` reads of a `LabelConfig`."""

    min_days: int
    max_days: int
    min_return: float


NON_NEGATIVE = (
    "commission",
    "min_commission",
    "stamp_duty_before",
    "stamp_duty_after",
    "transfer_fee_before",
    "transfer_fee_after",
    "slippage_bps",
)


@dataclass
class BacktestConfig:
    """Strategy, exit rule, capital and A-share costs of a backtest (validated on creation)."""

    enabled: bool = True  # backtest the test segment at the end of training
    # topk_dropout: a fully invested equal-weight book, turnover <= n_drop / top_k a day; 50
    # names and 5 a day (10%) are qlib's benchmark settings (TopkDropoutStrategy, CSI 300/500)
    strategy: str = Strategy.TOPK_DROPOUT.value
    top_k: int = 50  # topk_dropout: names held; top_k: names bought per signal day
    n_drop: int = 5  # topk_dropout: most names replaced a day
    max_holdings: int = 50  # top_k and threshold: most open positions
    exit: str = Exit.HORIZON.value
    # the label's horizon and take-profit (conf/backtest: ${label.*}); None: the label in use
    min_days: int | None = None
    max_days: int | None = None
    min_return: float | None = None
    capital: float = 1_000_000.0  # CNY
    commission: float = 0.00025  # both sides
    min_commission: float = 5.0  # CNY per order
    stamp_duty_before: float = 0.001  # sales only
    stamp_duty_after: float = 0.0005
    stamp_duty_switch: str = "2023-08-28"
    # both sides: 0.002% of the value from 2015-08-01, halved to 0.001% from 2022-04-29 (CSDC,
    # "lowering the transfer fee of stock trades", 2022-04-28). Not modelled: Shanghai's fee
    # before 2015-08-01 (0.06% of the par value), the exchanges' handling fee (in commission).
    transfer_fee_before: float = 0.00002
    transfer_fee_after: float = 0.00001
    transfer_fee_switch: str = "2022-04-29"
    # per side, against us on both fills: JoinQuant's default PriceRelatedSlippage(0.00246) is
    # 0.246% a round trip, half on each side (12.3 bp); docs/evaluation.md#backtest
    slippage_bps: float = 12.3
    # the most of a day's traded value (bars' amount) one buy may take; None: no cap
    max_volume_share: float | None = None
    lot: int = 100  # main board and ChiNext; STAR and Beijing lots: evaluation/fills.py
    benchmark: str = "000905.SH"  # an index of the data (CSI 500); checked when loaded
    # one-line factors traded through the same account in every report ([]: none)
    baselines: list[str] = field(default_factory=lambda: [b.value for b in Baseline])

    def __post_init__(self) -> None:
        self.strategy = choose(Strategy, self.strategy, "backtest.strategy")
        self.exit = choose(Exit, self.exit, "backtest.exit")
        for name in NON_NEGATIVE:
            _require(self, name, getattr(self, name) >= 0, "must be >= 0")
        _require(self, "slippage_bps", self.slippage_bps < 10_000, "must be < 10000")
        _require(self, "top_k", self.top_k >= 1, "must be >= 1")
        _require(self, "n_drop", self.n_drop >= 1, "must be >= 1")
        _require(self, "max_holdings", self.max_holdings >= 1, "must be >= 1")
        if self.strategy is Strategy.TOPK_DROPOUT:
            ok = self.n_drop <= self.top_k
            _require(self, "n_drop", ok, f"must be <= backtest.top_k={self.top_k}")
        if self.strategy is Strategy.TOP_K:
            ok = self.max_holdings >= self.top_k
            _require(self, "max_holdings", ok, f"must be >= backtest.top_k={self.top_k}")
        if self.min_days is not None:
            _require(self, "min_days", self.min_days >= 1, "must be >= 1")
        if self.min_days is not None and self.max_days is not None:
            ok = self.max_days >= self.min_days
            _require(self, "max_days", ok, f"must be >= backtest.min_days={self.min_days}")
        if self.min_return is not None:
            _require(self, "min_return", self.min_return > 0, "must be > 0")
        _require(self, "capital", self.capital > 0, "must be > 0")
        _require(self, "lot", self.lot >= 1, "must be >= 1")
        if self.max_volume_share is not None:
            ok = 0 < self.max_volume_share <= 1
            _require(self, "max_volume_share", ok, "must be in (0, 1] (or null: no cap)")
        _require(self, "benchmark", bool(str(self.benchmark).strip()), "must name an index")
        self.baselines = [choose(Baseline, b, "backtest.baselines").value for b in self.baselines]
        for name in ("stamp_duty_switch", "transfer_fee_switch"):
            _require(self, name, _is_date(getattr(self, name)), "must be a date (YYYY-MM-DD)")

    def with_label(self, label: Label) -> BacktestConfig:
        """This configuration with the horizon and take-profit not set taken from `label`."""
        return replace(
            self,
            min_days=label.min_days if self.min_days is None else self.min_days,
            max_days=label.max_days if self.max_days is None else self.max_days,
            min_return=label.min_return if self.min_return is None else self.min_return,
        )

    def check_complete(self) -> None:
        """Raise `ConfigError` when the horizon or take-profit is still unset."""
        for name in ("min_days", "max_days", "min_return"):
            _require(self, name, getattr(self, name) is not None, "is not set (the label's)")


def _require(cfg: BacktestConfig, name: str, ok: bool, why: str) -> None:
    # `not (x >= 0)` also rejects NaN
    check(bool(ok), f"backtest.{name}", getattr(cfg, name), why)


def _is_date(value: object) -> bool:
    """Whether `pd.Timestamp` (`evaluation.fills.dated_rate`) reads `value` as a date. A
    YYYY-MM-DD date is checked without pandas: a config checked before the job's imports
    (the entry points) exits on a bad value without loading it (~0.4 CPU-s)."""
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            datetime.date.fromisoformat(text)
            return True
        except ValueError:
            pass
    import pandas as pd  # the other spellings pandas reads

    try:
        pd.Timestamp(value)
    except (ValueError, TypeError):
        return False
    return True
