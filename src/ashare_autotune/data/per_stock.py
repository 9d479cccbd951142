"""The per-stock cache behind the free sources (baostock, akshare) and its update.

These services answer one stock per call, so the cache holds one parquet file per stock, each
carrying the date range it covers in its metadata; an update fetches only the days after that
range and appends them. Each file is replaced atomically, so an interrupted download resumes at
the first stock not yet covered and a half-written file is never read. Bars are validated
before they are written: a malformed answer is a one-line error and leaves no file.

Layout under `data.cache_dir`:
    index/<code>.parquet          index bars (no adjustment)
    bars_<adjust>/<code>.parquet  one stock's bars, prices as `data.adjust` asks the service
    stock_basic.parquet           the stock list (ts_code, name, industry, list_date, delist_date)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
from tqdm.auto import tqdm

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.cache_files import (
    cache_lock,
    cache_read_lock,
    read_meta,
    write_table_atomic,
)
from ashare_autotune.data.client import RetryingClient
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import (
    DAILY_NUMERIC,
    OPTIONAL_NUMERIC,
    check_index_covers,
    log_suspensions,
    normalize_basic,
    normalize_daily,
    normalize_index,
)
from ashare_autotune.errors import ConfigError, DataError

log = logging.getLogger(__name__)

BAR_COLUMNS = ("ts_code", "trade_date", *DAILY_NUMERIC)
LIST_COLUMNS = ("ts_code", "name", "industry", "list_date", "delist_date")


class PerStockSource(Protocol):
    """What a free source provides, in Tushare's columns and units (dates as YYYYMMDD text)."""

    name: str
    client: RetryingClient

    def stock_bars(self, ts_code: str, start: str, end: str, adjust: str) -> pd.DataFrame:
        """One stock's daily bars in start..end (suspended days left out)."""
        ...

    def index_bars(self, ts_code: str, start: str, end: str) -> pd.DataFrame:
        """One index's daily bars in start..end."""
        ...

    def stock_list(self, day: str) -> pd.DataFrame:
        """Every A-share stock known on `day` (delisted ones too where the service has them)."""
        ...


@dataclass
class PerStockReport:
    """What an update did: the index days now cached, the stocks fetched, calls made."""

    source: str
    days: list[str]
    codes: list[str]
    fetched: list[str] = field(default_factory=list)
    calls: int = 0


def tidy_bars(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate fetched bars with the shared schema and return them in the cached layout.

    Exact duplicate rows and rows out of date order are repaired (logged); anything else the
    shared validation rejects is a `DataError` naming `where`.

    Args:
        frame: Tushare-shaped bars of one stock (trade_date as YYYYMMDD or YYYY-MM-DD text).
        where: the call that produced them, named in errors.
    """
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in BAR_COLUMNS})
    dupes = frame.duplicated()
    if dupes.any():
        log.warning("%s: dropped %d exact duplicate row(s)", where, int(dupes.sum()))
        frame = frame.loc[~dupes]
    if "trade_date" in frame.columns:
        # as text, a missing date included (the validation below names it)
        text = frame["trade_date"].map(lambda d: "" if pd.isna(d) else str(d))
        order = np.asarray(text.str.replace("-", "", regex=False).tolist(), dtype=str)
        if len(order) and (order[1:] < order[:-1]).any():
            log.warning("%s: rows not in date order; sorted by trade_date", where)
            frame = frame.iloc[np.argsort(order, kind="stable")]
    checked = normalize_daily(frame.reset_index(drop=True), where)
    out = checked.assign(
        ts_code=checked["ts_code"].astype(str),
        trade_date=checked["trade_date"].dt.strftime("%Y%m%d"),
    )
    for col in (*DAILY_NUMERIC, *OPTIONAL_NUMERIC):
        if col in out.columns:
            out[col] = out[col].astype(np.float64)
    return out


def _dtype(col: str) -> str:
    return "object" if col in ("ts_code", "trade_date") else "float64"


def _next_day(day: str) -> str:
    return (pd.Timestamp(day) + pd.Timedelta(days=1)).strftime("%Y%m%d")


class PerStockCache:
    """The files of one free source's cache (see the module docstring)."""

    def __init__(self, root: Path, adjust: str) -> None:
        self.root = root
        self.adjust = adjust

    def bars_path(self, ts_code: str) -> Path:
        """Where one stock's bars live."""
        return self.root / f"bars_{self.adjust}" / f"{ts_code}.parquet"

    def index_path(self, code: str) -> Path:
        """Where one index's bars live."""
        return self.root / "index" / f"{code}.parquet"

    def covered(self, path: Path) -> tuple[str, str] | None:
        """The (first, last) days a file covers, or None when it is absent."""
        meta = read_meta(path)
        return (meta["first"], meta["last"]) if "first" in meta else None

    def read(self, path: Path) -> pd.DataFrame:
        """One cached file (empty when absent)."""
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=BAR_COLUMNS)

    def write(self, path: Path, bars: pd.DataFrame, first: str, last: str) -> None:
        """Replace one file atomically with the range it now covers."""
        write_table_atomic(bars, path, {"first": first, "last": last})


def _final_day(end: str, today: str, last_bar: str | None) -> str:
    """The last day a cache may call covered: a past `end` is final; today's bars may still be
    published later, so up to today only the days already answered count."""
    if end < today:
        return end
    return min(last_bar, end) if last_bar else _prev_day(today)


def _prev_day(day: str) -> str:
    return (pd.Timestamp(day) - pd.Timedelta(days=1)).strftime("%Y%m%d")


def update_index(
    source: PerStockSource, cache: PerStockCache, code: str, start: str, end: str, today: str
) -> str:
    """Bring one index's file up to `end`; returns the last day now covered."""
    path = cache.index_path(code)
    span = cache.covered(path)
    if span and span[0] <= start and span[1] >= end:
        return end  # stocks are wanted up to data.end, even when the index reaches further
    old = cache.read(path) if span and span[0] <= start else None
    lo = _next_day(span[1]) if old is not None and span else start
    where = f"{source.name} index {code} {lo}..{end}"
    new = tidy_bars(source.index_bars(code, lo, end), where)
    bars = new if old is None else pd.concat([old, new], ignore_index=True)
    last_bar = str(bars["trade_date"].max()) if len(bars) else None
    last = _final_day(end, today, last_bar)
    if span and old is not None:
        last = max(last, span[1])
    cache.write(path, bars, start if old is None else span[0], last)
    return last


def update_stock(
    source: PerStockSource, cache: PerStockCache, ts_code: str, start: str, last: str
) -> bool:
    """Bring one stock's file up to `last`; returns whether the service was asked.

    An update re-reads the last cached bar: when its close changed, the service has re-adjusted
    the stock's history (a dividend or split under qfq) and the whole range is fetched again.
    """
    path = cache.bars_path(ts_code)
    span = cache.covered(path)
    if span and span[0] <= start and span[1] >= last:
        return False
    where = f"{source.name} {ts_code}"
    if not span or span[0] > start:
        last = max(last, span[1]) if span else last  # never shrink what the file covers
        bars = tidy_bars(source.stock_bars(ts_code, start, last, cache.adjust), where)
        cache.write(path, bars, start, last)
        return True
    old = cache.read(path)
    overlap = str(old["trade_date"].max()) if len(old) else _next_day(span[1])
    new = tidy_bars(source.stock_bars(ts_code, overlap, last, cache.adjust), where)
    if len(old):
        seen = new.loc[new["trade_date"] == overlap, "close"]
        before = old.loc[old["trade_date"] == overlap, "close"].iloc[-1]
        if len(seen) != 1 or not np.isclose(seen.iloc[0], before, rtol=1e-6, atol=0):
            log.info("%s: prices re-adjusted since the last update; fetching it again", where)
            bars = tidy_bars(source.stock_bars(ts_code, span[0], last, cache.adjust), where)
            cache.write(path, bars, span[0], last)
            return True
        new = new[new["trade_date"] > overlap]
    cache.write(path, pd.concat([old, new], ignore_index=True), span[0], last)
    return True


def update_list(source: PerStockSource, cache: PerStockCache, day: str) -> pd.DataFrame:
    """The stock list as of `day`, from the cache when it is that recent."""
    path = cache.root / "stock_basic.parquet"
    if read_meta(path).get("as_of", "") >= day:
        return pd.read_parquet(path)
    fresh = source.stock_list(day)
    if fresh.empty:
        raise DataError(f"{source.name}: the stock list for {day} is empty")
    fresh = fresh.loc[:, list(LIST_COLUMNS)].astype("string").drop_duplicates("ts_code")
    write_table_atomic(fresh.reset_index(drop=True), path, {"as_of": day})
    return fresh.reset_index(drop=True)


def choose_codes(cfg: DataConfig, listed: pd.DataFrame, start: str, last: str) -> list[str]:
    """The stocks to fetch: data.ts_codes, else a seeded sample of data.n_stocks, else all
    stocks listed by `last` and not delisted before `start`."""
    live = listed[
        (listed["list_date"].fillna("0") <= last) & ~(listed["delist_date"].fillna("9") < start)
    ]
    codes = sorted(live["ts_code"].astype(str))
    if cfg.ts_codes:
        unknown = sorted(set(cfg.ts_codes) - set(listed["ts_code"].astype(str)))
        if unknown:
            raise DataError(f"data.ts_codes not in the stock list: {unknown[:10]}")
        return sorted(set(cfg.ts_codes))
    if cfg.n_stocks is not None and cfg.n_stocks < len(codes):
        rng = np.random.default_rng(cfg.seed)
        return sorted(rng.choice(np.asarray(codes), size=cfg.n_stocks, replace=False).tolist())
    return codes


def window(cfg: DataConfig, today: str) -> tuple[str, str]:
    """(data.start, data.end or today), checked."""
    if not cfg.start:
        raise ConfigError(f"config key 'data.start' is required with data={cfg.source}")
    end = min(cfg.end or today, today)
    if cfg.start > end:
        raise ConfigError(f"config key 'data.start'={cfg.start!r} is after the last day {end}")
    return cfg.start, end


def update_per_stock(
    cfg: DataConfig, source: PerStockSource, cache: PerStockCache, today: str
) -> PerStockReport:
    """Bring a free source's cache up to date for data.start..data.end (no call when it is).

    Args:
        cfg: the `data` group.
        source: the service adapter.
        cache: the cache directory.
        today: YYYYMMDD in Asia/Shanghai.
    """
    start, end = window(cfg, today)
    last = update_index(source, cache, cfg.index_code, start, end, today)
    index = cache.read(cache.index_path(cfg.index_code))
    days = sorted(d for d in index["trade_date"].astype(str) if start <= d <= end)
    if not days:
        raise DataError(f"{source.name}: no {cfg.index_code} bars between {start} and {end}")
    codes = choose_codes(cfg, update_list(source, cache, last), start, last)
    fetched = [
        code
        for code in tqdm(
            codes, desc=f"{source.name} stocks", unit="stock", disable=not cfg.progress
        )
        if update_stock(source, cache, code, start, last)
    ]
    return PerStockReport(source.name, days, codes, fetched, source.client.calls)


def read_bars(cache: PerStockCache, codes: list[str], start: str, end: str) -> pd.DataFrame:
    """The cached bars of `codes` in start..end as one frame."""
    paths = [str(cache.bars_path(c)) for c in codes if cache.bars_path(c).exists()]
    if not paths:
        return pd.DataFrame(columns=BAR_COLUMNS)
    frame = pads.dataset(paths, format="parquet").to_table().to_pandas()
    keep = frame["trade_date"].astype(str).between(start, end)
    return frame.loc[keep].reset_index(drop=True)


def today_in_china() -> str:
    """Today's date in Asia/Shanghai as YYYYMMDD."""
    return pd.Timestamp.now(tz="Asia/Shanghai").strftime("%Y%m%d")


def run_update(cfg: DataConfig, source: PerStockSource, today: str) -> PerStockReport:
    """Update the cache while holding its lock (a second process waits, then finds it done).

    Args:
        cfg: the `data` group.
        source: the service adapter.
        today: YYYYMMDD in Asia/Shanghai.
    """
    return _update_locked(cfg, source, cache_for(cfg), today)


def cache_for(cfg: DataConfig) -> PerStockCache:
    """The cache of `data.cache_dir` for the prices `data.adjust` asks for."""
    return PerStockCache(Path(cfg.cache_dir).expanduser(), cfg.adjust)


def _update_locked(
    cfg: DataConfig, source: PerStockSource, cache: PerStockCache, today: str
) -> PerStockReport:
    """`update_per_stock` holding the cache's lock: a second process waits, then finds it done."""
    with cache_lock(cache.root):
        return update_per_stock(cfg, source, cache, today)


def load_per_stock(cfg: DataConfig, source: PerStockSource, today: str) -> Market:
    """Update the cache under its lock, then load it (lock held shared) as a validated `Market`.

    Args:
        cfg: the `data` group.
        source: the service adapter.
        today: YYYYMMDD in Asia/Shanghai.
    """
    cache = cache_for(cfg)
    report = _update_locked(cfg, source, cache, today)
    log.info(
        "%s cache %s: %d trading days, %d stocks, %d fetched now with %d call(s)",
        source.name,
        cache.root,
        len(report.days),
        len(report.codes),
        len(report.fetched),
        report.calls,
    )
    where = f"{source.name} cache {cache.root}"
    start, end = report.days[0], report.days[-1]
    with cache_read_lock(cache.root):
        raw = read_bars(cache, report.codes, start, end)
        index = cache.read(cache.index_path(cfg.index_code))
        basic = pd.read_parquet(cache.root / "stock_basic.parquet")
    if raw.empty:
        raise DataError(f"{where}: no stock bars between {start} and {end}")
    daily = normalize_daily(raw.sort_values(["ts_code", "trade_date"], kind="stable"), where)
    index_where = f"{where}/index/{cfg.index_code}"
    index = normalize_index(index, index_where, None)
    index = index[index["trade_date"] <= daily["trade_date"].max()].reset_index(drop=True)
    basic = normalize_basic(basic, daily["ts_code"], where)
    check_index_covers(daily, index, index_where)
    log_suspensions(daily, index, where)
    return Market(daily, index, basic, source=f"{source.name}:{cfg.adjust}")
