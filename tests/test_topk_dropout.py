"""topk_dropout keeps a fully invested top-k book and replaces at most n_drop names a day
(hand-made markets; signal of day T trades at T+1's open)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest import BacktestConfig, run_backtest
from ashare_autotune.evaluation.backtest_account import Account, Panel, Positions
from ashare_autotune.evaluation.backtest_topk import dropout_orders, sellable
from tests.test_backtest import NO_COSTS

DAYS = pd.bdate_range("2024-03-04", periods=30)
Flags = tuple[tuple[str, int], ...]


def market(prices: dict[str, list], limit_up: Flags = (), limit_down: Flags = ()) -> pd.DataFrame:
    """Bars from a price per day (open == close), an (open, close) pair or None (suspended)."""
    rows = [
        (code, DAYS[day], *(price if isinstance(price, tuple) else (price, price)))
        for code, per_day in prices.items()
        for day, price in enumerate(per_day)
        if price is not None
    ]
    bars = pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "close"])
    keys = list(zip(bars["ts_code"], bars["trade_date"].map(DAYS.get_loc), strict=True))
    bars["open_limit_up"] = [key in limit_up for key in keys]
    bars["open_limit_down"] = [key in limit_down for key in keys]
    bars["one_price_down"] = False
    return bars


def scores(*days: dict[str, float]) -> pd.DataFrame:
    """One {stock: score} per signal day from DAYS[0] on."""
    rows = [(code, DAYS[t], s) for t, day in enumerate(days) for code, s in day.items()]
    return pd.DataFrame(rows, columns=["ts_code", "trade_date", "score"])


def config(**overrides: object) -> BacktestConfig:
    """topk_dropout without costs, 2 names, 1 replaced a day, unless overridden."""
    base = {**NO_COSTS, "top_k": 2, "n_drop": 1, "capital": 20_000.0}
    base |= {"min_days": 1, "max_days": 2, "min_return": 0.04}
    return BacktestConfig(**{**base, **overrides})


def flat(n: int = 6, price: float = 10.0) -> list:
    return [price] * n


def test_topk_dropout_is_the_default_strategy() -> None:
    cfg = BacktestConfig()
    assert (cfg.strategy, cfg.top_k, cfg.n_drop) == ("topk_dropout", 50, 5)


def test_names_still_ranked_in_stay_held_without_selling_and_rebuying() -> None:
    bars = market({code: flat() for code in "ABCD"})
    same = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}
    result = run_backtest(scores(*[same] * 5), bars, config())
    trades = result.trades
    assert sorted(trades["ts_code"]) == ["A", "B"]
    assert (trades["buy_date"] == DAYS[1]).all()
    assert trades["sell_date"].isna().all()
    assert list(result.daily["turnover"]) == [0.5, 0.0, 0.0, 0.0, 0.0]
    assert list(result.daily["invested"]) == [1.0] * 5


def test_the_worst_held_name_is_swapped_for_the_best_candidate_with_its_proceeds() -> None:
    # day 0: A, B best -> bought at day 1's open (1,000 shares each at 10)
    # day 1: C 4, A 3, D 2, B 1: held A, B + best not-held C; worst of the three is B:
    #   B sold at day 2's open (12) and its 12,000 buy C at 8 (1,500 shares)
    # day 2: D 4, C 3, A 2, B 1: held A, C + D; A worst: sold at day 3's open, D bought
    bars = market({"A": flat(), "B": [10.0, 10.0, 12.0, *flat(3)], "C": [8.0] * 6, "D": flat()})
    days = (
        {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0},
        {"C": 4.0, "A": 3.0, "D": 2.0, "B": 1.0},
        {"D": 4.0, "C": 3.0, "A": 2.0, "B": 1.0},
    )
    result = run_backtest(scores(*days), bars, config())
    trades = result.trades.set_index("ts_code")
    assert trades.loc[["A", "B", "C", "D"], "buy_date"].tolist() == [DAYS[i] for i in (1, 1, 2, 3)]
    assert trades.loc["B", "sell_date"] == DAYS[2]
    assert trades.loc["B", "sell_price"] == 12.0
    assert trades.loc["A", "sell_date"] == DAYS[3]
    assert trades.loc["C", "shares"] == 1_500
    # day 2: 12,000 sold and 12,000 bought against 20,000 equity at day 1's close
    assert result.daily["turnover"].iloc[1] == pytest.approx(12_000 / 20_000)


def test_at_most_n_drop_names_change_a_day_and_the_book_stays_full_on_a_random_market() -> None:
    rng = np.random.default_rng(11)
    codes = [f"S{i:02d}" for i in range(30)]
    walk = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(DAYS), len(codes))), axis=0))
    bars = market({c: list(walk[:, i]) for i, c in enumerate(codes)})
    days = [dict(zip(codes, rng.random(len(codes)), strict=True)) for _ in DAYS]
    cfg = config(top_k=6, n_drop=2, capital=1e8)
    result = run_backtest(scores(*days), bars, cfg)
    trades = result.trades
    sales = trades["sell_date"].value_counts()
    buys = trades["buy_date"].value_counts().drop(DAYS[1])
    assert sales.max() == 2 and buys.max() == 2
    assert (result.daily["n_holdings"] == 6).all()
    assert (trades["holding_days"].dropna() >= 1).all()  # never sold on the day it was bought


def test_the_account_stays_fully_invested_when_every_fill_succeeds() -> None:
    # costs on, lots small against a 2,000,000 CNY position: idle cash is lot rounding only
    rng = np.random.default_rng(5)
    codes = [f"S{i:02d}" for i in range(20)]
    walk = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, (len(DAYS), len(codes))), axis=0))
    bars = market({c: list(walk[:, i]) for i, c in enumerate(codes)})
    days = [dict(zip(codes, rng.random(len(codes)), strict=True)) for _ in DAYS]
    cfg = BacktestConfig(top_k=5, n_drop=1, capital=1e7, min_days=1, max_days=2, min_return=0.1)
    result = run_backtest(scores(*days), bars, cfg)
    assert result.daily["trade_date"].iloc[0] == DAYS[1]
    assert result.daily["invested"].min() >= 0.99
    assert result.daily["turnover"].iloc[1:].max() <= 1 / 5 + 0.02
    assert sum(result.skipped.values()) == 0


@pytest.mark.parametrize(
    ("prices_a", "limit_down"),
    [([10.0, 10.0, None, 9.0, 9.0, 9.0], ()), ([10.0, 10.0, 9.0, 9.0, 9.0, 9.0], (("A", 2),))],
    ids=["suspended", "limit_down_open"],
)
def test_a_blocked_sale_is_retried_and_sold_on_the_next_sellable_day(
    prices_a: list, limit_down: Flags
) -> None:
    # A bought at day 1; ranked below B on day 1 -> to be sold at day 2's open, blocked;
    # on day 2 A is still worst (no score while suspended) -> sold at day 3's open, and only
    # then is B bought with the proceeds (the slot is not free before)
    bars = market({"A": prices_a, "B": flat()}, limit_down=limit_down)
    day2 = {"B": 2.0} if prices_a[2] is None else {"B": 2.0, "A": 1.0}
    signals = scores({"A": 2.0, "B": 1.0}, {"B": 2.0, "A": 1.0}, day2)
    result = run_backtest(signals, bars, config(top_k=1, n_drop=1, capital=10_000.0))
    trades = result.trades.set_index("ts_code")
    assert trades.loc["A", "sell_date"] == DAYS[3]
    assert trades.loc["A", "sell_price"] == 9.0
    assert trades.loc["B", "buy_date"] == DAYS[3]
    assert result.skipped["sell_blocked"] == 1
    assert list(result.daily["n_holdings"][:3]) == [1, 1, 1]


def test_a_limit_up_open_is_not_bought_and_its_cash_waits_for_the_next_day() -> None:
    # day 0: A, B best; A opens at limit-up on day 1: only B (10,000 CNY), C is not bought in
    # A's place; day 1's scores fill the empty slot with A at day 2's open
    bars = market({code: flat() for code in "ABC"}, limit_up=(("A", 1),))
    same = {"A": 3.0, "B": 2.0, "C": 1.0}
    result = run_backtest(scores(same, same), bars, config())
    trades = result.trades.set_index("ts_code")
    assert trades["buy_date"].to_dict() == {"B": DAYS[1], "A": DAYS[2]}
    assert list(result.daily["invested"][:2]) == [0.5, 1.0]
    assert result.skipped["limit_up"] == 1


def test_a_position_is_never_sellable_on_its_buy_day() -> None:
    n = 4
    trades = np.ones((n, 1), bool)
    prices = np.full((n, 1), 10.0)
    panel = Panel(
        days=np.asarray(DAYS[:n], "datetime64[ns]"),
        codes=np.array(["A"], dtype=object),
        open=prices,
        close=prices,
        last_close=prices,
        has_bar=trades,
        open_limit_up=~trades,
        open_limit_down=~trades,
        one_price_down=~trades,
    )
    account = Account(panel, config())
    account.open = Positions(code=np.array([0]), buy_day=np.array([2]), shares=np.array([1.0]))
    assert [bool(sellable(account, d)[0]) for d in (2, 3)] == [False, True]


def test_a_held_name_without_a_score_ranks_below_every_scored_name() -> None:
    # held: columns 0 and 1; today's candidates best first: 2, 0, 3 (1 has no score)
    is_held = np.array([True, True, False, False])
    sell, today = dropout_orders(np.array([0, 1]), np.array([2, 0, 3]), is_held, 1, 2)
    assert list(sell) == [False, True]
    assert list(today) == [0]  # candidate 2 at position 0; n_drop + top_k - held = 1


def test_top_k_plus_n_drop_above_the_universe_is_a_one_line_error() -> None:
    bars = market({code: flat() for code in "ABC"})
    signals = scores({"A": 3.0, "B": 2.0, "C": 1.0})
    with pytest.raises(ConfigError, match="'backtest.top_k'=3: plus backtest.n_drop=1") as err:
        run_backtest(signals, bars, config(top_k=3))
    assert "at most 3" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [({"n_drop": 0}, "backtest.n_drop"), ({"top_k": 2, "n_drop": 3}, "backtest.n_drop")],
)
def test_a_bad_n_drop_is_a_one_line_error(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'") as err:
        config(**overrides)
    assert "\n" not in str(err.value)
