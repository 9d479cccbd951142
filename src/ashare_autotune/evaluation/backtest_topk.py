"""The topk_dropout day loop (qlib's TopkDropoutStrategy): a fully invested equal-weight book of
`top_k` names of which at most `n_drop` are replaced a day.

The scores of signal day T trade at the open of T+1, sales and purchases at that one price:
1. rank: the held names together with the best not-held candidates of T (n_drop + top_k -
   held of them), by T's score; a held name without a score on T (suspended, out of the
   universe) ranks below every scored name (ties by stock);
2. sell the held names among the worst n_drop of that list, when they can be sold at the open:
   not bought that day, a bar that day (not suspended), not opening at the limit-down price.
   A blocked sale is counted (`sell_blocked`) and ranked again with the next day's scores, so
   a name still among the worst is sold on the first day it can be;
3. buy the best not-held candidates, as many as were sold plus the empty slots; the cash after
   the sales is split equally among them (each gets cash / their number, in whole lots with
   the buy costs). A purchase that cannot fill (suspended, opening at limit-up) leaves its share
   of the cash idle until a slot is filled again; it is not replaced by a lower name.
Held names are never rebalanced. Unlike qlib (which buys len(sell) names even when a sale is
blocked, and keeps 5% cash by default), the book never exceeds top_k names and invests all the
cash. A market day after the last signal day (no scores) holds the book unchanged.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ashare_autotune.evaluation.backtest_account import Account, Orders, Panel, Rules


class DropoutRules(Rules, Protocol):
    """What the topk_dropout loop needs of `backtest.BacktestConfig` besides the account's."""

    top_k: int
    n_drop: int


def simulate_topk_dropout(panel: Panel, orders: Orders, rules: DropoutRules) -> Account:
    """Run the topk_dropout book over the panel's days (rules: module docstring).

    Args:
        panel: the bars as dense (day, stock) arrays.
        orders: every scored candidate, by buy day (signal day + 1), best score first.
        rules: top_k, n_drop and the account's capital and costs.

    Returns:
        The account after the last day.
    """
    account = Account(panel, rules)
    for d in range(len(panel.days)):
        lo, hi = orders.starts[d], orders.starts[d + 1]
        sold = bought = (0.0, 0.0)
        if hi > lo:  # a day after the last signal day holds the book
            held = account.open.code
            sell, today = dropout_orders(
                held, orders.code[lo:hi], account.held, rules.n_drop, rules.top_k
            )
            can_sell = sell & sellable(account, d)
            account.skipped["sell_blocked"] += int(sell.sum() - can_sell.sum())
            sold = account.sell_at(d, can_sell, panel.open)
            n_buy = int(can_sell.sum()) + rules.top_k - len(held)
            bought = buy_equally(account, d, orders, lo + today[:n_buy])
        account.close_day(d, bought[0] + sold[0], bought[1] + sold[1])
    return account


def dropout_orders(
    held: np.ndarray, candidates: np.ndarray, is_held: np.ndarray, n_drop: int, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which held names to sell and the best not-held candidates, from one day's scores.

    Args:
        held: the held stocks (panel columns).
        candidates: the day's scored stocks, best first (-1: no bar in the window).
        is_held: per panel column, held now.
        n_drop: most names replaced.
        top_k: names in the book.

    Returns:
        A bool mask over `held` (among the worst n_drop of held + best not-held) and the
        positions in `candidates` of the best n_drop + top_k - len(held) not-held ones.
    """
    known = candidates >= 0
    rank = np.full(len(is_held), -1, dtype=np.int64)
    rank[candidates[known]] = np.flatnonzero(known)
    held_rank = rank[held]
    # no score today: below every scored name, ties by stock
    held_rank = np.where(held_rank < 0, len(candidates) + held, held_rank)
    not_held = np.flatnonzero(~(known & is_held[np.maximum(candidates, 0)]))
    today = not_held[: max(n_drop + top_k - len(held), 0)]
    ranks = np.concatenate([held_rank, today])
    if len(ranks) <= n_drop:
        return np.ones(len(held), bool), today
    cut = np.partition(ranks, len(ranks) - n_drop)[len(ranks) - n_drop]
    return held_rank >= cut, today


def sellable(account: Account, d: int) -> np.ndarray:
    """Open positions that can be sold at day d's open: bought before d, a bar on d and no
    limit-down open."""
    pos, panel = account.open, account.panel
    at_open = panel.has_bar[d, pos.code] & ~panel.open_limit_down[d, pos.code]
    return at_open & (pos.buy_day < d)


def buy_equally(
    account: Account, d: int, orders: Orders, chosen: np.ndarray
) -> tuple[float, float]:
    """Buy orders[chosen] at day d's open with an equal share of the cash each; the share of
    one that cannot fill stays idle. Returns (value bought, costs)."""
    if len(chosen) == 0:
        return 0.0, 0.0
    budget = account.cash / len(chosen)
    fills = chosen[account.fillable(d, orders.code[chosen])]
    return account.fill(d, orders, fills, budget)
