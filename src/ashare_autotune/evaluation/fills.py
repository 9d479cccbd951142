"""What an order fills and what it costs: A-share fees by date, lots by board, the volume cap.

Pure numpy over one day's orders (the account calls it; `backtest_account` owns the day loop):
- fees: commission on both sides (at least `min_commission` CNY per order), transfer fee on
  both sides (`transfer_fee_before` before `transfer_fee_switch`, `transfer_fee_after` from that
  day on), stamp duty on sales only (`stamp_duty_before` / `_after` around `stamp_duty_switch`);
- lots by board: main board and ChiNext in lots of `lot` (100); STAR (688/689.SH) at least 200
  shares, then any number of shares; Beijing (.BJ) at least 100 shares, then any number. An
  order smaller than its board's minimum is not placed;
- volume cap (`max_volume_share`, off when None): a buy takes at most that share of the day's
  traded value (`amount`, thousand CNY in Tushare's units; where it is missing, `vol` lots of
  100 shares at the open), so a large account cannot buy more than the day traded. Sales are
  not capped: a position is sold whole at its exit (the cap binds where the account is large
  against a stock's trading, which the buy cap already limits).
Slippage (`slippage_bps` per side, applied by the account to the fill prices) is not here.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from ashare_autotune.data.boards import board_of
from ashare_autotune.errors import DataError

# STAR Market: a buy order of at least 200 shares, then in steps of 1 share (SSE, special
# trading provisions of the STAR Market, 2019); Beijing exchange: at least 100 shares, then in
# steps of 1 share (BSE trading rules, 2021). Main board and ChiNext: lots of 100.
STAR_MINIMUM, BJ_MINIMUM = 200, 100
TUSHARE_AMOUNT_UNIT = 1_000.0  # `amount` is in thousand CNY
TUSHARE_VOL_UNIT = 100.0  # `vol` is in lots of 100 shares


class CostRules(Protocol):
    """What fills and costs read of `config.backtest.BacktestConfig`."""

    commission: float
    min_commission: float
    stamp_duty_before: float
    stamp_duty_after: float
    stamp_duty_switch: str
    transfer_fee_before: float
    transfer_fee_after: float
    transfer_fee_switch: str
    lot: int
    max_volume_share: float | None


def dated_rate(days: np.ndarray, before: float, after: float, switch: str) -> np.ndarray:
    """`before` on days before `switch` (YYYY-MM-DD), `after` from that day on, per day.

    Args:
        days: datetime64 market days.
        before, after: the rate before and from the switch.
        switch: the first day of `after`.

    Returns:
        A float64 array aligned with `days`.
    """
    first = pd.Timestamp(switch).to_datetime64()
    return np.where(np.asarray(days, dtype="datetime64[ns]") >= first, after, before)


def buy_costs(value: np.ndarray, rules: CostRules, transfer_fee: float) -> np.ndarray:
    """Commission (at least min_commission per order) and transfer fee of trading `value`.

    Args:
        value: CNY per order (0: no order, no cost).
        rules: commission and its minimum.
        transfer_fee: the day's transfer-fee rate (`dated_rate`).

    Returns:
        CNY per order.
    """
    fee = np.maximum(value * rules.commission, rules.min_commission) + value * transfer_fee
    return np.where(value > 0, fee, 0.0)


def lot_rules(codes: np.ndarray | pd.Series, lot: int) -> tuple[np.ndarray, np.ndarray]:
    """The smallest order and the step of shares per stock, by board (module docstring).

    Args:
        codes: Tushare codes.
        lot: the main board's and ChiNext's lot (`backtest.lot`).

    Returns:
        (minimum, step) int64 arrays aligned with `codes`.
    """
    board = board_of(np.asarray(codes, dtype=object))
    minimum = np.select([board == "STAR", board == "BJ"], [STAR_MINIMUM, BJ_MINIMUM], lot)
    step = np.where((board == "STAR") | (board == "BJ"), 1, lot)
    return minimum.astype(np.int64), step.astype(np.int64)


def round_shares(shares: np.ndarray, minimum: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Shares rounded down to whole steps; 0 where below the board's minimum order."""
    whole = np.floor(np.maximum(shares, 0.0) / step) * step
    return np.where(whole >= minimum, whole, 0.0)


def traded_value(bars: pd.DataFrame) -> np.ndarray | None:
    """CNY traded per bar: `amount` x 1000, else `vol` x 100 x open; None without either.

    Amount is a value and so the same on raw or adjusted prices; vol counts raw shares, which
    at an adjusted open understates the value on adjusted bars (a stricter cap).
    """
    value = np.full(len(bars), np.nan)
    if "amount" in bars.columns:
        value = bars["amount"].to_numpy(np.float64) * TUSHARE_AMOUNT_UNIT
    if "vol" in bars.columns:
        by_vol = bars["vol"].to_numpy(np.float64) * TUSHARE_VOL_UNIT
        value = np.where(np.isfinite(value), value, by_vol * bars["open"].to_numpy(np.float64))
    elif "amount" not in bars.columns:
        return None
    return value


def size_orders(
    price: np.ndarray,
    cash: float,
    budget: float,
    rules: CostRules,
    transfer_fee: float,
    minimum: np.ndarray | None = None,
    step: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> np.ndarray:
    """Shares per candidate, best first: whole lots whose value plus buy costs fit a budget of
    min(cash left, `budget`); after the first name the cash cannot fully pay, nothing.

    Args:
        price: the fill price per order (slippage included).
        cash: the cash left.
        budget: the most one order may spend (costs included).
        rules: commission and its minimum, `lot`.
        transfer_fee: the day's transfer-fee rate.
        minimum, step: per order, the board's smallest order and step (`lot_rules`; default
            lots of `rules.lot`).
        cap: per order, the most shares the volume cap allows (None: no cap; NaN: no cap).

    Returns:
        float64 shares per order (0: not bought).
    """
    minimum = np.full(len(price), rules.lot) if minimum is None else minimum
    step = np.full(len(price), rules.lot) if step is None else step
    most = np.full(len(price), np.inf) if cap is None else np.where(np.isnan(cap), np.inf, cap)

    def fit(per_name: np.ndarray | float) -> np.ndarray:
        # v + max(c*v, m) + t*v <= B  <=>  v*(1+c+t) <= B  and  v*(1+t) + m <= B
        by_rate = per_name / (price * (1 + rules.commission + transfer_fee))
        by_minimum = (per_name - rules.min_commission) / (price * (1 + transfer_fee))
        return round_shares(np.minimum(np.minimum(by_rate, by_minimum), most), minimum, step)

    shares = fit(budget)
    paid = np.cumsum(shares * price + buy_costs(shares * price, rules, transfer_fee))
    short = np.flatnonzero(paid > cash)
    if len(short):
        j = short[0]
        left = cash - (paid[j - 1] if j > 0 else 0.0)
        shares[j] = fit(min(left, budget))[j]
        shares[j + 1 :] = 0.0
    return shares


class Fills:
    """The fees by day, the lots by stock and the volume caps of one backtest's panel."""

    def __init__(
        self,
        days: np.ndarray,
        codes: np.ndarray,
        value: np.ndarray | None,
        rules: CostRules,
    ) -> None:
        """Take the fee rates per day, the lots per stock and the caps per (day, stock).

        Args:
            days, codes: the panel's market days and stock codes.
            value: (day, stock) traded value in CNY (`traded_value`), needed with a volume cap.
            rules: the backtest's configuration.
        """
        self.rules = rules
        self.stamp = dated_rate(
            days, rules.stamp_duty_before, rules.stamp_duty_after, rules.stamp_duty_switch
        )
        self.transfer = dated_rate(
            days, rules.transfer_fee_before, rules.transfer_fee_after, rules.transfer_fee_switch
        )
        self.minimum, self.step = lot_rules(codes, rules.lot)
        self.cap_value = None
        if rules.max_volume_share is not None:
            if value is None:
                raise DataError("backtest.max_volume_share needs bars with amount or vol")
            self.cap_value = rules.max_volume_share * value

    def size(
        self, d: int, code: np.ndarray, price: np.ndarray, cash: float, budget: float
    ) -> np.ndarray:
        """Shares per order of day d (`size_orders` with the stocks' lots and caps)."""
        cap = None if self.cap_value is None else self.cap_value[d, code] / price
        minimum, step = self.minimum[code], self.step[code]
        return size_orders(price, cash, budget, self.rules, self.transfer[d], minimum, step, cap)

    def buy_costs(self, d: int, value: np.ndarray) -> np.ndarray:
        """Commission and transfer fee of buying `value` (CNY per order) on day d."""
        return buy_costs(value, self.rules, float(self.transfer[d]))

    def sell_costs(self, d: int, value: np.ndarray) -> np.ndarray:
        """Commission, transfer fee and stamp duty of selling `value` on day d."""
        return self.buy_costs(d, value) + value * self.stamp[d]
