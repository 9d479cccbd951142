"""Tradable entry: buy at the next market day's open when it can fill, else no label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.data.schema import normalize_daily
from ashare_autotune.modelling.labels import (
    entry_prices,
    forward_returns,
    make_labels,
    trading_calendar,
    unfillable_entries,
)
from ashare_autotune.modelling.limits import limit_flags


def _bars(rows: dict[str, list[tuple[float, float] | None]]) -> tuple[pd.DataFrame, pd.Index]:
    """(open, close) per day per stock on a shared calendar; None = no bar (suspended)."""
    dates = pd.bdate_range("2024-01-01", periods=len(next(iter(rows.values()))))
    records = [
        (code, d, o, c)
        for code, days in rows.items()
        for d, oc in zip(dates, days, strict=True)
        if oc is not None
        for o, c in [oc]
    ]
    daily = pd.DataFrame(records, columns=["ts_code", "trade_date", "open", "close"])
    daily["ts_code"] = daily["ts_code"].astype("category")
    return daily.astype({"open": np.float32, "close": np.float32}), pd.DatetimeIndex(dates)


def test_next_open_gain_is_measured_from_the_next_open() -> None:
    #             T0         T+1        T+2        T+3        T+4
    days = [(10, 10), (10.5, 10.4), (10, 10.8), (10, 10.9), (10, 10.6), (10, 10), (10, 10)]
    daily, cal = _bars({"A": days})
    none_blocked = np.zeros(len(daily), dtype=bool)
    y_open = make_labels(daily, cal, 1, 3, 0.04, entry="next_open", open_limit_up=none_blocked)
    y_close = make_labels(daily, cal, 1, 3, 0.04)
    # T0: best close over T+1..T+3 is 10.9; +9% on close 10 but only +3.8% on the 10.5 open
    assert y_close.iloc[0] == 1 and y_open.iloc[0] == 0
    # T1: next open 10.0 and close 10.4 both reach +4% with the 10.9 close of T+2
    assert y_open.iloc[1] == 1 and y_close.iloc[1] == 1
    fwd = forward_returns(daily, cal, 3, entry="next_open", open_limit_up=none_blocked)
    assert fwd[0] == pytest.approx(10.9 / 10.5 - 1, rel=1e-6)  # exit: close of T+3
    assert forward_returns(daily, cal, 3)[0] == pytest.approx(0.09, rel=1e-6)  # close entry


def test_no_label_when_the_stock_has_no_bar_on_the_next_market_day() -> None:
    a = [(10, 10)] * 8
    b = [(10, 10), None, (10, 11), (11, 12), (12, 12), (12, 12), (12, 12), (12, 12)]
    daily, cal = _bars({"A": a, "B": b})
    blocked = np.zeros(len(daily), dtype=bool)
    y = make_labels(daily, cal, 1, 3, 0.04, entry="next_open", open_limit_up=blocked)
    fwd = forward_returns(daily, cal, 3, entry="next_open", open_limit_up=blocked)
    first_b = np.flatnonzero(daily["ts_code"] == "B")[0]
    assert np.isnan(y.iloc[first_b]) and np.isnan(fwd[first_b])  # suspended on T+1
    assert y.iloc[first_b + 1] == 1  # its next row fills at 11 and reaches 12
    unfillable = unfillable_entries(daily, cal, blocked)
    assert unfillable[first_b] and unfillable.sum() == 1  # the last day is not counted


def test_no_label_when_the_next_bar_opens_at_limit_up() -> None:
    daily, cal = _bars({"A": [(10, 10), (11, 11), (11, 12), (12, 12), (12, 12), (12, 12)]})
    blocked = np.array([False, True, False, False, False, False])  # T+1 of row 0
    y = make_labels(daily, cal, 1, 2, 0.04, entry="next_open", open_limit_up=blocked)
    assert np.isnan(y.iloc[0])  # close entry: label 1 (12 >= 10.4)
    assert y.iloc[1] == 1  # row 1 buys at row 2's open, 11, and closes at 12 (+9%)
    assert list(unfillable_entries(daily, cal, blocked)) == [True] + [False] * 5
    assert np.isnan(entry_prices(daily, cal, "next_open", blocked)[0])


def test_a_next_open_entry_needs_the_limit_flags() -> None:
    daily, cal = _bars({"A": [(10, 10)] * 4})
    with pytest.raises(ValueError, match="open_limit_up"):
        make_labels(daily, cal, 1, 2, 0.04, entry="next_open")


def _real(shared_data: Path, codes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Index]:
    raw = pd.read_parquet(shared_data / "daily.parquet", filters=[("ts_code", "in", codes)])
    basic = pd.read_csv(shared_data / "stock_basic.csv", dtype=str)
    dates = pd.read_parquet(shared_data / "daily.parquet", columns=["trade_date"])
    calendar = trading_calendar(pd.DataFrame({"trade_date": pd.to_datetime(dates["trade_date"])}))
    return normalize_daily(raw, "daily.parquet"), basic[basic["ts_code"].isin(codes)], calendar


def _at(daily: pd.DataFrame, code: str, day: str) -> int:
    pos = np.flatnonzero((daily["ts_code"] == code) & (daily["trade_date"] == pd.Timestamp(day)))
    assert len(pos) == 1
    return int(pos[0])


def test_ipo_rows_before_a_limit_up_open_have_no_next_open_label(shared_data: Path) -> None:
    daily, basic, cal = _real(shared_data, ["603087.SH"])
    blocked = limit_flags(daily, basic)["open_limit_up"].to_numpy()
    y = make_labels(daily, cal, 3, 5, 0.04, entry="next_open", open_limit_up=blocked)
    y_close = make_labels(daily, cal, 3, 5, 0.04)
    listing = _at(daily, "603087.SH", "20200629")  # T+1 (20200630) opens at 70.7734, limit-up
    assert y_close.iloc[listing] == 1 and np.isnan(y.iloc[listing])
    run = slice(listing, _at(daily, "603087.SH", "20200714") + 1)  # every T+1 one-price
    assert y.iloc[run].isna().all()
    assert unfillable_entries(daily, cal, blocked)[run].all()


def test_entry_based_forward_returns_by_hand_on_real_rows(shared_data: Path) -> None:
    daily, basic, cal = _real(shared_data, ["600759.SH", "000017.SZ"])
    blocked = limit_flags(daily, basic)["open_limit_up"].to_numpy()
    fwd_open = forward_returns(daily, cal, 5, entry="next_open", open_limit_up=blocked)
    fwd_close = forward_returns(daily, cal, 5)
    t = _at(daily, "600759.SH", "20220627")  # close 2.39; T+1 20220628 opens 2.41
    exit_close = 2.54  # 20220704, T+5
    assert fwd_open[t] == pytest.approx(exit_close / 2.41 - 1, abs=1e-6)
    assert fwd_close[t] == pytest.approx(exit_close / 2.39 - 1, abs=1e-6)
    t = _at(daily, "600759.SH", "20220701")  # T+1 20220704 opens 2.43; T+5 20220708 closes 2.37
    assert fwd_open[t] == pytest.approx(2.37 / 2.43 - 1, abs=1e-6)
    # 000017.SZ has no bar on the market day after 20210618: nothing to buy at
    t = _at(daily, "000017.SZ", "20210618")
    assert np.isnan(fwd_open[t]) and np.isfinite(fwd_close[t])
