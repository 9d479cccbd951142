"""Property-based: malformed bars (missing columns, text in numbers, duplicates, unsorted or bad
dates, empty) through the shared validation give valid bars, a logged repair or one-line
`DataError`, never another exception and never a partial cache file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ashare_autotune.data.client import RetryingClient
from ashare_autotune.data.per_stock import PerStockCache, tidy_bars, update_stock
from ashare_autotune.data.schema import DAILY_REQUIRED, normalize_daily
from ashare_autotune.errors import DataError

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
