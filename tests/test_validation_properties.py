"""Property-based: malformed bars (missing columns, text in numbers, duplicates, unsorted or bad
dates, empty) through the shared validation give valid bars, a logged repair or one-line
`DataError`, never another exception and never a partial cache file; broken bars (swapped or
inconsistent OHLC, jumps, NaNs, duplicate and out-of-order rows, odd dates, no rows) in a file
load consistent bars or fail in one line naming the file, and the train command on them exits 2
in one line, without a traceback or a registered version."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.client import RetryingClient
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.data.per_stock import PerStockCache, tidy_bars, update_stock
from ashare_autotune.data.schema import DAILY_REQUIRED, normalize_daily
from ashare_autotune.data.synthetic import make_synthetic_market
from ashare_autotune.errors import DataError, UserError
from tests.conftest import run_entry_point

NUMERIC = ("open", "high", "low", "close", "vol", "pre_close", "amount")
COLUMNS = ("ts_code", "trade_date", *NUMERIC)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(min_value=-5, max_value=50),
    st.just(float("nan")),
    st.sampled_from(["12.5", "", "N/A", "停牌", "1e3", None]),
)
dates = st.sampled_from(
    ["20230103", "20230104", "2023-01-05", "20230106", "2023/01/09", "notadate", "", None]
)


@st.composite
def bar_frames(draw) -> pd.DataFrame:
    """Small frames of Tushare-style bars with any of the usual defects."""
    n = draw(st.integers(min_value=0, max_value=8))
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=len(COLUMNS)))
    if draw(st.booleans()):
        columns = list(COLUMNS)  # often complete, so the value checks are reached
    data = {}
    for col in dict.fromkeys(columns):
        if col == "ts_code":
            data[col] = draw(
                st.lists(st.sampled_from(["000001.SZ", "600000.SH"]), min_size=n, max_size=n)
            )
        elif col == "trade_date":
            data[col] = draw(st.lists(dates, min_size=n, max_size=n))
        else:
            data[col] = draw(st.lists(numbers, min_size=n, max_size=n))
    return pd.DataFrame(data, index=range(n))


def _one_line(exc: DataError, where: str) -> None:
    text = str(exc)
    assert text and "\n" not in text
    assert text.startswith(where), text


def _is_valid(out: pd.DataFrame) -> None:
    assert not out.duplicated(["ts_code", "trade_date"]).any()
    keys = list(zip(out["ts_code"].astype(str), out["trade_date"], strict=True))
    assert keys == sorted(keys)
    for col in ("open", "high", "low", "close", "vol"):
        assert out[col].dtype == np.float32
    assert (out[["open", "high", "low", "close"]] > 0).all().all()
    # zero-volume rows were dropped (a logged repair); a missing volume stays missing
    assert ((out["vol"] > 0) | out["vol"].isna()).all()


@SETTINGS
@given(bar_frames())
def test_shared_validation_returns_valid_bars_or_one_line_error(frame: pd.DataFrame) -> None:
    try:
        out = normalize_daily(frame.copy(), "bars.csv")
    except DataError as exc:
        _one_line(exc, "bars.csv")
        return
    assert set(DAILY_REQUIRED) <= set(out.columns)
    _is_valid(out)


class _Answer:
    """A per-stock source that answers one fixed frame."""

    name = "fake"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.client = RetryingClient("fake", lambda: None)

    def stock_bars(self, ts_code: str, start: str, end: str, adjust: str) -> pd.DataFrame:
        return self.frame.copy()


@SETTINGS
@given(bar_frames())
def test_a_malformed_answer_writes_a_whole_valid_file_or_none(frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = PerStockCache(Path(tmp), "qfq")
        try:
            update_stock(_Answer(frame), cache, "000001.SZ", "20230101", "20230131")
        except DataError as exc:
            _one_line(exc, "fake 000001.SZ")
            assert not any(Path(tmp).rglob("*"))  # no file, no temporary left behind
            return
        files = [p for p in Path(tmp).rglob("*") if p.is_file()]
        assert files == [cache.bars_path("000001.SZ")]
        stored = pd.read_parquet(files[0])
        if len(stored):
            _is_valid(normalize_daily(stored, "stored"))
        assert cache.covered(files[0]) == ("20230101", "20230131")


@SETTINGS
@given(bar_frames())
def test_exact_duplicates_and_unsorted_days_are_repaired_not_rejected(frame: pd.DataFrame) -> None:
    try:
        clean = tidy_bars(frame, "clean")
    except DataError:
        return
    if clean.empty:
        return
    shuffled = pd.concat([clean, clean.iloc[:2]]).iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(tidy_bars(shuffled, "shuffled"), clean)


# --- broken bars through the files loader and the train command -----------------------------

ODD_DATES = ["20180230", "2018-02-30", "20181301", "notadate", "", "2018/01/05", "18-01-05"]
ALWAYS_FATAL = ("low_above_high", "split", "impossible_date", "duplicate", "header_only")


def _valid_files() -> tuple[pd.DataFrame, pd.DataFrame]:
    """4 synthetic stocks over 30 days as a files source writes them (YYYYMMDD text dates)."""
    market = make_synthetic_market(n_stocks=4, n_days=30, seed=11)
    daily = market.daily.assign(
        ts_code=market.daily["ts_code"].astype(str),
        trade_date=market.daily["trade_date"].dt.strftime("%Y%m%d"),
    )
    index = market.index.assign(trade_date=market.index["trade_date"].dt.strftime("%Y%m%d"))
    return daily.reset_index(drop=True), index


VALID_DAILY, VALID_INDEX = _valid_files()


def _break(daily: pd.DataFrame, kind: str, row: int, value: object) -> pd.DataFrame:
    """`daily` with one defect of `kind` at `row` (`value`: the factor, date or column)."""
    prices = [c for c in ("open", "high", "low", "close", "pre_close") if c in daily.columns]
    out = daily.astype(dict.fromkeys(prices, "float64"))  # a defect is any float, not a float32
    if kind == "low_above_high":
        out.loc[row, ["low", "high"]] = out.loc[row, ["high", "low"]].to_numpy() + [1.0, 0.0]
    elif kind == "swap_ohlc":  # open and close exchanged: still a valid bar
        out.loc[row, ["open", "close"]] = out.loc[row, ["close", "open"]].to_numpy()
    elif kind == "close_times":
        out.loc[row, "close"] = out.loc[row, "high"] * float(value)  # type: ignore[arg-type]
    elif kind in ("split", "jump"):  # this stock's prices from `row` on, times a factor
        factor = 0.1 if kind == "split" else float(value)  # type: ignore[arg-type]
        after = (out["ts_code"] == out.loc[row, "ts_code"]) & (out.index >= row)
        for col in ("open", "high", "low", "close", "pre_close"):
            out.loc[after, col] = out.loc[after, col] * factor
    elif kind == "nan":
        out[str(value)] = out[str(value)].astype(float)
        out.loc[row, str(value)] = np.nan
    elif kind == "duplicate":
        out = pd.concat([out, out.iloc[[row]]], ignore_index=True)
    elif kind == "out_of_order":
        order = list(range(len(out)))
        order[row], order[row + 1] = order[row + 1], order[row]
        out = out.iloc[order].reset_index(drop=True)
    elif kind == "impossible_date":
        out["trade_date"] = out["trade_date"].astype(object)
        out.loc[row, "trade_date"] = "20180230"
    elif kind == "odd_date":
        out["trade_date"] = out["trade_date"].astype(object)
        out.loc[row, "trade_date"] = value
    elif kind == "header_only":
        out = out.iloc[:0]
    return out


@st.composite
def broken_bars(draw, kinds: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The valid files' bars with one to three defects."""
    every = (
        "low_above_high",
        "swap_ohlc",
        "close_times",
        "split",
        "jump",
        "nan",
        "duplicate",
        "out_of_order",
        "impossible_date",
        "odd_date",
        "header_only",
    )
    daily = VALID_DAILY
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(kinds or every))
        row = draw(st.integers(min_value=0, max_value=max(len(daily) - 2, 0)))
        value = {
            "close_times": st.sampled_from([0.5, 1.0, 1.5, 3.0]),
            "jump": st.sampled_from([0.5, 0.95, 1.05, 2.0]),
            "nan": st.sampled_from(["open", "high", "low", "close", "vol", "amount"]),
            "odd_date": st.sampled_from(ODD_DATES),
        }.get(kind, st.none())
        daily = _break(daily, kind, row, draw(value))
        if daily.empty:
            break
    return daily


def _load_files(directory: Path, daily: pd.DataFrame) -> Market:
    daily.to_csv(directory / "bars.csv", index=False)
    VALID_INDEX.to_csv(directory / "index.csv", index=False)
    return load_market(
        DataConfig(
            source="files", daily=str(directory / "bars.csv"), index=str(directory / "index.csv")
        )
    )


def _consistent(market: Market) -> None:
    """What the loader promises of bars it accepts."""
    daily = market.daily
    assert not daily.duplicated(["ts_code", "trade_date"]).any()
    keys = list(zip(daily["ts_code"].astype(str), daily["trade_date"], strict=True))
    assert keys == sorted(keys)
    prices = daily[["open", "high", "low", "close"]]
    assert prices.notna().all().all() and (prices > 0).all().all()
    assert (daily["low"] <= daily[["open", "close"]].min(axis=1)).all()
    assert (daily["high"] >= daily[["open", "close"]].max(axis=1)).all()


# derandomize: the same examples on every run (CI must not turn red on a new draw; a failure
# found locally is fixed, not re-rolled)
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(broken_bars())
def test_broken_bars_load_valid_or_fail_in_one_line_naming_the_file(daily: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            market = _load_files(Path(tmp), daily)
        except UserError as exc:  # DataError or ConfigError; any other type fails the test
            text = str(exc)
            assert text and "\n" not in text
            assert str(Path(tmp) / "bars.csv") in text or str(Path(tmp) / "index.csv") in text
            return
    _consistent(market)


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(daily=broken_bars(kinds=ALWAYS_FATAL))
def test_the_train_command_on_broken_bars_exits_2_in_one_line_and_registers_nothing(
    daily: pd.DataFrame, tracking_uri: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daily.to_csv(Path(tmp) / "bars.csv", index=False)
        VALID_INDEX.to_csv(Path(tmp) / "index.csv", index=False)
        done = run_entry_point(
            "train",
            Path(tmp),
            tracking_uri,
            "debug=default",
            "data=files",
            f"data.daily={Path(tmp) / 'bars.csv'}",
            f"data.index={Path(tmp) / 'index.csv'}",
        )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert MlflowClient(tracking_uri).search_model_versions() == []
