"""Tushare's `daily_basic` (turnover, valuation) and `namechange` (point-in-time names).

`daily_basic` is cached like `daily`: one file per trading day (daily_basic/YYYY/YYYYMMDD.parquet)
written atomically, so an update fetches only the days missing and a download resumes. Its
columns join the bars as optional float32 columns. `namechange` is one whole-market table,
refreshed when the cache moves to a later day; `st_flags` tells, for each bar, whether the name
in force that day carried ST (no look-ahead: a later name never marks an earlier day).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
from tqdm.auto import tqdm

from ashare_autotune.data.cache_files import read_meta, write_table_atomic
from ashare_autotune.data.schema import DAILY_BASIC_NUMERIC

if TYPE_CHECKING:
    from ashare_autotune.data.cache import TushareCache
    from ashare_autotune.data.tushare_client import TushareClient

log = logging.getLogger(__name__)

DAILY_BASIC_FIELDS = ",".join(("ts_code", "trade_date", *DAILY_BASIC_NUMERIC))
NAMECHANGE_FIELDS = "ts_code,name,start_date,end_date,ann_date,change_reason"


def update_daily_basic(
    client: TushareClient, cache: TushareCache, days: list[str], progress: bool
) -> list[str]:
    """Fetch daily_basic for the trading days not cached yet, one atomic file per day.

    Returns:
        The days fetched (a day Tushare has not published is left for the next update).
    """
    have = {p.stem for p in (cache.root / "daily_basic").glob("*/[0-9]*.parquet")}
    missing = sorted(set(days) - have)
    fetched = []
    for day in tqdm(missing, desc="daily_basic days", disable=not progress or not missing):
        frame = client.fetch("daily_basic", trade_date=day, fields=DAILY_BASIC_FIELDS)
        if frame.empty:
            continue
        frame = frame.loc[:, [c for c in DAILY_BASIC_FIELDS.split(",") if c in frame.columns]]
        frame = frame.astype({"ts_code": str, "trade_date": str})
        for col in DAILY_BASIC_NUMERIC:
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
        write_table_atomic(frame.drop_duplicates(["ts_code", "trade_date"]), _path(cache, day))
        fetched.append(day)
    return fetched


def _path(cache: TushareCache, day: str) -> Path:
    """Where one trading day of daily_basic lives."""
    return cache.root / "daily_basic" / day[:4] / f"{day}.parquet"


def read_daily_basic(cache: TushareCache, days: list[str]) -> pd.DataFrame:
    """The cached daily_basic rows of the given days (trade_date as YYYYMMDD text)."""
    paths = [str(_path(cache, d)) for d in days if _path(cache, d).exists()]
    if not paths:
        return pd.DataFrame(columns=["ts_code", "trade_date"])
    return pads.dataset(paths, format="parquet").to_table().to_pandas()


def join_daily_basic(raw: pd.DataFrame, basic: pd.DataFrame) -> pd.DataFrame:
    """The bars with daily_basic's columns beside them (missing where Tushare has no row).

    Args:
        raw: bars as read from the cache (trade_date as timestamps, ts_code categorical).
        basic: `read_daily_basic` rows.
    """
    if basic.empty:
        log.warning("daily_basic: no cached rows for these days; the columns stay missing")
        return raw
    basic = basic.assign(trade_date=pd.to_datetime(basic["trade_date"], format="%Y%m%d"))
    keys = pd.MultiIndex.from_arrays([raw["ts_code"].astype(str), raw["trade_date"]])
    indexed = basic.set_index(["ts_code", "trade_date"])
    indexed = indexed[~indexed.index.duplicated()]
    out = raw.copy()
    for col in DAILY_BASIC_NUMERIC:
        if col in indexed.columns:
            out[col] = indexed[col].reindex(keys).to_numpy()
    return out


def update_namechange(client: TushareClient, cache: TushareCache, as_of: str) -> None:
    """Refresh the whole-market name history when the cached one is older than `as_of`."""
    path = cache.root / "namechange.parquet"
    if read_meta(path).get("as_of", "") >= as_of:
        return
    frame = client.fetch("namechange", fields=NAMECHANGE_FIELDS)
    frame = frame.loc[:, [c for c in NAMECHANGE_FIELDS.split(",") if c in frame.columns]]
    write_table_atomic(frame.astype("string"), path, {"as_of": as_of})


def read_namechange(cache: TushareCache) -> pd.DataFrame | None:
    """The cached name history: ts_code, name, start_date, end_date (NaT while in force)."""
    path = cache.root / "namechange.parquet"
    if not path.exists():
        return None
    frame = pd.read_parquet(path)
    out = pd.DataFrame(
        {"ts_code": frame["ts_code"].astype(str), "name": frame["name"].astype(str)}
    )
    for col in ("start_date", "end_date"):
        out[col] = pd.to_datetime(frame[col], format="%Y%m%d", errors="coerce")
    out = out.dropna(subset=["start_date"]).drop_duplicates(["ts_code", "start_date"], keep="last")
    return out.sort_values(["ts_code", "start_date"], ignore_index=True)


def st_flags(daily: pd.DataFrame, namechange: pd.DataFrame) -> np.ndarray:
    """For each bar, whether the stock's name in force that day contains ST (*ST, ST, S*ST).

    Args:
        daily: bars with ts_code and trade_date.
        namechange: `read_namechange` rows.

    Returns:
        A boolean array aligned with `daily`'s rows (False where no name is known).
    """
    bars = pd.DataFrame(
        {
            "ts_code": daily["ts_code"].astype(str).to_numpy(),
            "trade_date": daily["trade_date"].to_numpy("datetime64[ns]"),
            "row": np.arange(len(daily)),
        }
    ).sort_values("trade_date", kind="stable")
    names = namechange.astype({"start_date": "datetime64[ns]", "end_date": "datetime64[ns]"})
    names = names.sort_values("start_date", kind="stable")
    hit = pd.merge_asof(
        bars,
        names,
        left_on="trade_date",
        right_on="start_date",
        by="ts_code",
        direction="backward",
    )
    in_force = hit["end_date"].isna() | (hit["end_date"] >= hit["trade_date"])
    is_st = hit["name"].fillna("").str.upper().str.contains("ST") & in_force & hit["name"].notna()
    out = np.zeros(len(daily), dtype=bool)
    out[hit["row"].to_numpy()] = is_st.to_numpy()
    return out
