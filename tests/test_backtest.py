"""The backtest's account follows A-share rules and costs (hand-computed tiny markets)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import LabelConfig
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation.backtest import BacktestConfig, run_backtest
from ashare_autotune.evaluation.backtest_account import size_orders

# Ten market days around the stamp duty change of Monday 2023-08-28 (DAYS[5]).
DAYS = pd.bdate_range("2023-08-21", "2023-09-01")
NO_COSTS = {
    "commission": 0.0,
    "min_commission": 0.0,
    "stamp_duty_before": 0.0,
    "stamp_duty_after": 0.0,
    "transfer_fee_before": 0.0,
    "transfer_fee_after": 0.0,
    "slippage_bps": 0.0,
}


def market(
    prices: dict[str, list],
    limit_up: tuple[tuple[str, int], ...] = (),
    one_price_down: tuple[tuple[str, int], ...] = (),
    limit_down: tuple[tuple[str, int], ...] = (),
) -> pd.DataFrame:
    """Bars from a price per day (open == close), an (open, close) pair, or None (suspended)."""
    rows = []
    for code, per_day in prices.items():
        for day, price in enumerate(per_day):
            if price is None:
                continue
            open_, close = price if isinstance(price, tuple) else (price, price)
            rows.append((code, DAYS[day], float(open_), float(close)))
    bars = pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "close"])
    day = bars["trade_date"].map({d: i for i, d in enumerate(DAYS)})
    keys = list(zip(bars["ts_code"], day, strict=True))
    bars["open_limit_up"] = [key in limit_up for key in keys]
    bars["open_limit_down"] = [key in limit_down or key in one_price_down for key in keys]
    bars["one_price_down"] = [key in one_price_down for key in keys]
    return bars


def signals(*rows: tuple[str, int, float]) -> pd.DataFrame:
    """Scores (ts_code, signal day number, score), all of them picks."""
    return pd.DataFrame(
        {
            "ts_code": [r[0] for r in rows],
            "trade_date": [DAYS[r[1]] for r in rows],
            "score": [float(r[2]) for r in rows],
            "pick": True,
        }
    )


def config(**overrides: object) -> BacktestConfig:
    """The per-signal top_k strategy with no costs, one position of the whole capital, a
    two-day horizon, unless overridden."""
    base = {
        **NO_COSTS,
        "strategy": "top_k",
        "top_k": 1,
        "max_holdings": 1,
        "capital": 10_000.0,
        "max_days": 2,
    }
    base |= {"min_days": 1, "min_return": 0.04}
    return BacktestConfig(**{**base, **overrides})


FLAT = [10.0] * len(DAYS)


def test_a_stock_opening_at_limit_up_is_not_bought() -> None:
    bars = market({"A": FLAT, "B": FLAT}, limit_up=(("A", 1),))
    scores = signals(("A", 0, 2.0), ("B", 0, 1.0))
    result = run_backtest(scores, bars, config(top_k=2, max_holdings=2))
    assert list(result.trades["ts_code"]) == ["B"]
    assert result.trades["buy_date"].iloc[0] == DAYS[1]
    assert result.skipped["limit_up"] == 1
    # the top-1 order that cannot fill is not replaced by the next score
    assert run_backtest(scores, bars, config(top_k=1)).trades.empty


def test_a_stock_suspended_on_the_day_after_the_signal_is_not_bought() -> None:
    bars = market({"A": [10.0, None, *FLAT[2:]], "B": FLAT})
    result = run_backtest(
        signals(("A", 0, 2.0), ("B", 0, 1.0)), bars, config(top_k=2, max_holdings=2)
    )
    assert list(result.trades["ts_code"]) == ["B"]
    assert result.skipped["suspended"] == 1


def test_one_price_limit_down_and_suspension_delay_the_sale_to_the_first_day_it_can_sell() -> None:
    # signal day 0, bought day 1, due at the close of day 2 (T+2): one-price limit-down on
    # day 2, suspended on day 3, sold at day 4's close
    prices = [10.0, 10.0, 9.0, None, 8.0, *FLAT[5:]]
    bars = market({"A": prices, "B": FLAT}, one_price_down=(("A", 2),))  # B: the market trades
    result = run_backtest(signals(("A", 0, 1.0)), bars, config())
    trade = result.trades.iloc[0]
    assert trade["sell_date"] == DAYS[4]
    assert trade["sell_price"] == 8.0
    assert trade["holding_days"] == 3
    # the daily account starts on day 1, the first day an order can fill
    assert result.daily["trade_date"].iloc[0] == DAYS[1]
    assert list(result.daily["n_holdings"][:5]) == [1, 1, 1, 0, 0]
    # valued at the last known close while suspended (day 3)
    assert result.daily["holdings_value"].iloc[2] == 1000 * 9.0


@pytest.mark.parametrize(
    "rule",
    [
        {"exit": "take_profit", "min_days": 1, "max_days": 5, "min_return": 0.04},
        {"exit": "horizon", "min_days": 1, "max_days": 1},
    ],
    ids=["take_profit_hit_on_the_buy_day", "horizon_ends_on_the_buy_day"],
)
def test_no_sale_on_the_day_of_purchase(rule: dict) -> None:
    # bought at day 1's open (10), closes at 11 (+10%) the same day; sold at day 2's close
    bars = market({"A": [10.0, (10.0, 11.0), 9.0, *FLAT[3:]]})
    trade = run_backtest(signals(("A", 0, 1.0)), bars, config(**rule)).trades.iloc[0]
    assert (trade["buy_date"], trade["sell_date"]) == (DAYS[1], DAYS[2])
    assert trade["sell_price"] == 9.0


def test_take_profit_sells_at_the_first_close_reaching_the_target_from_t_plus_min_days() -> None:
    # entry 10 at day 1's open, target 10.4; day 1's close reaches it before T+min_days (2)
    bars = market({"A": [10.0, (10.0, 10.5), 10.3, 10.5, 11.0, *FLAT[5:]]})
    cfg = config(exit="take_profit", min_days=2, max_days=5, min_return=0.04)
    trade = run_backtest(signals(("A", 0, 1.0)), bars, cfg).trades.iloc[0]
    assert trade["sell_date"] == DAYS[3]
    assert trade["sell_price"] == 10.5


@pytest.mark.parametrize(
    ("signal_day", "sale", "stamp_duty"),
    [(2, "2023-08-25", 0.001 * 10_000), (3, "2023-08-28", 0.0005 * 10_000)],
)
def test_stamp_duty_switches_on_2023_08_28(signal_day: int, sale: str, stamp_duty: float) -> None:
    # 1,000 shares bought at 10 and sold at 10 two days after the signal: only stamp duty
    cfg = config(stamp_duty_before=0.001, stamp_duty_after=0.0005)
    result = run_backtest(signals(("A", signal_day, 1.0)), market({"A": FLAT}), cfg)
    trade = result.trades.iloc[0]
    assert trade["sell_date"] == pd.Timestamp(sale)
    assert trade["shares"] == 1000
    assert trade["costs"] == pytest.approx(stamp_duty, abs=1e-9)
    assert result.daily["costs"].sum() == pytest.approx(stamp_duty, abs=1e-9)


def test_commission_is_at_least_5_cny_per_order() -> None:
    # 2,000 CNY buys one lot at 10 (1,000 CNY): commission 0.25 -> 5; transfer fee 0.01;
    # the sale (before 2023-08-28) adds 5 + 0.01 + stamp duty 1.0
    cfg = BacktestConfig(
        strategy="top_k",
        top_k=1,
        max_holdings=1,
        capital=2_000.0,
        min_days=1,
        max_days=2,
        min_return=0.04,
    )
    cfg = replace(cfg, slippage_bps=0.0)  # commission alone (slippage: test_fills.py)
    result = run_backtest(signals(("A", 0, 1.0)), market({"A": FLAT}), cfg)
    trade = result.trades.iloc[0]
    assert trade["shares"] == 100
    assert result.daily["cash"].iloc[0] == pytest.approx(2_000 - 1_000 - 5.01)
    assert trade["costs"] == pytest.approx(5.01 + 6.01)
    assert trade["pnl"] == pytest.approx(-11.02)


def test_commission_above_the_minimum_is_the_rate() -> None:
    # 1,000,000 CNY at 10: 999 lots (1,000 would not leave room for the costs)
    cfg = BacktestConfig(
        strategy="top_k",
        top_k=1,
        max_holdings=1,
        min_days=1,
        max_days=2,
        min_return=0.04,
        slippage_bps=0.0,
    )
    result = run_backtest(signals(("A", 0, 1.0)), market({"A": FLAT}), cfg)
    value = 99_900 * 10.0
    assert result.trades["shares"].iloc[0] == 99_900
    assert result.daily["costs"].iloc[0] == pytest.approx(value * (0.00025 + 0.00001))


def test_shares_are_whole_lots_whose_value_and_costs_fit_the_budget() -> None:
    # 100,000 CNY at 33.33: 30 lots would cost 99,990 + 25.00 + 1.00 > 100,000; 29 lots fit
    cfg = BacktestConfig(
        strategy="top_k",
        top_k=1,
        max_holdings=1,
        capital=100_000.0,
        min_days=1,
        max_days=2,
        min_return=0.04,
    )
    cfg = replace(cfg, slippage_bps=0.0)
    bars = market({"A": [33.33] * len(DAYS)})
    result = run_backtest(signals(("A", 0, 1.0)), bars, cfg)
    value = 2_900 * 33.33
    assert result.trades["shares"].iloc[0] == 2_900
    assert result.daily["cash"].iloc[0] == pytest.approx(100_000 - value * 1.00026)


def test_when_cash_runs_short_the_best_remaining_name_gets_the_rest_and_no_later_one() -> None:
    prices = np.array([10.0, 10.0, 5.0, 1.0])
    shares = size_orders(prices, cash=2_600.0, budget=1_000.0, rules=config(), transfer_fee=0.0)
    # 1,000 + 1,000 paid, 600 left: one lot at 5; the name at 1 would fit but comes later
    assert list(shares) == [100, 100, 100, 0]


def random_market(seed: int, n_stocks: int = 12) -> pd.DataFrame:
    """A seeded market over DAYS with suspensions and limit flags."""
    rng = np.random.default_rng(seed)
    prices = {}
    for i in range(n_stocks):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, len(DAYS))))
        opens = close * np.exp(rng.normal(0, 0.01, len(DAYS)))
        prices[f"S{i:02d}"] = [
            None if rng.random() < 0.1 else (o, c) for o, c in zip(opens, close, strict=True)
        ]
    flags = [(f"S{i:02d}", d) for i in range(n_stocks) for d in range(len(DAYS))]
    pick = rng.random(len(flags))
    return market(
        prices,
        limit_up=tuple(f for f, p in zip(flags, pick, strict=True) if p < 0.1),
        one_price_down=tuple(f for f, p in zip(flags, pick, strict=True) if p > 0.9),
    )


def random_scores(bars: pd.DataFrame, seed: int) -> pd.DataFrame:
    scores = bars[["ts_code", "trade_date"]].copy()
    scores["score"] = np.random.default_rng(seed).random(len(scores))
    scores["pick"] = scores["score"] > 0.6
    return scores


@pytest.mark.parametrize("exit_rule", ["horizon", "take_profit"])
def test_cash_plus_holdings_is_equity_every_day_and_the_rules_hold_on_a_random_market(
    exit_rule: str,
) -> None:
    bars = random_market(seed=3)
    cfg = BacktestConfig(
        strategy="top_k", top_k=3, max_holdings=6, capital=200_000.0, exit=exit_rule
    )
    cfg = cfg.with_label(LabelConfig())
    cfg = replace(cfg, min_days=1, max_days=3, min_return=0.02, slippage_bps=5.0)
    result = run_backtest(random_scores(bars, seed=4), bars, cfg)
    daily, trades = result.daily, result.trades
    assert len(trades) > 5
    np.testing.assert_allclose(daily["cash"] + daily["holdings_value"], daily["equity"])
    assert (daily["cash"] >= -1e-9).all()
    assert (daily["n_holdings"] <= cfg.max_holdings).all()
    # holdings valued independently: shares held after each close times the last close
    last_close = bars.pivot(index="trade_date", columns="ts_code", values="close").ffill()
    for day, value in zip(daily["trade_date"], daily["holdings_value"], strict=True):
        held = (trades["buy_date"] <= day) & ~(trades["sell_date"] <= day)
        marks = last_close.loc[day, trades.loc[held, "ts_code"]].to_numpy()
        assert value == pytest.approx(float((trades.loc[held, "shares"] * marks).sum()))
    # the account's gain is the closed trades' pnl plus the open ones' marks less their cost
    open_ = trades["sell_date"].isna()
    marks = last_close.iloc[-1][trades.loc[open_, "ts_code"]].to_numpy()
    unrealised = trades.loc[open_, "shares"] * (marks - trades.loc[open_, "buy_price"])
    gain = trades["pnl"].sum() + unrealised.sum() - trades.loc[open_, "costs"].sum()
    assert daily["equity"].iloc[-1] - cfg.capital == pytest.approx(gain)
    # fills only on fillable days, sales only on sellable days and never on the buy day
    flags = bars.set_index(["ts_code", "trade_date"])
    bought = flags.loc[list(zip(trades["ts_code"], trades["buy_date"], strict=True))]
    assert not bought["open_limit_up"].any()
    closed = trades.loc[~open_]
    sold = flags.loc[list(zip(closed["ts_code"], closed["sell_date"], strict=True))]
    assert not sold["one_price_down"].any()
    assert (closed["sell_date"] > closed["buy_date"]).all()
    assert (trades["shares"] % 100 == 0).all()


def test_without_costs_or_limits_trade_returns_are_the_plain_forward_returns() -> None:
    # 8 stocks trading every day; each signal day's top 2 rotate, so no name is still held
    # when it is signalled again: every signal with a full horizon becomes a trade
    rng = np.random.default_rng(7)
    prices = {}
    for i in range(8):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, len(DAYS))))
        opens = close * np.exp(rng.normal(0, 0.01, len(DAYS)))
        prices[f"S{i}"] = list(zip(opens, close, strict=True))
    bars = market(prices)
    rows = [(f"S{(2 * t + j) % 8}", t, 2.0 - j) for t in range(len(DAYS)) for j in (0, 1)]
    rows += [(f"S{(2 * t + j) % 8}", t, 0.0) for t in range(len(DAYS)) for j in range(2, 8)]
    cfg = config(top_k=2, max_holdings=50, capital=1e8, min_days=1, max_days=3, min_return=0.04)
    result = run_backtest(signals(*rows), bars, cfg)

    opens = bars.pivot(index="trade_date", columns="ts_code", values="open")
    closes = bars.pivot(index="trade_date", columns="ts_code", values="close")
    forward = (closes.shift(-3) / opens.shift(-1) - 1).stack().rename("forward")
    trades = result.trades.join(forward, on=["signal_date", "ts_code"])
    closed = trades.loc[trades["sell_date"].notna()]
    expected = [(f"S{(2 * t + j) % 8}", DAYS[t]) for t in range(len(DAYS) - 3) for j in (0, 1)]
    assert sorted(zip(closed["ts_code"], closed["signal_date"], strict=True)) == sorted(expected)
    # the signals of the last days were bought and are still open at the end of the data
    still_open = [DAYS[-3], DAYS[-3], DAYS[-2], DAYS[-2]]
    assert list(trades.loc[trades["sell_date"].isna(), "signal_date"]) == still_open
    np.testing.assert_allclose(closed["return"], closed["forward"], rtol=0, atol=1e-12)
    gain = (closed["shares"] * (closed["sell_price"] - closed["buy_price"])).sum()
    assert closed["pnl"].sum() == pytest.approx(gain)


def test_a_name_already_held_is_not_bought_again() -> None:
    bars = market({"A": FLAT, "B": FLAT})
    scores = signals(("A", 0, 1.0), ("A", 1, 1.0))
    result = run_backtest(scores, bars, config(top_k=1, max_holdings=2, max_days=3))
    assert list(result.trades["signal_date"]) == [DAYS[0]]
    assert result.skipped["held"] == 1


def test_the_account_up_to_a_day_does_not_change_when_later_bars_change() -> None:
    bars = random_market(seed=5)
    scores = random_scores(bars, seed=6)
    cfg = BacktestConfig(
        strategy="top_k",
        top_k=3,
        max_holdings=6,
        capital=200_000.0,
        min_days=1,
        max_days=3,
        min_return=0.04,
    )
    before = run_backtest(scores, bars, cfg).daily
    later = bars["trade_date"] > DAYS[5]
    changed = bars.copy()
    changed.loc[later, ["open", "close"]] *= np.linspace(0.5, 1.5, int(later.sum()))[:, None]
    changed.loc[later, "open_limit_up"] = ~changed.loc[later, "open_limit_up"]
    after = run_backtest(scores, changed, cfg).daily
    pd.testing.assert_frame_equal(before.iloc[:5], after.iloc[:5])  # days 1..5
    assert not before["equity"].equals(after["equity"])


def test_threshold_strategy_buys_only_picks_best_score_first_up_to_max_holdings() -> None:
    bars = market({code: FLAT for code in "ABCD"})
    scores = signals(("A", 0, 0.9), ("B", 0, 0.8), ("C", 0, 0.95), ("D", 0, 0.99))
    scores["pick"] = [True, True, True, False]
    cfg = config(strategy="threshold", top_k=1, max_holdings=2, capital=20_000.0)
    result = run_backtest(scores, bars, cfg)
    assert list(result.trades["ts_code"]) == ["C", "A"]
    assert result.skipped["no_slot"] == 1


def test_slippage_moves_both_fills_against_the_account() -> None:
    result = run_backtest(signals(("A", 0, 1.0)), market({"A": FLAT}), config(slippage_bps=10))
    trade = result.trades.iloc[0]
    assert trade["buy_price"] == pytest.approx(10 * 1.001)
    assert trade["sell_price"] == pytest.approx(10 * 0.999)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        # the account
        ({"strategy": "best_guess"}, "backtest.strategy"),
        ({"exit": "never"}, "backtest.exit"),
        ({"commission": -0.0001}, "backtest.commission"),
        ({"stamp_duty_after": -0.1}, "backtest.stamp_duty_after"),
        ({"min_commission": float("nan")}, "backtest.min_commission"),
        ({"top_k": 0}, "backtest.top_k"),
        ({"top_k": 10, "max_holdings": 5}, "backtest.max_holdings"),
        ({"max_days": 0}, "backtest.max_days"),
        ({"capital": 0.0}, "backtest.capital"),
        ({"stamp_duty_switch": "soon"}, "backtest.stamp_duty_switch"),
        ({"stamp_duty_switch": "2023-02-30"}, "backtest.stamp_duty_switch"),
        # the fills (`evaluation.fills`: slippage, volume cap, transfer fee)
        ({"slippage_bps": -1.0}, "backtest.slippage_bps"),
        ({"max_volume_share": 0.0}, "backtest.max_volume_share"),
        ({"max_volume_share": 1.5}, "backtest.max_volume_share"),
        ({"max_volume_share": float("nan")}, "backtest.max_volume_share"),
        ({"transfer_fee_before": -0.00002}, "backtest.transfer_fee_before"),
        ({"transfer_fee_switch": "soon"}, "backtest.transfer_fee_switch"),
    ],
)
def test_a_bad_setting_is_a_one_line_error_naming_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'") as err:
        config(**overrides)
    assert "\n" not in str(err.value)


def test_a_window_without_bars_is_a_one_line_error_naming_the_window() -> None:
    bars, scores = market({"A": FLAT}), signals(("A", 0, 1.0))
    with pytest.raises(ConfigError, match="start=2024-01-02, end=2024-02-01") as err:
        run_backtest(scores, bars, config(), start="2024-01-02", end="2024-02-01")
    assert "\n" not in str(err.value)
    later = scores.assign(trade_date=pd.Timestamp("2024-01-02"))
    with pytest.raises(ConfigError, match="no bars in it"):
        run_backtest(later, bars, config())


def test_missing_input_columns_are_named() -> None:
    bars, scores = market({"A": FLAT}), signals(("A", 0, 1.0))
    with pytest.raises(DataError, match="scores: missing column 'pick'"):
        run_backtest(scores.drop(columns="pick"), bars, config(strategy="threshold"))
    with pytest.raises(DataError, match="bars: missing column 'one_price_down'"):
        run_backtest(scores, bars.drop(columns="one_price_down"), config())


def test_two_score_rows_of_one_stock_and_day_are_an_error_not_two_positions() -> None:
    bars, scores = market({"A": FLAT}), signals(("A", 0, 1.0), ("A", 0, 0.5))
    with pytest.raises(DataError, match="scores: two rows for ts_code=A, trade_date=2023-08-21"):
        run_backtest(scores, bars, config(top_k=2, max_holdings=2))


def test_the_daily_account_starts_the_day_after_the_first_signal_day() -> None:
    # signal day T (DAYS[2]) is in neither series: orders first fill at T+1; a threshold
    # window starts at the first scored day even when the first pick is later
    scores = signals(("A", 2, 1.0), ("A", 4, 1.0))
    scores["pick"] = [False, True]
    result = run_backtest(scores, market({"A": FLAT}), config(strategy="threshold"))
    assert result.daily["trade_date"].iloc[0] == DAYS[3]
    assert result.trades["buy_date"].tolist() == [DAYS[5]]
    with pytest.raises(DataError, match="no market day after the first signal day 2023-09-01"):
        run_backtest(signals(("A", 9, 1.0)), market({"A": FLAT}), config())
