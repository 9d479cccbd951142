"""Tushare pro API source: downloads through a local parquet cache that grows by trading day.

One `daily` and one `adj_factor` call per trading day cover the whole market; each day is stored
as its own parquet file (written to a temporary name, then renamed), so an update appends files,
an interrupted download resumes at the first missing day, and a half-written file is never read.
Prices are stored raw with their adjustment factor; `data.adjust` is applied when loading.
The token is read from TUSHARE_TOKEN or `.env` and lives only inside the pro API object.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.cache import TushareCache, tidy_bars
from ashare_autotune.data.cache_files import cache_lock, cache_read_lock
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import (
    check_index_covers,
    log_suspensions,
    normalize_basic,
    normalize_daily,
    normalize_index,
)
from ashare_autotune.data.tushare_client import (
    BASIC_FIELDS,
    DAILY_FIELDS,
    PRICE_COLUMNS,
    TushareClient,
)
from ashare_autotune.data.tushare_extras import (
    join_daily_basic,
    read_daily_basic,
    read_namechange,
    update_daily_basic,
    update_namechange,
)
from ashare_autotune.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class UpdateReport:
    """What an update did: the trading days wanted, fetched and still missing, calls made."""

    open_days: list[str]
    fetched: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def available_days(self) -> list[str]:
        """Wanted trading days whose bars are in the cache."""
        missing = set(self.unavailable)
        return [d for d in self.open_days if d not in missing]


def today_in_china() -> str:
    """Today's date in Asia/Shanghai as YYYYMMDD."""
    return pd.Timestamp.now(tz="Asia/Shanghai").strftime("%Y%m%d")


def _window(cfg: DataConfig, today: str) -> tuple[str, str]:
    if not cfg.start:
        raise ConfigError("config key 'data.start' is required with data=tushare")
    end = min(cfg.end or today, today)
    if cfg.start > end:
        raise ConfigError(f"config key 'data.start'={cfg.start!r} is after the last day {end}")
    return cfg.start, end


def ensure_calendar(client: TushareClient, cache: TushareCache, start: str, end: str) -> list[str]:
    """SSE trading days in start..end, from the cache or one `trade_cal` call.

    Returns:
        The open days, ascending, as YYYYMMDD strings.
    """
    cal = cache.read_calendar()
    if cal is None or cal["cal_date"].min() > start or cal["cal_date"].max() < end:
        lo = start if cal is None else min(start, cal["cal_date"].min())
        hi = end if cal is None else max(end, cal["cal_date"].max())
        fetched = client.fetch("trade_cal", exchange="SSE", start_date=lo, end_date=hi)
        if fetched.empty or "cal_date" not in fetched.columns:
            raise DataError(f"Tushare call trade_cal(start_date={lo}, end_date={hi}) gave no days")
        cal = tidy_bars(fetched.loc[:, ["cal_date", "is_open"]], ("is_open",))
        cal["cal_date"] = cal["cal_date"].astype(str)
        cal = cal.drop_duplicates("cal_date").sort_values("cal_date", ignore_index=True)
        cache.write_calendar(cal)
    days = cal.loc[(cal["is_open"] == 1) & cal["cal_date"].between(start, end), "cal_date"]
    return days.astype(str).tolist()


def fetch_day(client: TushareClient, day: str) -> pd.DataFrame | None:
    """One day of whole-market bars joined with adj_factor, or None when not published yet."""
    bars = client.fetch("daily", trade_date=day)
    if bars.empty:
        return None
    factors = client.fetch("adj_factor", trade_date=day)
    bars = tidy_bars(bars, DAILY_FIELDS).drop_duplicates(["ts_code", "trade_date"])
    if factors.empty:
        bars["adj_factor"] = np.nan
    else:
        factors = tidy_bars(factors.loc[:, ["ts_code", "adj_factor"]], ("adj_factor",))
        bars = bars.merge(factors.drop_duplicates("ts_code"), on="ts_code", how="left")
    return bars.reset_index(drop=True)


def update_days(
    client: TushareClient, cache: TushareCache, days: list[str], progress: bool
) -> tuple[list[str], list[str], set[str]]:
    """Download every day not yet cached, one atomic file per day.

    Returns:
        (days fetched, days Tushare has no bars for yet, codes seen in the fetched bars).
    """
    missing = sorted(set(days) - cache.cached_days())
    fetched: list[str] = []
    unavailable: list[str] = []
    codes: set[str] = set()
    for day in tqdm(missing, desc="Tushare days", unit="day", disable=not progress or not missing):
        bars = fetch_day(client, day)
        if bars is None:
            unavailable.append(day)
            continue
        cache.write_day(day, bars)
        fetched.append(day)
        codes.update(bars["ts_code"].unique())
    return fetched, unavailable, codes


def update_index(
    client: TushareClient, cache: TushareCache, code: str, days: list[str]
) -> list[str]:
    """Fetch the index bars of the trading days the cache lacks, as one appended chunk.

    Returns:
        The trading days still without an index bar.
    """
    have = set(cache.read_index(code)["trade_date"].astype(str))
    missing = [d for d in days if d not in have]
    if not missing:
        return []
    bars = client.fetch("index_daily", ts_code=code, start_date=missing[0], end_date=missing[-1])
    if bars.empty:
        return missing
    bars = tidy_bars(bars, DAILY_FIELDS)
    cache.write_index(code, missing[0], missing[-1], bars)
    return sorted(set(missing) - set(bars["trade_date"]))


def update_basic(client: TushareClient, cache: TushareCache, codes: set[str]) -> None:
    """Refresh stock_basic (listed, delisted, paused) when it lacks any of `codes`."""
    basic = cache.read_basic()
    if basic is not None and codes <= set(basic["ts_code"]):
        return
    frames = [client.fetch("stock_basic", list_status=s, fields=BASIC_FIELDS) for s in "LDP"]
    fresh = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    if fresh.empty:
        raise DataError("Tushare call stock_basic returned no stocks")
    for col in fresh.columns:
        fresh[col] = fresh[col].astype("string")
    cache.write_basic(fresh.drop_duplicates("ts_code", ignore_index=True))


def update_cache(
    cfg: DataConfig, client: TushareClient, cache: TushareCache, today: str | None = None
) -> UpdateReport:
    """Bring the cache up to date for data.start..data.end (no call when it already is).

    Args:
        cfg: the `data` group (start, end, index_code, progress).
        client: the API client.
        cache: the cache directory.
        today: YYYYMMDD used for a null data.end (default: today in Asia/Shanghai).

    Returns:
        An `UpdateReport`.
    """
    start, end = _window(cfg, today or today_in_china())
    days = ensure_calendar(client, cache, start, end)
    if not days:
        raise DataError(f"Tushare calendar: no trading days between {start} and {end}")
    fetched, unavailable, codes = update_days(client, cache, days, cfg.progress)
    _report_unavailable(unavailable, days)
    available = [d for d in days if d not in set(unavailable)]
    no_index = update_index(client, cache, cfg.index_code, available)
    if no_index:
        log.warning(
            "Tushare has no %s bars for %d trading day(s), e.g. %s",
            cfg.index_code,
            len(no_index),
            no_index[0],
        )
    update_basic(client, cache, codes)
    if cfg.daily_basic:
        update_daily_basic(client, cache, available, cfg.progress)
    if cfg.namechange:
        update_namechange(client, cache, available[-1] if available else end)
    return UpdateReport(days, fetched, unavailable, client.calls)


def _report_unavailable(unavailable: list[str], days: list[str]) -> None:
    if not unavailable:
        return
    recent = unavailable == days[-len(unavailable) :]
    (log.info if recent else log.warning)(
        "Tushare has no bars yet for %d trading day(s) (%s..%s)%s; they are fetched next time",
        len(unavailable),
        unavailable[0],
        unavailable[-1],
        " (published after the close)" if recent else "",
    )


def fill_adj_factor(daily: pd.DataFrame) -> pd.Series:
    """Each row's adjustment factor, a missing one taken from the stock's nearest day.

    Rows must be sorted by (ts_code, trade_date). A stock with no factor at all gets 1.0.
    """
    factor = daily["adj_factor"].astype(np.float64)
    n_missing = int(factor.isna().sum())
    if n_missing:
        by_code = factor.groupby(daily["ts_code"], observed=True)
        factor = by_code.ffill().fillna(factor.groupby(daily["ts_code"], observed=True).bfill())
        left = int(factor.isna().sum())
        log.warning(
            "adj_factor missing on %d row(s): %d filled from the same stock's nearest day, "
            "%d set to 1.0 (stock without any factor)",
            n_missing,
            n_missing - left,
            left,
        )
        factor = factor.fillna(1.0)
    return factor


def adjust_prices(daily: pd.DataFrame, how: str) -> pd.DataFrame:
    """Apply Tushare's price adjustment to raw bars sorted by (ts_code, trade_date).

    hfq multiplies prices by adj_factor; qfq by adj_factor / the stock's last adj_factor in
    the frame (so the last day keeps its raw prices, as `ts.pro_bar(adj='qfq')` with the same
    end date, without its rounding to 0.01); none keeps raw prices and the adj_factor column
    (`data.sanity.repair_with_factors` adjusts a split it explains). vol and amount stay raw.

    Args:
        daily: bars with the raw price columns and adj_factor.
        how: qfq | hfq | none.
    """
    if how == "none":  # raw prices; the factors stay for the sanity check's split repair
        return daily
    out = daily.drop(columns=["adj_factor"])
    factor = fill_adj_factor(daily)
    if how == "qfq":
        factor = factor / factor.groupby(daily["ts_code"], observed=True).transform("last")
    for col in PRICE_COLUMNS:
        if col in out.columns:
            out[col] = out[col] * factor.to_numpy()
    if "change" in out.columns:
        out["change"] = out["close"] - out["pre_close"]
    return out


def load_tushare(
    cfg: DataConfig, client: TushareClient | None = None, today: str | None = None
) -> Market:
    """Update the cache for the configured window and load it as a validated `Market`.

    Args:
        cfg: the `data` group.
        client: the API client (default: from the config, token from TUSHARE_TOKEN/.env).
        today: YYYYMMDD standing for today (tests).
    """
    cache = TushareCache(Path(cfg.cache_dir).expanduser())
    client = client or TushareClient.from_config(cfg)
    with cache_lock(cache.root):
        report = update_cache(cfg, client, cache, today)
    log.info(
        "Tushare cache %s: %d trading days, %d fetched now with %d API call(s)",
        cache.root,
        len(report.available_days),
        len(report.fetched),
        report.calls,
    )
    where = f"Tushare cache {cache.root}"
    if not report.available_days:
        raise DataError(f"Tushare has no bars yet between data.start={cfg.start} and data.end")
    with cache_read_lock(cache.root):
        raw, index, basic, names = read_cache(cfg, client, cache, report.available_days)
    daily = normalize_daily(adjust_prices(raw, cfg.adjust), where)
    index_where = f"{where}/index_daily/{cfg.index_code}"
    index = normalize_index(index, index_where, cfg.index_code)
    index = index[index["trade_date"] <= daily["trade_date"].max()].reset_index(drop=True)
    basic = normalize_basic(basic, daily["ts_code"], f"{where}/stock_basic")
    check_index_covers(daily, index, index_where)
    log_suspensions(daily, index, where)
    return Market(daily, index, basic, source=f"tushare:{cfg.adjust}", namechange=names)


def read_cache(
    cfg: DataConfig, client: TushareClient, cache: TushareCache, days: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """The cached bars of `days` (with daily_basic when asked), the index, stock_basic and
    namechange, as stored; the caller holds the cache's read lock.

    Returns:
        (raw bars sorted by ts_code and trade_date, index bars, stock_basic, namechange or None).
    """
    raw = cache.read_days(days, cfg.ts_codes)
    if raw.empty:
        raise DataError(
            f"Tushare cache {cache.root}: no bars for data.ts_codes={cfg.ts_codes} in the window"
        )
    raw = raw.sort_values(["ts_code", "trade_date"], kind="stable", ignore_index=True)
    if cfg.daily_basic:
        raw = join_daily_basic(raw, read_daily_basic(cache, days))
    # A write under the read lock, yet safe: no update runs meanwhile, and two readers writing
    # the same stock_basic each replace it whole (write, then rename).
    update_basic(client, cache, set(raw["ts_code"].unique()))
    index = cache.read_index(cfg.index_code)
    names = read_namechange(cache) if cfg.namechange else None
    return raw, index, cache.read_basic(), names
