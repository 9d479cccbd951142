"""Labels: the max close over T+min_days..T+max_days against close[T]; no partial horizons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.modelling.label_designs import benchmark_closes, make_label
from ashare_autotune.modelling.labels import forward_returns, make_labels, trading_calendar


def _bars(closes: dict[str, list[float | None]]) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Bars for several stocks on a shared calendar; None means no row (suspended)."""
    dates = pd.bdate_range("2024-01-01", periods=len(next(iter(closes.values()))))
    rows = [
        (code, d, c)
        for code, series in closes.items()
        for d, c in zip(dates, series, strict=True)
        if c is not None
    ]
    daily = pd.DataFrame(rows, columns=["ts_code", "trade_date", "close"])
    daily["ts_code"] = daily["ts_code"].astype("category")
    daily["close"] = daily["close"].astype(np.float32)
    return daily, pd.DatetimeIndex(dates)


def test_positive_only_when_a_close_inside_the_horizon_reaches_the_target() -> None:
    #            T0   +1    +2    +3    +4    +5    +6
    closes = [100, 110, 110, 100, 103, 104, 104, 104, 104, 104]
    daily, cal = _bars({"A": closes})
    y = make_labels(daily, cal, min_days=3, max_days=5, min_return=0.04)
    # T=0: closes at +3..+5 are 100, 103, 104 -> 104 >= 104 -> 1 (the +1 spike is ignored)
    assert y.iloc[0] == 1
    # T=1 (110): +3..+5 are 103, 104, 104 -> 0
    assert y.iloc[1] == 0
    # the last 5 days have no full horizon: dropped (NaN), never labelled 0
    assert y.iloc[-5:].isna().all() and y.iloc[:-5].notna().all()


def test_a_gain_before_min_days_or_after_max_days_does_not_count() -> None:
    closes = [100, 100, 200, 100, 100, 100, 100, 200, 100, 100, 100, 100]
    daily, cal = _bars({"A": closes})
    y = make_labels(daily, cal, min_days=3, max_days=5, min_return=0.04)
    assert y.iloc[0] == 0  # +2 and +7 are outside 3..5
    assert y.iloc[2] == 0  # 200 at T+5 is no gain over a close of 200
    assert y.iloc[3] == 1  # day 7 is T+4 of day 3
    assert y.iloc[4] == 1  # ... and T+3 of day 4


def test_horizon_counts_market_trading_days_across_a_suspension() -> None:
    # B is suspended on days 3-4; its T+3..T+5 for T=0 hold only day 5.
    daily, cal = _bars(
        {"A": [10.0] * 12, "B": [100, 100, 100, None, None, 103, 110, 100, 100, 100, 100, 100]}
    )
    y = make_labels(daily, cal, 3, 5, 0.04)
    b = y[daily["ts_code"] == "B"].to_numpy()
    assert b[0] == 0  # 103 at T+5 only; the 110 is at T+6
    assert b[1] == 1  # T=1: T+5 is day 6 (110)


def test_a_stock_that_stops_trading_is_labelled_from_its_closes_inside_the_horizon() -> None:
    # B trades on days 0..5 only; nothing after T+5 decides whether a row of B is labelled
    daily, cal = _bars({"A": [10.0] * 12, "B": [100.0] * 6 + [None] * 6})
    y = make_labels(daily, cal, 3, 5, 0.04)
    b = y[daily["ts_code"] == "B"]
    assert list(b.iloc[:3]) == [0, 0, 0]  # day 2: its T+3 close (day 5) is in the window
    assert b.iloc[3:].isna().all()  # days 3..5: no close of B in T+3..T+5


def test_a_stock_never_looks_at_the_next_stocks_rows() -> None:
    # A trades on days 0 and 7 only; B lists on day 3 and comes right after A's rows.
    daily, cal = _bars(
        {"A": [100.0] + [None] * 6 + [100.0] + [None] * 4, "B": [None] * 3 + [200.0] * 9}
    )
    y = make_labels(daily, cal, 3, 5, 0.04)
    assert np.isnan(y.iloc[0])  # A has no close in T+3..T+5 (B's 200 on day 3 is not A's)
    fwd = forward_returns(daily, cal, days=5)
    assert np.isnan(fwd[0]) and np.isnan(fwd[1])  # nothing of A ahead within 5 days


@pytest.mark.parametrize(("min_days", "max_days"), [(1, 1), (3, 5), (2, 10)])
def test_matches_a_brute_force_loop(min_days: int, max_days: int) -> None:
    rng = np.random.default_rng(min_days * 10 + max_days)
    series = {c: list(100 * np.exp(np.cumsum(rng.normal(0, 0.03, 60)))) for c in "ABC"}
    daily, cal = _bars(series)
    y = make_labels(daily, cal, min_days, max_days, 0.04).to_numpy()
    expected = []
    for closes in series.values():
        for t in range(len(closes)):
            if t + max_days >= len(closes):
                expected.append(np.nan)
            else:
                best = max(closes[t + min_days : t + max_days + 1])
                expected.append(float(np.float32(best) >= np.float32(closes[t]) * 1.04))
    np.testing.assert_array_equal(y, np.array(expected, dtype=np.float32))


def test_calendar_is_the_union_of_index_and_stock_days() -> None:
    daily, cal = _bars({"A": [1.0, 2.0, 3.0]})
    index = pd.DataFrame({"trade_date": [pd.Timestamp("2023-12-29")]})
    assert trading_calendar(daily, index)[0] == pd.Timestamp("2023-12-29")
    assert len(trading_calendar(daily, index)) == 4


@pytest.mark.parametrize("kind", ["touch", "barrier", "excess"])
def test_whether_a_row_is_labelled_never_depends_on_bars_after_the_horizon(kind: str) -> None:
    # B has a close on T+3 only (suspended on T+4, T+5); it trades again later, or never
    later = [100.0] * 4 + [None] * 2 + [105.0] * 6
    gone = [100.0] * 4 + [None] * 8
    labels = []
    for b in (later, gone):
        daily, cal = _bars({"A": [10.0] * 12, "B": b})
        index = benchmark_closes(pd.DataFrame({"trade_date": cal, "close": 1.0}), cal)
        y = make_label(kind, daily, cal, (3, 5), 0.04, 0.03, index)
        labels.append(y[(daily["ts_code"] == "B").to_numpy()].iloc[0])
    assert labels[0] == labels[1] == 0  # from its T+3 close (100) alone, in both
