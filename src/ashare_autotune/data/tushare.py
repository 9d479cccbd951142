"""Tushare pro API source: downloads through a local parquet cache that grows by trading day.

One `daily` and one `adj_factor` call per trading day cover the whole market; each day is stored
as its own parquet file (written to a temporary name, then renamed), so an update appends files,
an interrupted download resumes at the first missing day, and a half-written file is never read.
Prices are stored raw with their adjustment factor; `data.adjust` is applied when loading.
The token is read from TUSHARE_TOKEN or `.env` and lives only inside the pro API object.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as pads
from tqdm.auto import tqdm

from ashare_autotune.config import DataConfig
from ashare_autotune.data.cache import cache_lock
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import (
    check_index_covers,
    log_suspensions,
    normalize_basic,
    normalize_daily,
    normalize_index,
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

TOKEN_ENV = "TUSHARE_TOKEN"
HOW_TO_SET_TOKEN = (
    f"set the {TOKEN_ENV} environment variable or put {TOKEN_ENV}=<your token> in .env "
    "(see .env.example); your token is at https://tushare.pro/user/token"
)
# Rows asked per call; Tushare caps rows per call by API and account (5000-8000).
PAGE_SIZE = {"daily": 5000, "adj_factor": 5000, "index_daily": 5000, "stock_basic": 5000}
DAILY_FIELDS = ("open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount")
PRICE_COLUMNS = ("open", "high", "low", "close", "pre_close")
BASIC_FIELDS = "ts_code,symbol,name,area,industry,list_date,list_status,delist_date"
MAX_WAIT = 60.0
# Tushare limits calls per minute ("每分钟最多访问..."): wait for the window to pass.
RATE_LIMIT_WAIT = 20.0


def resolve_token(env_file: Path = Path(".env")) -> str:
    """The Tushare token from TUSHARE_TOKEN, else from `.env`; a missing one is a ConfigError.

    Args:
        env_file: the dotenv file read when the variable is not set.

    Returns:
        The token (never log it).
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token and env_file.is_file():
        from dotenv import dotenv_values

        token = (dotenv_values(env_file).get(TOKEN_ENV) or "").strip()
    if not token:
        raise ConfigError(f"no Tushare token: {HOW_TO_SET_TOKEN}")
    return token


def connect_pro(token: str) -> Any:
    """The `tushare` package's pro API object (the token stays inside it, nothing on disk)."""
    import tushare

    # pro_api(token) keeps the token in memory; ts.set_token would write it to ~/tk.csv.
    return tushare.pro_api(token=token)


def _classify(message: str) -> str:
    """Which kind of failure a Tushare error message describes: limit, permission, token, other."""
    lowered = message.lower()
    if any(s in message for s in ("每分钟", "每小时", "最多访问", "频率")) or "rate" in lowered:
        return "limit"
    if "没有访问该接口的权限" in message or "积分" in message:
        return "permission"
    if "token" in lowered:
        return "token"
    return "other"


class TushareClient:
    """Calls pro API endpoints with pagination and retries; counts every call made.

    Args:
        connect: returns the pro API object; called on the first request only, so a run the
            cache fully answers needs neither a token nor the network.
        max_retries: attempts per call before a `DataError` naming the call.
        retry_wait: seconds before the first retry; doubled on each further retry (max 60 s).
        sleep: the wait function (tests pass a recorder).
        page_size: rows asked per call (default: `PAGE_SIZE` per endpoint).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        max_retries: int = 5,
        retry_wait: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int | None = None,
    ) -> None:
        self._connect = connect
        self._pro: Any = None
        self.max_retries = max_retries
        self.retry_wait = retry_wait
        self.sleep = sleep
        self.page_size = page_size
        self.calls = 0

    @classmethod
    def from_config(cls, cfg: DataConfig) -> TushareClient:
        """A client whose token comes from TUSHARE_TOKEN or `.env` when first needed."""
        return cls(
            lambda: connect_pro(resolve_token()),
            max_retries=cfg.max_retries,
            retry_wait=cfg.retry_wait,
        )

    def fetch(self, api: str, **params: Any) -> pd.DataFrame:
        """All rows of one endpoint call, page by page (`limit`/`offset`).

        Args:
            api: endpoint name, e.g. "daily".
            **params: the endpoint's parameters, e.g. trade_date="20230316".
        """
        limit = self.page_size or PAGE_SIZE.get(api, 5000)
        pages, offset = [], 0
        while True:
            page = self._call(api, limit=limit, offset=offset, **params)
            if len(page):
                pages.append(page)
            offset += len(page)
            # A short page is the last one, unless it is a round number: then the server's cap
            # (smaller than `limit` on some accounts) may have cut it, so ask for more.
            if len(page) == 0 or (len(page) < limit and len(page) % 1000):
                break
        return pd.concat(pages, ignore_index=True) if pages else pd.DataFrame()

    def _call(self, api: str, **params: Any) -> pd.DataFrame:
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("limit", "offset"))
        for attempt in range(1, self.max_retries + 1):
            self.calls += 1
            try:
                if self._pro is None:
                    self._pro = self._connect()
                out = getattr(self._pro, api)(**params)
            except (ConfigError, DataError):
                raise
            except Exception as exc:  # the network, the server or a rate limit: retried
                self._give_up_or_wait(api, shown, exc, attempt)
            else:
                return out if isinstance(out, pd.DataFrame) else pd.DataFrame()
        raise AssertionError("unreachable")  # pragma: no cover

    def _give_up_or_wait(self, api: str, shown: str, exc: Exception, attempt: int) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = _classify(message)
        if kind == "token":
            raise ConfigError(f"Tushare rejected the token ({message}): {HOW_TO_SET_TOKEN}")
        if kind == "permission":
            raise DataError(
                f"Tushare call {api}({shown}) refused: {message} "
                "(the account lacks the points for this endpoint)"
            )
        if attempt >= self.max_retries:
            raise DataError(
                f"Tushare call {api}({shown}) failed after {attempt} attempt(s): {message}"
            )
        wait = min(self.retry_wait * 2 ** (attempt - 1), MAX_WAIT)
        if kind == "limit":
            wait = max(wait, RATE_LIMIT_WAIT)
        log.warning(
            "Tushare call %s(%s) failed (%s); retry %d/%d in %.1f s",
            api,
            shown,
            message,
            attempt,
            self.max_retries - 1,
            wait,
        )
        self.sleep(wait)


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write to a hidden temporary file next to `path`, then rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # no partial file left behind, whatever the failure
        if exc.errno == errno.ENOSPC:
            raise DataError(
                f"disk full while writing the Tushare cache file {path}: the files already "
                "cached are kept; free space and run the same command again to resume"
            ) from None
        raise


def _tidy_bars(frame: pd.DataFrame, numeric: tuple[str, ...]) -> pd.DataFrame:
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
        cal = _tidy_bars(fetched.loc[:, ["cal_date", "is_open"]], ("is_open",))
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
    bars = _tidy_bars(bars, DAILY_FIELDS).drop_duplicates(["ts_code", "trade_date"])
    if factors.empty:
        bars["adj_factor"] = np.nan
    else:
        factors = _tidy_bars(factors.loc[:, ["ts_code", "adj_factor"]], ("adj_factor",))
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
    bars = _tidy_bars(bars, DAILY_FIELDS)
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
    end date, without its rounding to 0.01); none keeps raw prices. vol and amount stay raw.

    Args:
        daily: bars with the raw price columns and adj_factor.
        how: qfq | hfq | none.
    """
    out = daily.drop(columns=["adj_factor"])
    if how == "none":
        return out
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
    raw = cache.read_days(report.available_days, cfg.ts_codes)
    if raw.empty:
        raise DataError(f"{where}: no bars for data.ts_codes={cfg.ts_codes} in the window")
    raw = raw.sort_values(["ts_code", "trade_date"], kind="stable", ignore_index=True)
    if cfg.daily_basic:
        raw = join_daily_basic(raw, read_daily_basic(cache, report.available_days))
    update_basic(client, cache, set(raw["ts_code"].unique()))
    daily = normalize_daily(adjust_prices(raw, cfg.adjust), where)
    index_where = f"{where}/index_daily/{cfg.index_code}"
    index = normalize_index(cache.read_index(cfg.index_code), index_where, cfg.index_code)
    index = index[index["trade_date"] <= daily["trade_date"].max()].reset_index(drop=True)
    basic = normalize_basic(cache.read_basic(), daily["ts_code"], f"{where}/stock_basic")
    check_index_covers(daily, index, index_where)
    log_suspensions(daily, index, where)
    names = read_namechange(cache) if cfg.namechange else None
    return Market(daily, index, basic, source=f"tushare:{cfg.adjust}", namechange=names)
