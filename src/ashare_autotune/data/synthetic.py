"""A seeded synthetic A-share market, so that everything runs offline by default.

It demonstrates the plumbing, never an edge (every report made on it says `CAVEAT`).
Daily returns: beta times a market factor, plus the stock's industry factor, plus an
idiosyncratic part; each of these three is GARCH(1,1) on Student-t shocks (df 4): fat tails and
volatility clustering; annualised volatility of a stock ~25-45%. The one planted effect is weak
(`synthetic_paths.REVERSAL_COEF`): a 20-day idiosyncratic reversal whose mean daily Rank IC
against the 5-day forward return is ~0.02 at `signal_strength=1`; tests use a stronger one on
their tiny markets. Price limits by board (main 10%, ChiNext 10% before 2020-08-24 and 20% from
then, STAR 20%, BJ 30%) cut the day's move (limit days appear; the excess is lost, not carried);
suspensions leave no rows (the price waits); 15% of the stocks list inside the span; volume
rises in volatile spells and on big moves; the index (000001.SH) is the equal-weight average of
the traded stocks' open, high, low and close returns.

The calendar is fixed (weekdays from `first_date`) and every draw is seeded by day blocks
(`synthetic_paths.stream`), so `n_days` only extends or cuts the same market.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.config.choices import check
from ashare_autotune.data import synthetic_paths as paths
from ashare_autotune.data.boards import CHINEXT_REFORM
from ashare_autotune.data.market import Market

CAVEAT = "synthetic market: not evidence of an edge"
CAVEAT_TAG = "data_caveat"  # the MLflow tag of runs on it
MIN_TRAIN_DAYS = 60
# Stocks generated when data.n_stocks is unset: `make train` (50 trials, features=full) stays
# within 3 minutes on 2 cores; 300 took 4.7 CPU-minutes.
DEFAULT_STOCKS = 200
NAMECHANGE_COLUMNS = ("ts_code", "name", "start_date", "end_date")
INDUSTRIES = (
    "银行",
    "医药生物",
    "电子",
    "计算机",
    "化工",
    "机械设备",
    "汽车",
    "食品饮料",
    "房地产",
    "有色金属",
    "电力设备",
    "传媒",
)
AREAS = ("上海", "深圳", "北京", "浙江", "江苏", "广东", "山东", "四川")
# (code prefix, exchange, daily price limit, share of stocks); ChiNext's limit was 10% before
# CHINEXT_REFORM (`data.boards`).
BOARDS = (
    ("600", "SH", 0.10, 0.42),
    ("000", "SZ", 0.10, 0.33),
    ("300", "SZ", 0.20, 0.15),
    ("688", "SH", 0.20, 0.06),
    ("830", "BJ", 0.30, 0.04),
)
MARKET_VOL, MARKET_DRIFT = 0.013, 0.0002  # daily: ~21% a year, ~5% a year
INDUSTRY_VOL = 0.006
IDIO_VOL = (0.012, 0.023)  # uniform range of the stocks' idiosyncratic daily volatility
BETA = (0.7, 1.3)
LISTING_SHARE = 0.15  # stocks listing inside the span
LISTING_SPAN = 1250  # ... on a trading day drawn from the first this many (whatever n_days)
# Stream keys of `paths.stream` (one per random quantity).
MARKET, INDUSTRY, IDIO, SUSPEND, SUSPEND_DAYS, GAP, HIGH, LOW, VOLUME = range(1, 10)


@dataclass(frozen=True)
class Universe:
    """Static description of the synthetic stocks."""

    codes: np.ndarray
    limit: np.ndarray  # the board's daily limit (ChiNext: from CHINEXT_REFORM)
    chinext: np.ndarray  # bool: 10% before CHINEXT_REFORM
    industry: np.ndarray  # index into INDUSTRIES, -1 for none
    beta: np.ndarray
    idio_vol: np.ndarray
    first_day: np.ndarray  # trading day of the first bar (0: listed before the span)
    listed_days_before: np.ndarray  # calendar days listed before first_date (0: lists inside)
    price: np.ndarray  # close before the first day (the issue price of a listing)
    lots: np.ndarray  # typical daily volume in lots


def make_universe(n: int, seed: int) -> Universe:
    """Draw the stocks' boards, codes, industries, betas, volatilities and listing days.

    Args:
        n: number of stocks.
        seed: the market's seed.

    Returns:
        The `Universe` (it does not depend on the number of days).
    """
    rng = np.random.default_rng([seed, 0])
    board = rng.choice(len(BOARDS), size=n, p=[b[3] for b in BOARDS])
    codes = np.empty(n, dtype=object)
    for k, (prefix, exch, _, _) in enumerate(BOARDS):
        members = np.flatnonzero(board == k)
        codes[members] = [f"{int(prefix) * 1000 + 1 + j:06d}.{exch}" for j in range(len(members))]
    industry = rng.integers(0, len(INDUSTRIES), size=n)
    industry[rng.random(n) < 0.03] = -1
    lists_inside = rng.random(n) < LISTING_SHARE
    return Universe(
        codes=codes,
        limit=np.array([BOARDS[b][2] for b in board]),
        chinext=np.array([BOARDS[b][0] == "300" for b in board]),
        industry=industry,
        beta=rng.uniform(*BETA, size=n),
        idio_vol=rng.uniform(*IDIO_VOL, size=n),
        first_day=np.where(lists_inside, rng.integers(1, LISTING_SPAN, size=n), 0),
        listed_days_before=np.where(lists_inside, 0, rng.integers(200, 5000, size=n)),
        price=np.exp(rng.uniform(np.log(4), np.log(60), size=n)),
        lots=rng.lognormal(11, 0.8, size=n),
    )


def make_synthetic_market(
    n_stocks: int = DEFAULT_STOCKS,
    n_days: int = 1000,
    seed: int = 42,
    first_date: str = "20180102",
    index_code: str = "000001.SH",
    signal_strength: float = 1.0,
) -> Market:
    """Generate a seeded synthetic market with Tushare `pro.daily` columns and units.

    Args:
        n_stocks: number of stocks drawn (those listing after the last day have no rows).
        n_days: number of trading days (weekdays from first_date); more days extend the same
            market.
        seed: random seed; the same seed gives the same market.
        first_date: first trading day, YYYYMMDD.
        index_code: the index's ts_code (the frame has one index, so it is not a column).
        signal_strength: multiplier of the weak planted reversal (1: the documented default;
            0: none; tests use more on tiny markets).

    Returns:
        A `Market` with daily bars, the index (open/high/low/close), stock_basic and an
        empty namechange (no stock is ever ST).
    """
    u = make_universe(n_stocks, seed)
    dates = pd.bdate_range(pd.Timestamp(first_date), periods=n_days)
    limit = np.where(u.chinext & (dates < CHINEXT_REFORM)[:, None], 0.10, u.limit)
    market, _ = paths.garch(paths.stream(seed, MARKET, n_days, 1, "t"), np.array([MARKET_VOL]))
    ind_vol = np.full(len(INDUSTRIES), INDUSTRY_VOL)
    industry, _ = paths.garch(paths.stream(seed, INDUSTRY, n_days, len(INDUSTRIES), "t"), ind_vol)
    shocks = paths.stream(seed, IDIO, n_days, n_stocks, "t")
    idio, sigma = paths.garch(shocks, u.idio_vol)
    ind_ret = np.where(u.industry >= 0, industry[:, np.maximum(u.industry, 0)], 0.0)
    drift = paths.planted_reversal(shocks, u.idio_vol, signal_strength)
    raw = u.beta * (market + MARKET_DRIFT) + ind_ret + idio + drift
    days = np.arange(n_days)[:, None]
    lengths = 1 + np.floor(
        np.log(paths.stream(seed, SUSPEND_DAYS, n_days, n_stocks, "uniform"))
        / np.log(1 - 1 / paths.SUSPEND_MEAN_DAYS)
    ).astype(int)
    starts = paths.stream(seed, SUSPEND, n_days, n_stocks, "uniform") < paths.SUSPEND_RATE
    traded = (days >= u.first_day) & ~paths.suspensions(starts, lengths)
    moved = np.where(traded, np.clip(raw, -limit, limit), 0.0)
    close = u.price * np.cumprod(1 + moved, axis=0)
    prev = np.vstack([u.price[None, :], close[:-1]])
    noise = np.stack([paths.stream(seed, key, n_days, n_stocks) for key in (GAP, HIGH, LOW)])
    ohlc = paths.bars(prev, raw, limit, np.hypot(sigma, u.beta * MARKET_VOL), noise)
    lots = paths.volumes(
        u.lots, moved, sigma, u.idio_vol, paths.stream(seed, VOLUME, n_days, n_stocks)
    )
    daily = _to_frame(u.codes, dates, ohlc, prev, lots, traded)
    index = _equal_weight_index(ohlc, prev, traded, dates)
    basic = _stock_basic(u, dates, traded, seed)
    # Names never change and none is ST: an empty point-in-time history says so (without it
    # the ST rules would warn that the stock_basic names are a snapshot).
    names = pd.DataFrame({c: pd.Series(dtype=str) for c in NAMECHANGE_COLUMNS})
    source = f"synthetic(seed={seed})"
    return Market(daily, index, basic, source=source, namechange=names)


def _stock_basic(
    u: Universe, dates: pd.DatetimeIndex, traded: np.ndarray, seed: int
) -> pd.DataFrame:
    """ts_code, name, area, industry and list_date of the stocks listed by the last day."""
    rng = np.random.default_rng([seed, 99])
    n = len(u.codes)
    listed = u.first_day < len(dates)
    before = dates[0] - pd.to_timedelta(u.listed_days_before, unit="D")
    inside = dates[np.minimum(u.first_day, len(dates) - 1)]
    list_date = np.where(u.first_day > 0, inside, before)
    basic = pd.DataFrame(
        {
            "ts_code": u.codes.astype(str),
            "name": [f"合成{i:04d}" for i in range(n)],
            "area": rng.choice(AREAS, size=n),
            "industry": [INDUSTRIES[k] if k >= 0 else None for k in u.industry],
            "list_date": pd.DatetimeIndex(list_date).strftime("%Y%m%d"),
        }
    )
    return basic.loc[listed & traded.any(axis=0)].reset_index(drop=True)


def _to_frame(
    codes: np.ndarray,
    dates: pd.DatetimeIndex,
    ohlc: dict[str, np.ndarray],
    prev: np.ndarray,
    lots: np.ndarray,
    traded: np.ndarray,
) -> pd.DataFrame:
    """The traded stock-days as Tushare daily rows, sorted by ts_code then trade_date."""
    order = np.argsort(codes.astype(str), kind="stable")
    mask = traded[:, order].T  # stock-major

    def flat(a: np.ndarray) -> np.ndarray:
        return a[:, order].T[mask].astype(np.float32)

    n_codes, n_days = len(codes), len(dates)
    code_idx = np.repeat(np.arange(n_codes), n_days).reshape(n_codes, n_days)[mask]
    frame = pd.DataFrame(
        {
            "ts_code": pd.Categorical.from_codes(code_idx, categories=codes[order].astype(str)),
            "trade_date": np.tile(dates.to_numpy(), n_codes).reshape(n_codes, n_days)[mask],
        }
    )
    for col in ("open", "high", "low", "close"):
        frame[col] = flat(ohlc[col])
    frame["pre_close"] = flat(prev)
    frame["change"] = frame["close"] - frame["pre_close"]
    frame["pct_chg"] = (frame["change"] / frame["pre_close"] * 100).astype(np.float32)
    frame["vol"] = flat(lots)
    vwap = (ohlc["open"] + ohlc["high"] + ohlc["low"] + ohlc["close"]) / 4
    frame["amount"] = flat(lots * vwap / 10)  # lots of 100 shares -> thousand CNY
    frame["trade_date"] = frame["trade_date"].astype("datetime64[ns]")
    ts_code = frame["ts_code"].cat.remove_unused_categories()
    frame["ts_code"] = ts_code
    return frame


def _equal_weight_index(
    ohlc: dict[str, np.ndarray],
    prev: np.ndarray,
    traded: np.ndarray,
    dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """The equal-weight average of the traded stocks' open/high/low/close returns, from 3000."""
    count = np.maximum(traded.sum(axis=1), 1)

    def mean_ret(col: str) -> np.ndarray:
        return np.where(traded, ohlc[col] / prev - 1, 0.0).sum(axis=1) / count

    close_ret = mean_ret("close")
    level = 3000 * np.cumprod(1 + close_ret)
    before = np.r_[3000.0, level[:-1]]
    open_ = before * (1 + mean_ret("open"))
    high = np.maximum.reduce([before * (1 + mean_ret("high")), open_, level])
    low = np.minimum.reduce([before * (1 + mean_ret("low")), open_, level])
    return pd.DataFrame(
        {
            "trade_date": dates.to_numpy().astype("datetime64[ns]"),
            "open": open_.astype(np.float32),
            "high": high.astype(np.float32),
            "low": low.astype(np.float32),
            "close": level.astype(np.float32),
            "pct_chg": (close_ret * 100).astype(np.float32),
        }
    )


def data_caveat(source: str) -> str | None:
    """`CAVEAT` when `source` (a `Market.source` or data description) is the synthetic market.

    Args:
        source: the market's source text, e.g. "synthetic(seed=42)".

    Returns:
        The caveat line, or None for real data.
    """
    return CAVEAT if str(source).startswith("synthetic") else None


def training_end(first_date: str, n_days: int, holdout_days: int) -> str:
    """The last day training uses on the synthetic market: `holdout_days` before its end.

    Args:
        first_date: the market's first day, YYYYMMDD.
        n_days: days generated.
        holdout_days: the last days left to predict and evaluate.

    Returns:
        The day as YYYYMMDD.

    Raises:
        ConfigError: when fewer than `MIN_TRAIN_DAYS` days would be left to train on.
    """
    check(
        n_days - holdout_days >= MIN_TRAIN_DAYS,
        "data.holdout_days",
        holdout_days,
        f"must leave {MIN_TRAIN_DAYS} of data.n_days={n_days} days to train on",
    )
    dates = pd.bdate_range(pd.Timestamp(first_date), periods=n_days - holdout_days)
    return dates[-1].strftime("%Y%m%d")


def with_caveat(text: str, source: str) -> str:
    """`text` headed by `CAVEAT` when `source` is the synthetic market, else `text`.

    Args:
        text: a report (table, summary).
        source: the market's source text.

    Returns:
        The report to show.
    """
    caveat = data_caveat(source)
    return f"{caveat}\n\n{text}" if caveat else text


def caveat_tags(source: str) -> dict[str, str]:
    """The MLflow tag `data_caveat` for a run on the synthetic market ({} on real data).

    Args:
        source: the market's source text, or `data.source`.

    Returns:
        {CAVEAT_TAG: CAVEAT} or {}.
    """
    caveat = data_caveat(source)
    return {CAVEAT_TAG: caveat} if caveat else {}
