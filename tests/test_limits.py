"""Price limits by board and date, checked on real bars of ../shared/data and on hand-made
prices at the tick (limits act on raw prices rounded to 0.01)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.data.boards import board_of
from ashare_autotune.data.schema import normalize_daily
from ashare_autotune.evaluation.backtest_window import backtest_bars
from ashare_autotune.modelling.limits import FLAG_COLUMNS, limit_flags, limit_ratios, st_days


def real_bars(shared_data: Path, codes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily bars (only the given stocks, read with a parquet filter) and their stock_basic."""
    raw = pd.read_parquet(shared_data / "daily.parquet", filters=[("ts_code", "in", codes)])
    basic = pd.read_csv(shared_data / "stock_basic.csv", dtype=str)
    return normalize_daily(raw, "daily.parquet"), basic[basic["ts_code"].isin(codes)]


def flags_on(daily: pd.DataFrame, flags: pd.DataFrame, code: str, day: str) -> set[str]:
    """The names of the flags set on one stock-day."""
    row = (daily["ts_code"] == code) & (daily["trade_date"] == pd.Timestamp(day))
    assert row.sum() == 1, f"no bar {code} {day}"
    return {c for c in FLAG_COLUMNS if flags.loc[row, c].item()}


def test_board_of_each_code() -> None:
    codes = ["600000.SH", "000001.SZ", "300750.SZ", "301001.SZ", "688981.SH", "430300.BJ"]
    assert list(board_of(pd.Series(codes).astype("category"))) == [
        "main",
        "main",
        "ChiNext",
        "ChiNext",
        "STAR",
        "BJ",
    ]
    assert list(board_of(np.array(codes))) == list(board_of(pd.Series(codes)))


def test_main_board_limits_at_ten_percent(shared_data: Path) -> None:
    codes = ["605088.SH", "603982.SH", "605158.SH"]
    daily, basic = real_bars(shared_data, codes)
    flags = limit_flags(daily, basic)
    # opened at 18.65 = 16.95 * 1.1 (the day's high), closed lower at 17.77
    assert flags_on(daily, flags, "605088.SH", "20221020") == {"open_limit_up"}
    # one price all day at 39.6043 = 44.0026 * 0.9
    assert flags_on(daily, flags, "603982.SH", "20220117") == {
        "close_limit_down",
        "open_limit_down",
        "one_price_down",
    }
    # fell from 7.08 to the 6.61 limit (7.34 * 0.9 = 6.606 -> 6.61)
    assert flags_on(daily, flags, "605158.SH", "20221028") == {"close_limit_down"}
    ratios = limit_ratios(daily, basic)
    assert ratios["limit_up"].dtype == np.float32
    post_ipo = daily["trade_date"] > pd.Timestamp("20200901")
    assert np.allclose(ratios.loc[post_ipo, "limit_up"], 1.1)
    assert np.allclose(ratios.loc[post_ipo, "limit_down"], 0.9)


def test_one_price_limit_up_run_after_a_main_board_ipo(shared_data: Path) -> None:
    daily, basic = real_bars(shared_data, ["603087.SH"])
    flags, ratios = limit_flags(daily, basic), limit_ratios(daily, basic)
    first = daily["trade_date"] == pd.Timestamp("20200629")  # listing day, +44%: no limit
    assert ratios.loc[first].isna().all(axis=None)
    assert not flags.loc[first].any(axis=None)
    run = (daily["trade_date"] >= pd.Timestamp("20200630")) & (
        daily["trade_date"] <= pd.Timestamp("20200715")
    )
    assert run.sum() == 12
    assert flags.loc[run, ["close_limit_up", "open_limit_up", "one_price_up"]].all(axis=None)
    assert not flags.loc[run, ["close_limit_down", "open_limit_down"]].any(axis=None)


def test_chinext_limit_is_ten_percent_before_2020_08_24_and_twenty_from_then(
    shared_data: Path,
) -> None:
    daily, basic = real_bars(shared_data, ["300056.SZ", "300084.SZ"])
    flags, ratios = limit_flags(daily, basic), limit_ratios(daily, basic)
    assert flags_on(daily, flags, "300056.SZ", "20190321") == {"close_limit_up"}  # 7.06/6.42
    assert flags_on(daily, flags, "300084.SZ", "20200707") == {  # 4.70 = 4.27 * 1.1
        "close_limit_up",
        "open_limit_up",
        "one_price_up",
    }
    assert flags_on(daily, flags, "300056.SZ", "20200908") == {"close_limit_up"}  # 9.61/8.01
    before = daily["trade_date"] < pd.Timestamp("20200824")
    assert np.allclose(ratios.loc[before, "limit_up"], 1.1)
    assert np.allclose(ratios.loc[~before, "limit_up"], 1.2)
    assert np.allclose(ratios.loc[~before, "limit_down"], 0.8)
    # after the reform a +10% close at the high is an ordinary day
    ten = ~before & ((daily["close"] / daily["pre_close"] - 1.1).abs() < 0.001)
    assert not flags.loc[ten & (daily["close"] == daily["high"]), "close_limit_up"].any()


def test_star_has_no_limit_on_its_first_five_days_then_twenty_percent(
    shared_data: Path,
) -> None:
    daily, basic = real_bars(shared_data, ["688410.SH"])
    flags, ratios = limit_flags(daily, basic), limit_ratios(daily, basic)
    first_five = daily["trade_date"] <= pd.Timestamp("20221230")  # listed 20221226
    assert first_five.sum() == 5 and ratios.loc[first_five].isna().all(axis=None)
    assert np.allclose(ratios.loc[~first_five, "limit_up"], 1.2)
    assert flags_on(daily, flags, "688410.SH", "20230103") == {"close_limit_up"}  # 30.32/25.27


def test_beijing_limit_is_thirty_percent_and_none_on_the_listing_day(
    shared_data: Path,
) -> None:
    daily, basic = real_bars(shared_data, ["832278.BJ", "430300.BJ"])
    flags, ratios = limit_flags(daily, basic), limit_ratios(daily, basic)
    assert flags_on(daily, flags, "832278.BJ", "20211230") == {"close_limit_up"}  # 12.44/9.57
    listing = (daily["ts_code"] == "430300.BJ") & (daily["trade_date"] == pd.Timestamp("20221207"))
    assert ratios.loc[listing].isna().all(axis=None)  # +33.5% on its listing day
    assert np.allclose(ratios.loc[~listing, "limit_up"], 1.3)


def test_st_limit_is_five_percent_on_a_two_yuan_stock(shared_data: Path) -> None:
    daily, basic = real_bars(shared_data, ["600759.SH"])
    st = np.ones(len(daily), dtype=bool)
    with_st, without = limit_flags(daily, basic, is_st=st), limit_flags(daily, basic)
    # 2.54 = round(2.42 * 1.05, 2) closes at the high: the limit for ST, not for 10%
    assert flags_on(daily, with_st, "600759.SH", "20220704") == {"close_limit_up"}
    assert flags_on(daily, without, "600759.SH", "20220704") == set()
    # one price at 2.47 = round(2.35 * 1.05, 2), and at 2.25 = round(2.37 * 0.95, 2)
    assert flags_on(daily, with_st, "600759.SH", "20220712") == {
        "close_limit_up",
        "open_limit_up",
        "one_price_up",
    }
    assert "one_price_down" in flags_on(daily, with_st, "600759.SH", "20230131")
    assert np.allclose(limit_ratios(daily, basic, is_st=st)["limit_up"], 1.05)


def _day(pre: float, close: float, high: float | None = None) -> pd.DataFrame:
    high = close if high is None else high
    return pd.DataFrame(
        {
            "ts_code": pd.Categorical(["600000.SH"]),
            "trade_date": pd.to_datetime(["2022-03-01"]),
            "open": np.float32([pre]),
            "high": np.float32([high]),
            "low": np.float32([min(pre, close)]),
            "close": np.float32([close]),
            "pre_close": np.float32([pre]),
        }
    )


BASIC = pd.DataFrame({"ts_code": ["600000.SH"], "list_date": ["19991110"]})


@pytest.mark.parametrize(
    ("pre", "close", "at_limit"),
    [
        (1.00, 1.10, True),
        (1.00, 1.09, False),  # one tick below on a 1 CNY stock is 0.9% lower
        (1.05, 1.16, True),  # 1.155 rounds half up to 1.16
        (1.05, 1.15, False),  # the tick below sits exactly half a tick from 1.155
        (2.39, 2.63, True),  # 2.629 -> 2.63
        (2.39, 2.62, False),
        (1800.00, 1980.00, True),
        (1800.00, 1979.99, False),
    ],
)
def test_a_close_is_at_the_limit_only_on_the_rounded_limit_price(
    pre: float, close: float, at_limit: bool
) -> None:
    assert limit_flags(_day(pre, close), BASIC)["close_limit_up"].item() is at_limit


def test_a_close_at_the_limit_price_below_the_day_high_is_not_a_limit_close() -> None:
    assert not limit_flags(_day(1.00, 1.10, high=1.11), BASIC)["close_limit_up"].item()


def test_without_pre_close_the_previous_close_is_the_reference_and_the_index_is_kept() -> None:
    daily = pd.DataFrame(
        {
            "ts_code": pd.Categorical(["600000.SH"] * 2),
            "trade_date": pd.to_datetime(["2022-03-01", "2022-03-02"]),
            "open": np.float32([2.39, 2.50]),
            "high": np.float32([2.40, 2.63]),
            "low": np.float32([2.30, 2.50]),
            "close": np.float32([2.39, 2.63]),
        },
        index=[7, 3],
    )
    flags = limit_flags(daily, BASIC)
    assert list(flags.index) == [7, 3]
    assert list(flags["close_limit_up"]) == [False, True]  # 2.63 = round(2.39 * 1.1, 2)


def _opens(days: list[str], opens: list[float], pre: float = 10.0) -> pd.DataFrame:
    """600000.SH opening at `opens` (the day's high) from `pre` each day."""
    n = len(days)
    return pd.DataFrame(
        {
            "ts_code": pd.Categorical(["600000.SH"] * n),
            "trade_date": pd.to_datetime(days),
            "open": np.float32(opens),
            "high": np.float32(opens),
            "low": np.float32([pre] * n),
            "close": np.float32([pre] * n),
            "pre_close": np.float32([pre] * n),
        }
    )


def test_an_st_names_five_percent_open_is_limit_up() -> None:
    daily = _opens(["2022-03-01"], [10.50])  # 10.50 = 10.00 * 1.05
    st = limit_flags(daily, BASIC, is_st=np.array([True]))
    assert st["open_limit_up"].item()
    assert not limit_flags(daily, BASIC)["open_limit_up"].item()  # 10% for a non-ST name


def test_st_days_are_point_in_time_with_a_namechange_history() -> None:
    # named *ST from 2022-03-02: the +5% open of 03-01 is not at a limit, that of 03-02 is
    daily = _opens(["2022-03-01", "2022-03-02"], [10.50, 10.50])
    names = pd.DataFrame(
        {
            "ts_code": ["600000.SH", "600000.SH"],
            "name": ["Pufa", "*ST Pufa"],
            "start_date": ["19991110", "20220302"],
            "end_date": ["20220301", None],
        }
    )
    basic = BASIC.assign(name="Pufa")  # the snapshot name plays no part with a history
    is_st = st_days(daily, basic, names)
    assert list(is_st) == [False, True]
    assert list(limit_flags(daily, basic, is_st)["open_limit_up"]) == [False, True]


def test_without_a_history_st_days_come_from_the_snapshot_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daily = _opens(["2016-03-01", "2022-03-01"], [10.50, 10.50])
    is_st = st_days(daily, BASIC.assign(name="*ST Pufa"))
    assert list(is_st) == [True, True]  # every day, also years it may not have been ST
    assert "snapshot" in caplog.text
    assert not st_days(daily, BASIC.assign(name="Pufa")).any()
    assert st_days(daily, BASIC) is None  # no names at all: no ST limits


def test_main_board_st_limits_are_ten_percent_from_2026_07_06() -> None:
    daily = _opens(["2026-07-03", "2026-07-06", "2026-07-07"], [10.50, 10.50, 11.00])
    flags = limit_flags(daily, BASIC, is_st=np.ones(3, bool))
    assert list(flags["open_limit_up"]) == [True, False, True]
    ratios = limit_ratios(daily, BASIC, is_st=np.ones(3, bool))
    np.testing.assert_allclose(ratios["limit_up"], [1.05, 1.1, 1.1], rtol=1e-6)  # float32


def test_backtest_bars_give_st_names_their_limits() -> None:
    daily = _opens(["2022-03-01", "2022-03-02"], [10.50, 10.50]).assign(vol=5.0, amount=5.2)
    names = pd.DataFrame(
        {"ts_code": ["600000.SH"], "name": ["ST Pufa"], "start_date": ["20220302"]}
    )
    bars = backtest_bars(daily, BASIC, "20220301", names)
    assert list(bars["open_limit_up"]) == [False, True]
    assert list(bars["amount"]) == [5.2, 5.2]  # the volume cap's columns are kept
    snapshot = backtest_bars(daily, BASIC.assign(name="ST Pufa"), "20220301")
    assert list(snapshot["open_limit_up"]) == [True, True]
