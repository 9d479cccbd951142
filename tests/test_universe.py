"""The candidate universe at T: listing age, ST (point-in-time with namechange), liquidity,
boards; nothing after T changes it; bad rules are one-line errors naming the key."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import normalize_daily
from ashare_autotune.errors import ConfigError
from ashare_autotune.jobs.model_backtest import window_candidates
from ashare_autotune.modelling.universe import (
    UniverseRules,
    eligible,
    listed_days,
    mean_amount,
    st_flags,
)


def _bars(codes: list[str], days: int, start: str = "2021-03-01") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=days)
    daily = pd.DataFrame(
        [(c, d, 10.0, float(i + 1)) for c in codes for i, d in enumerate(dates)],
        columns=["ts_code", "trade_date", "close", "amount"],
    )
    daily["ts_code"] = daily["ts_code"].astype("category")
    return daily


def test_a_stock_is_a_candidate_from_its_twentieth_market_day_after_listing() -> None:
    daily = _bars(["600001.SH", "600002.SH"], 30)
    basic = pd.DataFrame(
        {"ts_code": ["600001.SH", "600002.SH"], "name": ["A", "B"], "list_date": ["20210303", ""]}
    )
    days = listed_days(daily, basic)
    a = days[daily["ts_code"] == "600001.SH"]
    assert a[2] == 1 and a[21] == 20  # 20210303 is the third market day: day 1
    b = days[daily["ts_code"] == "600002.SH"]
    assert list(b[:3]) == [1, 2, 3]  # no list_date: its own bars are counted
    ok = eligible(daily, basic, UniverseRules(exclude_st=False))
    assert not ok[:21].any() and ok[21:30].all()


def test_a_listing_before_the_data_counts_the_weekdays_in_between() -> None:
    daily = _bars(["600001.SH"], 5)  # 20210301..20210305
    basic = pd.DataFrame({"ts_code": ["600001.SH"], "name": ["A"], "list_date": ["20210215"]})
    assert list(listed_days(daily, basic)) == [11, 12, 13, 14, 15]


def test_st_is_point_in_time_with_namechange() -> None:
    daily = _bars(["600001.SH"], 10)
    basic = pd.DataFrame({"ts_code": ["600001.SH"], "name": ["*ST A"], "list_date": ["20000101"]})
    names = pd.DataFrame(
        {
            "ts_code": ["600001.SH", "600001.SH", "600001.SH"],
            "name": ["A", "ST A", "*ST A"],
            "start_date": ["20000101", "20210303", "20210308"],
            "end_date": ["20210302", "20210305", None],
        }
    )
    flags = st_flags(daily, basic, names)
    assert list(flags) == [False, False] + [True] * 8


def test_st_from_the_snapshot_name_warns_that_it_is_not_point_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daily = _bars(["600001.SH", "600002.SH"], 3)
    basic = pd.DataFrame(
        {"ts_code": ["600001.SH", "600002.SH"], "name": ["*ST A", "B"], "list_date": ["", ""]}
    )
    with caplog.at_level(logging.WARNING):
        flags = st_flags(daily, basic)
    assert list(flags) == [True] * 3 + [False] * 3
    assert "snapshot" in caplog.text and "not point-in-time" in caplog.text


def test_liquidity_is_the_mean_amount_of_the_last_twenty_bars() -> None:
    daily = _bars(["600001.SH"], 25)  # amount 1, 2, ..., 25
    mean = mean_amount(daily)
    assert np.isnan(mean[:19]).all() and mean[19] == pytest.approx(10.5)
    assert mean[24] == pytest.approx(15.5)  # 6..25
    basic = pd.DataFrame({"ts_code": ["600001.SH"], "name": ["A"], "list_date": ["20000101"]})
    ok = eligible(daily, basic, UniverseRules(exclude_st=False, min_amount=13.0))
    assert list(np.flatnonzero(ok)) == [22, 23, 24]


def test_board_exclusions() -> None:
    codes = ["600001.SH", "300001.SZ", "688001.SH", "830001.BJ"]
    daily = _bars(codes, 2)
    basic = pd.DataFrame({"ts_code": codes, "name": list("ABCD"), "list_date": ["20000101"] * 4})
    rules = UniverseRules(min_list_days=0, exclude_st=False, exclude_boards=("BJ", "STAR"))
    kept = daily.loc[eligible(daily, basic, rules), "ts_code"].unique()
    assert sorted(kept) == ["300001.SZ", "600001.SH"]


def test_no_rule_changes_when_bars_after_t_change(shared_data: Path) -> None:
    codes = ["603087.SH", "600759.SH", "300056.SZ", "688410.SH"]
    raw = pd.read_parquet(shared_data / "daily.parquet", filters=[("ts_code", "in", codes)])
    daily = normalize_daily(raw, "daily.parquet")
    basic = pd.read_csv(shared_data / "stock_basic.csv", dtype=str)
    rules = UniverseRules(min_amount=50_000.0)
    before = eligible(daily, basic, rules)
    t = pd.Timestamp("20200710")
    later = daily["trade_date"] > t
    changed = daily.copy()
    changed.loc[later, "amount"] = changed.loc[later, "amount"] * 100
    changed.loc[later, ["open", "high", "low", "close"]] *= 3
    cut = changed.loc[~later].reset_index(drop=True)  # and without any later bar at all
    cut["ts_code"] = cut["ts_code"].cat.remove_unused_categories()
    assert (before[~later.to_numpy()] == eligible(changed, basic, rules)[~later.to_numpy()]).all()
    assert (before[~later.to_numpy()] == eligible(cut, basic, rules)).all()
    assert before.any() and not before.all()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"min_list_days": -1}, "universe.min_list_days"),
        ({"min_list_days": 2.5}, "universe.min_list_days"),
        ({"min_amount": 0}, "universe.min_amount"),
        ({"exclude_boards": ("NASDAQ",)}, "universe.exclude_boards"),
        ({"exclude_st": "yes"}, "universe.exclude_st"),
    ],
)
def test_bad_rules_name_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as err:
        UniverseRules(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_a_liquidity_rule_without_amount_names_the_key_and_the_column() -> None:
    daily = _bars(["600001.SH"], 3).drop(columns="amount")
    basic = pd.DataFrame({"ts_code": ["600001.SH"], "name": ["A"], "list_date": ["20000101"]})
    with pytest.raises(ConfigError, match=r"universe\.min_amount.*'amount'") as err:
        eligible(daily, basic, UniverseRules(min_amount=1.0))
    assert "\n" not in str(err.value)


def test_excluding_st_without_names_names_the_key_and_the_column() -> None:
    daily = _bars(["600001.SH"], 3)
    basic = pd.DataFrame({"ts_code": ["600001.SH"], "list_date": ["20000101"]})
    with pytest.raises(ConfigError, match=r"universe\.exclude_st.*'name'"):
        eligible(daily, basic, UniverseRules())


def test_the_standalone_backtest_scores_only_the_models_universe() -> None:
    # 600001.SH lists on the data's third day, 600002.SH is ST, 600003.SH is neither
    codes = ["600001.SH", "600002.SH", "600003.SH"]
    daily = _bars(codes, 30)
    daily = daily.loc[~((daily["ts_code"] == "600001.SH") & (daily.index % 30 < 2))]
    daily = daily.reset_index(drop=True)
    basic = pd.DataFrame(
        {
            "ts_code": codes,
            "name": ["A", "ST B", "C"],
            "list_date": ["20210303", "20000101", "20000101"],
        }
    )
    index = pd.DataFrame({"trade_date": pd.bdate_range("2021-03-01", periods=30), "close": 1.0})
    market = Market(daily, index, basic, "hand-made")
    rules = UniverseRules(min_list_days=5, exclude_st=True)
    rows = daily.loc[window_candidates(market, rules, "20210303", "20210331")]
    a = rows.loc[rows["ts_code"] == "600001.SH", "trade_date"]
    # listed 20210303 (its day 1): day 5 is 20210309, never its listing day
    assert a.min() == pd.Timestamp("2021-03-09") and len(a) == 17  # 0309..0331
    assert not (rows["ts_code"] == "600002.SH").any()  # ST: never scored, never traded
    c = rows.loc[rows["ts_code"] == "600003.SH", "trade_date"]
    assert c.min() == pd.Timestamp("2021-03-03") and len(c) == 21  # the whole window
