"""A seeded synthetic A-share market, so that everything runs offline by default.

The market has a GARCH market factor, persistent industry factors, stocks with GARCH idiosyncratic
volatility and a mean-reverting price deviation (the predictable part a model can learn),
board-specific +/-10% or +/-20% price limits that carry unfilled moves to the next day, volume
that rises with the size of the move, suspensions with no rows, staggered listings, an equal-weight
index (000001.SH) and stock_basic with industries (a few stocks have none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.data.market import Market

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
# (code prefix, exchange, daily price limit, share of listings)
# The learnable parts: persistence of the mean-reverting price deviation, and the daily drift
# per unit of attention (scaled by the stock's volatility).
PHI = 0.75
ATTENTION_DRIFT = 0.006
REVERSAL = 0.1
BOARDS = (
    ("600", "SH", 0.10, 0.45),
    ("000", "SZ", 0.10, 0.35),
    ("300", "SZ", 0.20, 0.15),
    ("688", "SH", 0.20, 0.05),
)


@dataclass(frozen=True)
class Universe:
    """Static description of the synthetic stocks."""

    codes: np.ndarray
    limits: np.ndarray
    industry: np.ndarray  # index into INDUSTRIES, -1 for none
    beta: np.ndarray
    idio_vol: np.ndarray
    first_day: np.ndarray  # listing day index


def _make_universe(n: int, n_days: int, rng: np.random.Generator) -> Universe:
    board = rng.choice(len(BOARDS), size=n, p=[b[3] for b in BOARDS])
    codes = np.empty(n, dtype=object)
    for k, (prefix, exch, _, _) in enumerate(BOARDS):
        members = np.flatnonzero(board == k)
        for j, i in enumerate(members):
            codes[i] = f"{int(prefix) * 1000 + 1 + j:06d}.{exch}"
    industry = rng.integers(0, len(INDUSTRIES), size=n)
    industry[rng.random(n) < 0.03] = -1
    late = rng.random(n) < 0.15
    first_day = np.where(late, rng.integers(0, int(n_days * 0.6), size=n), 0)
    return Universe(
        codes=codes,
        limits=np.array([BOARDS[b][2] for b in board]),
        industry=industry,
        beta=rng.uniform(0.6, 1.4, size=n),
        idio_vol=rng.uniform(0.012, 0.028, size=n),
        first_day=first_day,
    )


def _garch(n_days: int, size: int, vol: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GARCH(1,1) shocks with unconditional volatility `vol` (volatility clustering)."""
    alpha, beta = 0.08, 0.90
    omega = vol**2 * (1 - alpha - beta)
    var = vol**2 * np.ones(size)
    out = np.empty((n_days, size))
    for t in range(n_days):
        eps = np.sqrt(var) * rng.standard_normal(size)
        out[t] = eps
        var = omega + alpha * eps**2 + beta * var
    return out


def _simulate_closes(
    u: Universe, n_days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate closes day by day (vectorised over stocks).

    Returns close, previous close, traded flag and attention (drives volume), each (days, stocks).
    """
    n = len(u.codes)
    market = _garch(n_days, 1, np.array([0.012]), rng)[:, 0] + 0.0002
    ind_shock = _garch(n_days, len(INDUSTRIES), np.full(len(INDUSTRIES), 0.007), rng)
    idio = _garch(n_days, n, u.idio_vol, rng)
    dev = np.zeros(n)
    ind = np.zeros(len(INDUSTRIES))
    attention = np.zeros(n)
    target = np.log(rng.uniform(4, 60, size=n))
    close = np.exp(target)
    recent = np.tile(close, (10, 1))  # the last 10 closes, for the technical reversal
    suspended_until = np.full(n, -1)
    closes, prevs, traded, attn = (np.empty((n_days, n)) for _ in range(4))
    for t in range(n_days):
        ind = 0.1 * ind + ind_shock[t]
        ind_ret = np.where(u.industry >= 0, ind[np.maximum(u.industry, 0)], 0.0)
        new_dev = PHI * dev + idio[t]
        # Attention (seen in volume) brings buyers over the next days: a learnable drift.
        drift = ATTENTION_DRIFT * attention * u.idio_vol / 0.02
        # Traders buy stretches below the 10-day average back: a reversal a model can see.
        drift = drift - REVERSAL * np.log(close / recent.mean(axis=0))
        attention = 0.7 * attention + 0.3 * rng.standard_normal(n)
        target = target + u.beta * market[t] + ind_ret + (new_dev - dev) + drift
        dev = new_dev
        starts = (rng.random(n) < 0.002) & (suspended_until < t)
        suspended_until = np.where(starts, t + rng.integers(1, 20, size=n), suspended_until)
        trading = (suspended_until < t) & (t >= u.first_day)
        wanted = np.exp(target) / close - 1
        move = np.clip(wanted, -u.limits, u.limits)
        prevs[t] = close
        close = np.where(trading, close * (1 + move), close)
        recent[t % 10] = close
        closes[t], traded[t], attn[t] = close, trading, attention
    return closes, prevs, traded.astype(bool), attn


def _bars(
    closes: np.ndarray,
    prevs: np.ndarray,
    attention: np.ndarray,
    limits: np.ndarray,
    vol: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Open/high/low/volume/amount consistent with the closes and the price limits."""
    ret = closes / prevs - 1
    lo_lim, hi_lim = prevs * (1 - limits), prevs * (1 + limits)
    gap = 0.3 * ret + 0.3 * vol * rng.standard_normal(ret.shape)
    open_ = np.clip(prevs * (1 + gap), lo_lim, hi_lim)
    high = np.minimum(
        np.maximum(open_, closes) * (1 + np.abs(rng.normal(0, 0.4, ret.shape)) * vol), hi_lim
    )
    low = np.maximum(
        np.minimum(open_, closes) * (1 - np.abs(rng.normal(0, 0.4, ret.shape)) * vol), lo_lim
    )
    base = rng.lognormal(11, 1, size=ret.shape[1])  # lots of 100 shares
    volume = base * np.exp(attention + 12 * np.abs(ret))
    vwap = (open_ + high + low + closes) / 4
    return {
        "open": open_,
        "high": high,
        "low": low,
        "vol": volume,
        "amount": volume * vwap / 10,
    }  # vol in lots, amount in thousand CNY


def make_synthetic_market(
    n_stocks: int = 300,
    n_days: int = 1000,
    seed: int = 42,
    first_date: str = "20180102",
    index_code: str = "000001.SH",
) -> Market:
    """Generate a seeded synthetic market with Tushare `pro.daily` columns and units.

    Args:
        n_stocks: number of stocks.
        n_days: number of trading days (weekdays from first_date).
        seed: random seed; the same seed gives the same market.
        first_date: first trading day, YYYYMMDD.
        index_code: ts_code given to the index series.

    Returns:
        A `Market` with daily bars, the index and stock_basic.
    """
    rng = np.random.default_rng(seed)
    u = _make_universe(n_stocks, n_days, rng)
    closes, prevs, traded, attention = _simulate_closes(u, n_days, rng)
    bars = _bars(closes, prevs, attention, u.limits, u.idio_vol, rng)
    dates = pd.bdate_range(pd.Timestamp(first_date), periods=n_days)
    daily = _to_frame(u.codes, dates, closes, prevs, bars, traded)
    index = _equal_weight_index(closes / prevs - 1, traded, dates)
    basic = pd.DataFrame(
        {
            "ts_code": u.codes.astype(str),
            "name": [f"合成{i:04d}" for i in range(n_stocks)],
            "area": rng.choice(AREAS, size=n_stocks),
            "industry": [INDUSTRIES[k] if k >= 0 else None for k in u.industry],
            "list_date": dates[u.first_day].strftime("%Y%m%d"),
        }
    )
    return Market(daily, index, basic, source=f"synthetic(seed={seed})")


def _to_frame(
    codes: np.ndarray,
    dates: pd.DatetimeIndex,
    closes: np.ndarray,
    prevs: np.ndarray,
    bars: dict[str, np.ndarray],
    traded: np.ndarray,
) -> pd.DataFrame:
    order = np.argsort(codes.astype(str), kind="stable")
    mask = traded[:, order].T  # stock-major: rows sorted by ts_code then date

    def flat(a: np.ndarray) -> np.ndarray:
        return a[:, order].T[mask].astype(np.float32)

    n_days = len(dates)
    code_idx = np.repeat(np.arange(len(codes)), n_days).reshape(len(codes), n_days)[mask]
    frame = pd.DataFrame(
        {
            "ts_code": pd.Categorical.from_codes(code_idx, categories=codes[order].astype(str)),
            "trade_date": np.tile(dates.to_numpy(), len(codes)).reshape(len(codes), n_days)[mask],
        }
    )
    for col in ("open", "high", "low"):
        frame[col] = flat(bars[col])
    frame["close"] = flat(closes)
    frame["pre_close"] = flat(prevs)
    frame["change"] = frame["close"] - frame["pre_close"]
    frame["pct_chg"] = (frame["change"] / frame["pre_close"] * 100).astype(np.float32)
    frame["vol"] = flat(bars["vol"])
    frame["amount"] = flat(bars["amount"])
    frame["trade_date"] = frame["trade_date"].astype("datetime64[ns]")
    return frame


def _equal_weight_index(
    ret: np.ndarray, traded: np.ndarray, dates: pd.DatetimeIndex
) -> pd.DataFrame:
    day_ret = np.where(traded, ret, 0).sum(axis=1) / np.maximum(traded.sum(axis=1), 1)
    level = 3000 * np.cumprod(1 + day_ret)
    return pd.DataFrame(
        {
            "trade_date": dates.to_numpy().astype("datetime64[ns]"),
            "close": level.astype(np.float32),
            "pct_chg": (day_ret * 100).astype(np.float32),
        }
    )
