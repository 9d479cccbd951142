"""Fills a trader would get: lots by board, slippage, the transfer-fee history, the volume cap
(hand-made markets, hand-computed numbers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.errors import DataError
from ashare_autotune.evaluation.backtest import run_backtest
from ashare_autotune.evaluation.fills import lot_rules, round_shares
from tests.test_backtest import NO_COSTS

# Market days around the transfer-fee cut of Friday 2022-04-29 (DAYS[4]).
DAYS = pd.bdate_range("2022-04-25", "2022-05-06")


def bars(code: str, price: float = 10.0, **extra: float) -> pd.DataFrame:
    """One stock at `price` every day (open == close), no limit days, plus constant columns."""
    frame = pd.DataFrame(
        {"ts_code": code, "trade_date": DAYS, "open": price, "close": price, **extra}
    )
    frame["open_limit_up"] = False
    frame["open_limit_down"] = False
    frame["one_price_down"] = False
    return frame


def signal(code: str, day: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"ts_code": [code], "trade_date": [DAYS[day]], "score": [1.0]})


def config(**overrides: object) -> BacktestConfig:
    """Free trading, one position of the whole capital, sold at the close of T+2 (the T+1 buy
    day's next market day)."""
    base = {
        "strategy": "top_k",
        "top_k": 1,
        "max_holdings": 1,
        "min_days": 1,
        "max_days": 2,
        "min_return": 0.04,
    }
    return BacktestConfig(**{**base, **NO_COSTS, **overrides})


@pytest.mark.parametrize(
    ("code", "capital", "shares"),
    [
        ("688001.SH", 1_500.0, 0),  # STAR: 150 shares are below the 200-share minimum
        ("688001.SH", 2_500.0, 250),  # then 1-share steps
        ("689009.SH", 2_990.0, 299),
        ("430047.BJ", 1_500.0, 150),  # Beijing: at least 100, then 1-share steps
        ("430047.BJ", 990.0, 0),
        ("600000.SH", 1_500.0, 100),  # main board: lots of 100
        ("300750.SZ", 2_990.0, 200),  # ChiNext: lots of 100
    ],
)
def test_an_order_is_rounded_to_its_boards_lots(code: str, capital: float, shares: int) -> None:
    # at 10 CNY without costs the budget (the whole capital) buys capital / 10 shares at most
    result = run_backtest(signal(code), bars(code), config(capital=capital))
    bought = result.trades["shares"].to_numpy()
    assert list(bought) == ([shares] if shares else [])
    assert result.skipped["no_cash"] == (0 if shares else 1)


def test_lot_rules_per_code_are_vectorised() -> None:
    codes = np.array(["688001.SH", "430047.BJ", "600000.SH", "000001.SZ"], dtype=object)
    minimum, step = lot_rules(codes, lot=100)
    assert list(minimum) == [200, 100, 100, 100]
    assert list(step) == [1, 1, 100, 100]
    wanted = np.array([150.0, 150.0, 150.0, 250.0])
    assert list(round_shares(wanted, minimum, step)) == [0, 150, 100, 200]


def test_the_default_slippage_is_12_3_bp_a_side_against_both_fills() -> None:
    assert BacktestConfig().slippage_bps == 12.3
    # 11,000 CNY at 10 * 1.00123 = 10.0123 buys 1,000 shares (1,100 would cost 11,013.53);
    # sold at 10 * (1 - 0.00123) = 9.9877: 1,000 * (9.9877 - 10.0123) = -24.60 CNY
    cfg = config(capital=11_000.0, slippage_bps=12.3)
    result = run_backtest(signal("600000.SH"), bars("600000.SH"), cfg)
    trade = result.trades.iloc[0]
    assert trade["shares"] == 1_000
    assert trade["buy_price"] == pytest.approx(10.0123)
    assert trade["sell_price"] == pytest.approx(9.9877)
    assert trade["pnl"] == pytest.approx(-24.60)
    assert result.daily["equity"].iloc[-1] == pytest.approx(11_000 - 24.60)


@pytest.mark.parametrize(
    ("signal_day", "buy_fee", "sell_fee"),
    [
        # bought Tue 04-26, sold Wed 04-27: 0.002% on both sides of 100,000 CNY = 2 + 2
        (0, 2.0, 2.0),
        # bought Thu 04-28 at 0.002% (2.0), sold Fri 04-29 at 0.001% (1.0)
        (2, 2.0, 1.0),
        # bought Fri 04-29, the first day of 0.001%, sold Mon 05-02: 1 + 1
        (3, 1.0, 1.0),
    ],
)
def test_the_transfer_fee_halves_from_2022_04_29(
    signal_day: int, buy_fee: float, sell_fee: float
) -> None:
    defaults = BacktestConfig()
    assert (defaults.transfer_fee_before, defaults.transfer_fee_after) == (0.00002, 0.00001)
    assert defaults.transfer_fee_switch == "2022-04-29"
    rates = {"transfer_fee_before": 0.00002, "transfer_fee_after": 0.00001}
    # 100,010 CNY buys 10,000 shares at 10 (100,000 + at most 2.0 in fees; 10,100 would not fit)
    cfg = config(capital=100_010.0, **rates)
    result = run_backtest(signal("600000.SH", signal_day), bars("600000.SH"), cfg)
    trade = result.trades.iloc[0]
    assert trade["shares"] == 10_000
    assert trade["costs"] == pytest.approx(buy_fee + sell_fee)
    assert result.daily["costs"].sum() == pytest.approx(buy_fee + sell_fee)


@pytest.mark.parametrize(
    ("code", "columns", "shares"),
    [
        # 10% of 53 thousand CNY traded = 5,300 CNY: 530 shares at 10, 500 in lots of 100
        ("600000.SH", {"amount": 53.0, "vol": 80.0}, 500),
        ("688001.SH", {"amount": 53.0, "vol": 80.0}, 530),  # STAR: 1-share steps
        # no amount: 10% of 80 lots of 100 shares = 800 shares
        ("600000.SH", {"vol": 80.0}, 800),
    ],
)
def test_the_volume_cap_limits_a_buy_to_its_share_of_the_days_trading(
    code: str, columns: dict[str, float], shares: int
) -> None:
    cfg = config(capital=1_000_000.0, max_volume_share=0.1)
    result = run_backtest(signal(code), bars(code, **columns), cfg)
    assert result.trades["shares"].iloc[0] == shares
    # without the cap the whole capital buys 100,000 shares
    uncapped = run_backtest(signal(code), bars(code, **columns), config(capital=1_000_000.0))
    assert uncapped.trades["shares"].iloc[0] == 100_000


def test_a_volume_cap_without_volume_or_amount_is_a_data_error() -> None:
    with pytest.raises(DataError, match="backtest.max_volume_share"):
        run_backtest(signal("600000.SH"), bars("600000.SH"), config(max_volume_share=0.1))


def test_a_volume_cap_of_one_is_allowed() -> None:
    assert config(max_volume_share=1.0).max_volume_share == 1.0
