"""The local Tushare parquet cache: one file per trading day (written to a temporary name, then
renamed, so a half-written file is never read), the calendar, the index and stock_basic."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ashare_autotune.data.cache_files import write_table_atomic
from ashare_autotune.data.tushare_client import DAILY_FIELDS

log = logging.getLogger(__name__)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write one Tushare cache file atomically (`cache_files.write_table_atomic`)."""
    write_table_atomic(frame, path, what="Tushare cache file")


def tidy_bars(frame: pd.DataFrame, numeric: tuple[str, ...]) -> pd.DataFrame:
    """One schema for every cached file: codes and dates as text, numbers as float64."""
    frame = frame.copy()
    for col in ("ts_code", "trade_date"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str)
    for col in numeric:
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame


class TushareCache:
    """The on-disk layout under `data.cache_dir`.

    trade_cal.parquet              the SSE calendar (cal_date, is_open)
    daily/YYYY/YYYYMMDD.parquet    one trading day of `daily` bars + adj_factor, whole market
    index_daily/<code>/A_B.parquet index bars fetched for trading days A..B
    stock_basic.parquet            listed, delisted and paused stocks
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def day_path(self, day: str) -> Path:
        """Where one trading day of bars lives."""
        return self.root / "daily" / day[:4] / f"{day}.parquet"

    def cached_days(self) -> set[str]:
        """The trading days whose bars are complete on disk."""
        return {p.stem for p in (self.root / "daily").glob("*/[0-9]*.parquet")}

    def write_day(self, day: str, bars: pd.DataFrame) -> None:
        """Store one day of bars (with adj_factor)."""
        write_parquet_atomic(bars, self.day_path(day))

    def read_days(self, days: list[str], ts_codes: list[str] | None = None) -> pd.DataFrame:
        """The bars of the given days (optionally of some codes only) as one frame."""
        paths = [str(self.day_path(d)) for d in days]
        if not paths:
            return pd.DataFrame(columns=["ts_code", "trade_date", *DAILY_FIELDS, "adj_factor"])
        dataset = pads.dataset(paths, format="parquet")
        expr = pc.field("ts_code").isin(list(ts_codes)) if ts_codes else None
        table = dataset.to_table(filter=expr)
        # Codes as a dictionary (a pandas categorical) and dates as timestamps: 10M text values
        # would cost seconds and gigabytes in every later step.
        codes = table.schema.get_field_index("ts_code")
        table = table.set_column(codes, "ts_code", pc.dictionary_encode(table["ts_code"]))
        dates = table.schema.get_field_index("trade_date")
        stamps = pc.strptime(table["trade_date"], format="%Y%m%d", unit="s")
        return table.set_column(dates, "trade_date", stamps).to_pandas()

    def read_calendar(self) -> pd.DataFrame | None:
        """The cached calendar, or None."""
        path = self.root / "trade_cal.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def write_calendar(self, cal: pd.DataFrame) -> None:
        """Replace the (small) calendar file."""
        write_parquet_atomic(cal, self.root / "trade_cal.parquet")

    def index_dir(self, code: str) -> Path:
        """Directory of one index's chunks."""
        return self.root / "index_daily" / code

    def read_index(self, code: str) -> pd.DataFrame:
        """All cached bars of one index, one row per trade_date."""
        paths = sorted(str(p) for p in self.index_dir(code).glob("[0-9]*.parquet"))
        if not paths:
            return pd.DataFrame(columns=["ts_code", "trade_date", "close"])
        frame = pads.dataset(paths, format="parquet").to_table().to_pandas()
        frame = frame.drop_duplicates("trade_date", keep="last", ignore_index=True)
        # Each chunk is newest first (as Tushare answers): chunks one after another would
        # read as dates going back, so sort the whole.
        return frame.sort_values("trade_date", ignore_index=True)

    def write_index(self, code: str, first: str, last: str, bars: pd.DataFrame) -> None:
        """Append one chunk of index bars."""
        write_parquet_atomic(bars, self.index_dir(code) / f"{first}_{last}.parquet")

    def read_basic(self) -> pd.DataFrame | None:
        """The cached stock_basic, or None."""
        path = self.root / "stock_basic.parquet"
        return pd.read_parquet(path) if path.exists() else None

    def write_basic(self, basic: pd.DataFrame) -> None:
        """Replace stock_basic (refreshed only when new codes appear)."""
        write_parquet_atomic(basic, self.root / "stock_basic.parquet")
