"""Label designs on hand-made price paths: touch, barrier (take-profit before stop-loss) and
excess over a benchmark, each from the tradable entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig, DataConfig, LabelConfig, SplitConfig
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.dataset import build_dataset
from ashare_autotune.modelling.label_designs import (
    barrier_labels,
    benchmark_closes,
    benchmark_levels,
    excess_labels,
    make_label,
    select_benchmark,
)


def _bars(closes: dict[str, list[float]], opens: dict[str, list[float]] | None = None):
    """One bar per stock per business day (open = close unless given); the calendar."""
    n = len(next(iter(closes.values())))
    dates = pd.bdate_range("2024-01-01", periods=n)
    rows = [
        (code, dates[i], (opens or {}).get(code, path)[i], path[i])
        for code, path in closes.items()
        for i in range(n)
    ]
    daily = pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "close"])
    daily["ts_code"] = daily["ts_code"].astype("category")
    return daily.astype({"open": np.float32, "close": np.float32}), pd.DatetimeIndex(dates)


def _index(calendar: pd.DatetimeIndex, closes: list[float]) -> pd.Series:
    bars = pd.DataFrame({"trade_date": calendar, "close": closes})
    return benchmark_closes(bars, calendar)


#  T0, T+1 .. T+3, then flat days so the horizon of T0 is observed
UP_THEN_DOWN = [10.0, 10.2, 10.5, 9.6, 10.0, 10.0]  # +5% on T+2, then -4% on T+3
DOWN_THEN_UP = [10.0, 9.6, 10.5, 10.5, 10.0, 10.0]  # -4% on T+1, then +5% on T+2


def test_barrier_is_one_when_the_gain_comes_before_the_stop() -> None:
    daily, cal = _bars({"A": UP_THEN_DOWN, "B": DOWN_THEN_UP})
    y = barrier_labels(daily, cal, (1, 3), 0.04, 0.03)
    first_a, first_b = 0, len(UP_THEN_DOWN)
    assert y.iloc[first_a] == 1  # up first: a win although it falls later
    assert y.iloc[first_b] == 0  # stopped out on T+1 before the +5% of T+2
    touch = make_label("touch", daily, cal, (1, 3), 0.04)
    assert touch.iloc[first_a] == 1 and touch.iloc[first_b] == 1  # touch cannot tell them apart


def test_the_stop_watches_from_the_first_close_and_the_gain_only_inside_the_horizon() -> None:
    # the -4% close on T+1 is before min_days=2, yet it stops the position out
    daily, cal = _bars({"B": DOWN_THEN_UP})
    assert barrier_labels(daily, cal, (2, 3), 0.04, 0.03).iloc[0] == 0
    # a +5% close on T+1 is before min_days=2 (cannot be sold yet): only later gains count
    daily, cal = _bars({"C": [10.0, 10.5, 10.1, 10.2, 10.0, 10.0]})
    assert barrier_labels(daily, cal, (2, 3), 0.04, 0.03).iloc[0] == 0
    assert barrier_labels(daily, cal, (1, 3), 0.04, 0.03).iloc[0] == 1


def test_barrier_without_either_barrier_is_zero_and_unobserved_rows_are_nan() -> None:
    daily, cal = _bars({"A": [10.0, 10.1, 10.2, 10.1, 10.0, 10.0]})
    y = barrier_labels(daily, cal, (1, 3), 0.04, 0.03)
    assert y.iloc[0] == 0
    assert y.iloc[3:].isna().all()  # T+3 is past the data's end


def test_barrier_uses_the_next_open_entry() -> None:
    # close entry 10 -> +5% at 10.5 (win); next-open entry 10.3 -> 10.5 is +1.9% only, and 9.95
    # is -3.4% from 10.3 (stop) although it is above -3% from the close
    closes = [10.0, 10.2, 9.95, 10.5, 10.5, 10.5]
    opens = [10.0, 10.3, 10.0, 10.0, 10.0, 10.0]
    daily, cal = _bars({"A": closes}, {"A": opens})
    free = np.zeros(len(daily), dtype=bool)
    assert barrier_labels(daily, cal, (1, 3), 0.04, 0.03).iloc[0] == 1
    y = barrier_labels(daily, cal, (1, 3), 0.04, 0.03, "next_open", free)
    assert y.iloc[0] == 0
    blocked = free.copy()
    blocked[1] = True  # T+1 opens at limit-up: the entry cannot fill, no label
    assert np.isnan(barrier_labels(daily, cal, (1, 3), 0.04, 0.03, "next_open", blocked).iloc[0])


@pytest.mark.parametrize("stop", [0.0, -0.02])
def test_barrier_needs_a_positive_stop_loss(stop: float) -> None:
    daily, cal = _bars({"A": UP_THEN_DOWN})
    with pytest.raises(ConfigError, match=r"label\.stop_loss"):
        barrier_labels(daily, cal, (1, 3), 0.04, stop)


def test_excess_label_in_a_falling_market() -> None:
    # the index falls 10% over the horizon; A falls 3% (7 points better), B falls 9% (1 better)
    calendar = pd.bdate_range("2024-01-01", periods=6)
    daily, cal = _bars(
        {"A": [10.0, 9.9, 9.8, 9.7, 9.7, 9.7], "B": [10.0, 9.6, 9.3, 9.1, 9.1, 9.1]}
    )
    bench = _index(calendar, [100.0, 97.0, 94.0, 90.0, 90.0, 90.0])
    y = excess_labels(daily, cal, (1, 3), 0.04, bench)
    assert y.iloc[0] == 1 and y.iloc[6] == 0
    touch = make_label("touch", daily, cal, (1, 3), 0.04)
    assert touch.iloc[0] == 0  # no stock gains 4%: touch calls both 0


def test_excess_uses_the_same_days_and_the_entry() -> None:
    # exit is the last close inside T+1..T+3 (T+3 here); next-open entry 10.4 -> 10.8 is +3.8%
    # while the flat index gives 0: below 4%; from the close 10.0 it is +8%
    daily, cal = _bars({"A": [10.0, 10.5, 10.6, 10.8, 10.8, 10.8]}, {"A": [10.0, 10.4] + [10] * 4})
    bench = _index(cal, [100.0] * 6)
    free = np.zeros(len(daily), dtype=bool)
    assert excess_labels(daily, cal, (1, 3), 0.04, bench).iloc[0] == 1
    assert excess_labels(daily, cal, (1, 3), 0.04, bench, "next_open", free).iloc[0] == 0
    assert excess_labels(daily, cal, (1, 3), 0.04, bench).iloc[3:].isna().all()


def test_excess_needs_a_benchmark_in_the_index_data() -> None:
    bars = pd.DataFrame(
        {"ts_code": ["000001.SH", "000905.SH"], "trade_date": pd.to_datetime(["2024-01-01"] * 2)}
    )
    assert len(select_benchmark(bars, "000905.SH")) == 1
    with pytest.raises(ConfigError, match=r"label\.benchmark.*000300\.SH"):
        select_benchmark(bars, "000300.SH")
    daily, cal = _bars({"A": UP_THEN_DOWN})
    with pytest.raises(ConfigError, match=r"label\.benchmark"):
        make_label("excess", daily, cal, (1, 3), 0.04)


def test_unknown_label_kind_names_the_key() -> None:
    daily, cal = _bars({"A": UP_THEN_DOWN})
    with pytest.raises(ConfigError, match=r"label\.kind"):
        make_label("drift", daily, cal, (1, 3), 0.04)


@pytest.mark.parametrize(
    ("override", "key"),
    [("label.kind=drift", "label.kind"), ("label.stop_loss=0", "label.stop_loss")],
)
def test_bad_label_settings_are_one_line_errors_naming_the_key(
    compose_app: Callable[..., AppConfig], override: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}'") as err:
        compose_app(override)
    assert "\n" not in str(err.value)


def test_a_benchmark_missing_from_the_index_file_names_label_benchmark(
    tmp_path: Path, small_market: Market
) -> None:
    path = tmp_path / "index.csv"
    pd.DataFrame(
        {"ts_code": ["000001.SH", "000905.SH"], "trade_date": ["20240102"] * 2, "close": [1, 2]}
    ).to_csv(path, index=False)
    cfg = DataConfig(source="files", daily="unused.parquet", index=str(path))
    excess = LabelConfig(kind="excess", benchmark="000905.SH")
    assert label_benchmark(cfg, excess, small_market)["close"].tolist() == [2]
    own = LabelConfig(kind="excess", benchmark=cfg.index_code)
    assert label_benchmark(cfg, own, small_market) is small_market.index
    assert label_benchmark(cfg, LabelConfig(kind="touch"), small_market) is None  # no index
    missing = LabelConfig(kind="excess", benchmark="000300.SH")
    with pytest.raises(ConfigError, match=r"'label.benchmark'='000300.SH'.*000905\.SH") as err:
        label_benchmark(cfg, missing, small_market)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["barrier", "excess"])
def test_each_label_kind_builds_a_dataset(kind: str, small_market: Market) -> None:
    label = LabelConfig(kind=kind)
    ds = build_dataset(small_market, None, label, SplitConfig())
    touch = build_dataset(small_market, None, LabelConfig(kind="touch"), SplitConfig())
    labelled = ds.frame["label"].notna() & touch.frame["label"].notna()
    assert set(np.unique(ds.frame.loc[labelled, "label"])) == {0, 1}
    assert len(ds.frame) == len(touch.frame)  # the same candidates, another definition
    fillable = ds.frame["fillable"].to_numpy()
    np.testing.assert_array_equal(fillable, touch.frame["fillable"])  # the same entry fills
    assert not ds.frame.loc[~fillable, "label"].notna().any()
    assert not np.array_equal(ds.frame.loc[labelled, "label"], touch.frame.loc[labelled, "label"])


def test_the_index_leg_starts_where_the_stock_leg_does() -> None:
    # A: entry at T+1's open 10.0, exit at T+3's close 10.5: +5%. The index gaps up overnight:
    # close 100 on T, open 102 on T+1, close 102 on T+3.
    daily, cal = _bars({"A": [10.0, 10.2, 10.3, 10.5, 10.5, 10.5]}, {"A": [10.0] * 6})
    index = pd.DataFrame(
        {"trade_date": cal, "close": [100.0, 102, 102, 102, 102, 102], "open": 102.0}
    )
    free = np.zeros(len(daily), dtype=bool)
    levels = benchmark_levels(index, cal)
    # next_open: both legs from T+1's open: 5% - 0% >= 4%
    assert excess_labels(daily, cal, (1, 3), 0.04, levels, "next_open", free).iloc[0] == 1
    # close: both legs from T's close: 5% - 2% < 4% (what next_open used to compute too)
    assert excess_labels(daily, cal, (1, 3), 0.04, levels, "close").iloc[0] == 0
    # an index without opens, or without a bar on T+1: its leg starts at the last close (100)
    no_open = benchmark_levels(index.drop(columns="open"), cal)
    assert excess_labels(daily, cal, (1, 3), 0.04, no_open, "next_open", free).iloc[0] == 0
    gap = benchmark_levels(index.drop(index=1), cal)
    assert excess_labels(daily, cal, (1, 3), 0.04, gap, "next_open", free).iloc[0] == 0
