"""The backtest's account: fills, exits, costs and valuation, and the per-signal day loop.

The rules are those of `backtest` (see its docstring); this module works on dense (day, stock)
arrays so each day is a few numpy operations over that day's orders and open positions. The
topk_dropout day loop is `backtest_topk`, on the same account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ashare_autotune.evaluation.fills import CostRules, Fills
from ashare_autotune.evaluation.fills import buy_costs as buy_costs  # re-exported
from ashare_autotune.evaluation.fills import size_orders as size_orders  # re-exported

SKIP_REASONS = ("held", "suspended", "limit_up", "no_slot", "no_cash", "sell_blocked")


class Rules(CostRules, Protocol):
    """What the account needs of `backtest.BacktestConfig` (the costs: `fills.CostRules`)."""

    max_holdings: int
    min_days: int
    max_days: int
    min_return: float
    exit: str
    capital: float
    slippage_bps: float


@dataclass
class Panel:
    """Bars as (day, stock) arrays over the backtest's market days."""

    days: np.ndarray  # datetime64[ns], sorted
    codes: np.ndarray
    open: np.ndarray
    close: np.ndarray
    last_close: np.ndarray  # close carried forward over suspensions (valuation)
    has_bar: np.ndarray
    open_limit_up: np.ndarray
    open_limit_down: np.ndarray
    one_price_down: np.ndarray
    traded_value: np.ndarray | None = None  # CNY (fills.traded_value): the volume cap


@dataclass
class Orders:
    """Candidate buy orders sorted by buy day, best score first within a day (topk_dropout:
    every scored candidate of the signal day)."""

    starts: np.ndarray  # the orders of buy day d are [starts[d], starts[d + 1])
    code: np.ndarray  # column in the panel; -1 when the stock has no bar in the window
    signal_day: np.ndarray  # market-day index of T (the horizon counts from it)
    signal_date: np.ndarray


POSITION_FIELDS = ("code", "shares", "signal_day", "signal_date", "buy_day", "entry", "price")
POSITION_FIELDS += ("cost", "due")


class Positions:
    """Open (or just closed) positions as parallel arrays."""

    def __init__(self, **values: np.ndarray) -> None:
        self.code = values.get("code", np.empty(0, np.int64))
        self.shares = values.get("shares", np.empty(0))
        self.signal_day = values.get("signal_day", np.empty(0, np.int64))
        self.signal_date = values.get("signal_date", np.empty(0, "datetime64[ns]"))
        self.buy_day = values.get("buy_day", np.empty(0, np.int64))
        self.entry = values.get("entry", np.empty(0))  # buy day's raw open: take-profit base
        self.price = values.get("price", np.empty(0))  # the fill, slippage included
        self.cost = values.get("cost", np.empty(0))  # buy costs
        self.due = values.get("due", np.zeros(len(self.code), bool))  # waiting to be sold

    def __len__(self) -> int:
        return len(self.code)

    def extend(self, new: Positions) -> None:
        for name in POSITION_FIELDS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(new, name)]))

    def take(self, mask: np.ndarray) -> Positions:
        """Remove the positions where `mask` is true and return them."""
        out = Positions(**{name: getattr(self, name)[mask] for name in POSITION_FIELDS})
        for name in POSITION_FIELDS:
            setattr(self, name, getattr(self, name)[~mask])
        return out


class Account:
    """Cash, open positions and what happened each day."""

    def __init__(self, panel: Panel, rules: Rules) -> None:
        self.panel, self.rules = panel, rules
        self.fills = Fills(panel.days, panel.codes, panel.traded_value, rules)
        self.slip = rules.slippage_bps / 10_000
        self.cash = self.equity = float(rules.capital)
        self.held = np.zeros(len(panel.codes), bool)
        self.open = Positions()
        self.closed: list[tuple[Positions, int, np.ndarray, np.ndarray]] = []
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)
        self.columns = ("cash", "holdings_value", "equity", "costs", "turnover", "n_holdings")
        self.columns += ("invested",)
        self.daily = {name: np.zeros(len(panel.days)) for name in self.columns}

    def fillable(self, d: int, code: np.ndarray) -> np.ndarray:
        """Orders that can fill at day d's open (bar, not at limit-up, not held); counts the
        others by reason."""
        known = code >= 0
        has_bar = np.zeros(len(code), bool)
        has_bar[known] = self.panel.has_bar[d, code[known]]
        limit_up = has_bar.copy()
        limit_up[has_bar] = self.panel.open_limit_up[d, code[has_bar]]
        free = has_bar & ~limit_up
        held = free.copy()
        held[free] = self.held[code[free]]
        self.skipped["suspended"] += int((~has_bar).sum())
        self.skipped["limit_up"] += int(limit_up.sum())
        self.skipped["held"] += int(held.sum())
        return free & ~held

    def buy(self, d: int, orders: Orders) -> tuple[float, float]:
        """Fill day d's orders at the open; returns (value bought, costs)."""
        lo, hi = orders.starts[d], orders.starts[d + 1]
        chosen = np.flatnonzero(self.fillable(d, orders.code[lo:hi]))
        slots = max(self.rules.max_holdings - len(self.open), 0)
        self.skipped["no_slot"] += max(len(chosen) - slots, 0)
        chosen = lo + chosen[:slots]
        return self.fill(d, orders, chosen, self.equity / self.rules.max_holdings)

    def fill(
        self, d: int, orders: Orders, chosen: np.ndarray, budget: float
    ) -> tuple[float, float]:
        """Buy orders[chosen] (fillable, best first) at day d's open, each for at most
        `budget` of the cash; returns (value bought, costs)."""
        code = orders.code[chosen]
        price = self.panel.open[d, code] * (1 + self.slip)
        shares = self.fills.size(d, code, price, self.cash, budget)
        self.skipped["no_cash"] += int((shares == 0).sum())
        ok = shares > 0
        value = shares[ok] * price[ok]
        cost = self.fills.buy_costs(d, value)
        self.cash -= float(value.sum() + cost.sum())
        self.held[code[ok]] = True
        new = Positions(
            code=code[ok],
            shares=shares[ok],
            signal_day=orders.signal_day[chosen][ok],
            signal_date=orders.signal_date[chosen][ok],
            buy_day=np.full(int(ok.sum()), d),
            entry=self.panel.open[d, code[ok]],
            price=price[ok],
            cost=cost,
        )
        self.open.extend(new)
        return float(value.sum()), float(cost.sum())

    def exits(self, d: int) -> np.ndarray:
        """Open positions sold at day d's close: exit due (now or before) and sellable today."""
        pos, panel = self.open, self.panel
        has_bar = panel.has_bar[d, pos.code]
        pos.due |= d >= pos.signal_day + self.rules.max_days
        if self.rules.exit == "take_profit":
            target = pos.entry * (1 + self.rules.min_return)
            started = d >= pos.signal_day + self.rules.min_days
            pos.due |= has_bar & started & (panel.close[d, pos.code] >= target)
        # T+1: never the day of purchase; no sale while suspended or at a one-price limit-down
        return pos.due & has_bar & ~panel.one_price_down[d, pos.code] & (pos.buy_day < d)

    def sell(self, d: int) -> tuple[float, float]:
        """Sell at day d's close what is due and sellable; returns (value sold, costs)."""
        return self.sell_at(d, self.exits(d), self.panel.close)

    def sell_at(self, d: int, mask: np.ndarray, prices: np.ndarray) -> tuple[float, float]:
        """Sell the open positions where `mask` is true at day d's `prices` (open or close
        panel); returns (value sold, costs)."""
        gone = self.open.take(mask)
        price = prices[d, gone.code] * (1 - self.slip)
        value = gone.shares * price
        cost = self.fills.sell_costs(d, value)
        self.cash += float(value.sum() - cost.sum())
        self.held[gone.code] = False
        if len(gone):
            self.closed.append((gone, d, price, cost))
        return float(value.sum()), float(cost.sum())

    def close_day(self, d: int, traded: float, costs: float) -> None:
        """Value the holdings at the close and record the day."""
        holdings = float((self.open.shares * self.panel.last_close[d, self.open.code]).sum())
        equity = self.cash + holdings
        row = (self.cash, holdings, equity, costs, traded / 2 / self.equity, len(self.open))
        for name, value in zip(self.columns, (*row, holdings / equity), strict=True):
            self.daily[name][d] = value
        self.equity = self.cash + holdings


def simulate(panel: Panel, orders: Orders, rules: Rules) -> Account:
    """Run the account over the panel's days: buys at the open, then sales at the close."""
    account = Account(panel, rules)
    for d in range(len(panel.days)):
        bought, buy_cost = account.buy(d, orders)
        sold, sell_cost = account.sell(d)
        account.close_day(d, bought + sold, buy_cost + sell_cost)
    return account


def daily_frame(account: Account, first: int = 0) -> pd.DataFrame:
    """One row per market day from day `first` on: the account after the close (`invested`:
    holdings value / equity) and the day's return."""
    daily = pd.DataFrame({"trade_date": account.panel.days, **account.daily})
    daily["n_holdings"] = daily["n_holdings"].astype(np.int64)
    before = np.concatenate([[account.rules.capital], daily["equity"].to_numpy()[:-1]])
    daily["returns"] = daily["equity"].to_numpy() / before - 1.0
    return daily.iloc[first:].reset_index(drop=True)


def trades_frame(account: Account) -> pd.DataFrame:
    """One row per position: closed ones by sale day, then those still open (no sale: costs
    are the buy costs, pnl and return NaN)."""
    still_open = account.open
    n_open = len(still_open)
    parts = [*account.closed, (still_open, -1, np.full(n_open, np.nan), np.zeros(n_open))]
    pos = Positions(
        **{name: np.concatenate([getattr(p[0], name) for p in parts]) for name in POSITION_FIELDS}
    )
    sell_day = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    price = np.concatenate([p[2] for p in parts])
    cost = np.concatenate([p[3] for p in parts])
    paid = pos.shares * pos.price + pos.cost
    pnl = pos.shares * price - cost - paid
    sold = sell_day >= 0
    days = account.panel.days
    return pd.DataFrame(
        {
            "ts_code": account.panel.codes[pos.code],
            "signal_date": pos.signal_date,
            "buy_date": days[pos.buy_day],
            "buy_price": pos.price,
            "shares": pos.shares,
            "sell_date": np.where(sold, days[np.maximum(sell_day, 0)], np.datetime64("NaT", "ns")),
            "sell_price": price,
            "costs": pos.cost + cost,
            "pnl": pnl,
            "return": pnl / paid,
            "holding_days": np.where(sold, sell_day - pos.buy_day, np.nan),
        }
    )
