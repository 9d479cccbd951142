"""The synthetic market's random paths: seeded day blocks, GARCH(1,1) volatility on Student-t
shocks, the factor model of daily returns with the planted reversal, suspensions, and OHLC bars
and volumes consistent with the closes and the price limits.

Every random draw comes from a stream seeded by (seed, stream, block of `BLOCK_DAYS` days), so
day t's draws do not depend on how many days are generated: a longer market starts with the
shorter one (the prefix property, `tests/test_synthetic.py`). Recursions (GARCH, suspensions)
run forward in time, so they keep that property.
"""

from __future__ import annotations

import numpy as np

BLOCK_DAYS = 250
T_DF = 4  # Student-t degrees of freedom of every shock: fat tails (excess kurtosis)
GARCH_ALPHA, GARCH_BETA = 0.08, 0.90  # persistence 0.98: volatility clustering
VAR_CAP = 16.0  # conditional variance at most this many times the unconditional one
REVERSAL_DAYS = 20  # the planted effect's look-back (trading days)
# Expected idiosyncratic return per unit of the stock's volatility and per unit (standardised)
# of its last REVERSAL_DAYS idiosyncratic shocks, negative: a weak 20-day reversal. At
# signal_strength=1 the 20-day reversal's mean daily Rank IC against the 5-day forward return
# is ~0.02 (0.017 on the default 200 stocks, 0.023 on 300; tests/test_synthetic.py).
REVERSAL_COEF = 0.009
SUSPEND_RATE = 0.001  # a stock-day starts a suspension with this probability
SUSPEND_MEAN_DAYS = 4  # geometric length: 1 day most often, some weeks long


def stream(seed: int, key: int, n_days: int, width: int, kind: str = "normal") -> np.ndarray:
    """Draws of shape (n_days, width), block by block of days, each block seeded on its own.

    Args:
        seed: the market's seed.
        key: which stream (each random quantity has its own).
        n_days: rows to return.
        width: columns (1, industries or stocks).
        kind: "normal", "t" (Student-t scaled to unit variance) or "uniform".

    Returns:
        A float array (n_days, width): row t is the same for every n_days > t.
    """
    blocks = []
    for b in range(-(-n_days // BLOCK_DAYS)):
        rng = np.random.default_rng([seed, key, b])
        size = (BLOCK_DAYS, width)
        if kind == "t":
            draw = rng.standard_t(T_DF, size) / np.sqrt(T_DF / (T_DF - 2))
        elif kind == "uniform":
            draw = rng.random(size)
        else:
            draw = rng.standard_normal(size)
        blocks.append(draw)
    return np.concatenate(blocks)[:n_days] if blocks else np.empty((0, width))


def garch(shocks: np.ndarray, vol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) returns on unit-variance shocks, with unconditional volatility `vol`.

    Args:
        shocks: (days, series) unit-variance shocks.
        vol: (series,) unconditional daily volatility of each series.

    Returns:
        (returns, conditional volatility), each (days, series).
    """
    uncond = vol**2
    omega = uncond * (1 - GARCH_ALPHA - GARCH_BETA)
    var = uncond.copy()
    out, sigma = np.empty_like(shocks), np.empty_like(shocks)
    for t in range(len(shocks)):  # forward in time; vectorised over the series
        sigma[t] = np.sqrt(var)
        out[t] = sigma[t] * shocks[t]
        var = np.minimum(omega + GARCH_ALPHA * out[t] ** 2 + GARCH_BETA * var, VAR_CAP * uncond)
    return out, sigma


def planted_reversal(idio_shocks: np.ndarray, idio_vol: np.ndarray, strength: float) -> np.ndarray:
    """Each stock-day's expected idiosyncratic return: minus `REVERSAL_COEF * strength` times
    the stock's volatility times its standardised sum of the previous `REVERSAL_DAYS` shocks
    (days before T only: known at T-1's close).

    Args:
        idio_shocks: (days, stocks) unit-variance idiosyncratic shocks.
        idio_vol: (stocks,) unconditional idiosyncratic daily volatility.
        strength: multiplier of the documented weak effect (0: none).

    Returns:
        (days, stocks) expected returns.
    """
    csum = np.vstack([np.zeros((1, idio_shocks.shape[1])), np.cumsum(idio_shocks, axis=0)])
    t = np.arange(len(idio_shocks))
    past = csum[t] - csum[np.maximum(t - REVERSAL_DAYS, 0)]  # shocks t-20..t-1
    return -REVERSAL_COEF * strength * idio_vol * past / np.sqrt(REVERSAL_DAYS)


def suspensions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Suspended stock-days: a suspension starts where `starts` and lasts `lengths` days.

    Args:
        starts: (days, stocks) bool, a suspension would start that day.
        lengths: (days, stocks) int >= 1, its length in trading days.

    Returns:
        (days, stocks) bool.
    """
    until = np.full(starts.shape[1], -1)
    out = np.zeros(starts.shape, dtype=bool)
    for t in range(len(starts)):
        begin = starts[t] & (until < t)
        until = np.where(begin, t + lengths[t] - 1, until)
        out[t] = until >= t
    return out


def bars(
    prev: np.ndarray,
    raw: np.ndarray,
    limit: np.ndarray,
    sigma: np.ndarray,
    noise: np.ndarray,
) -> dict[str, np.ndarray]:
    """Open, high, low, close of each stock-day from the previous close and the day's return
    before the price limit; a move far beyond the limit is a one-price (locked) day.

    Args:
        prev: (days, stocks) previous close.
        raw: (days, stocks) the day's return before the limit.
        limit: (days, stocks) the price limit (0.1 for +/-10%).
        sigma: (days, stocks) the stock's daily volatility (sets the gap and the range).
        noise: (3, days, stocks) standard normal draws for the gap, the high and the low.

    Returns:
        open, high, low, close (days, stocks), with low <= open, close <= high, all within
        prev * (1 +/- limit).
    """
    lo_lim, hi_lim = prev * (1 - limit), prev * (1 + limit)
    close = prev * (1 + np.clip(raw, -limit, limit))
    open_ = np.clip(prev * (1 + 0.3 * raw + 0.3 * sigma * noise[0]), lo_lim, hi_lim)
    high = np.minimum(np.maximum(open_, close) * (1 + 0.5 * sigma * np.abs(noise[1])), hi_lim)
    low = np.maximum(np.minimum(open_, close) * (1 - 0.5 * sigma * np.abs(noise[2])), lo_lim)
    locked = np.abs(raw) > 1.5 * limit  # opened at the limit and never left it
    open_, high, low = (np.where(locked, close, a) for a in (open_, high, low))
    return {"open": open_, "high": high, "low": low, "close": close}


def volumes(
    base: np.ndarray, ret: np.ndarray, sigma: np.ndarray, vol: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Volume in lots: the stock's base turnover, higher in volatile spells and on big moves.

    Args:
        base: (stocks,) typical lots a day.
        ret: (days, stocks) the day's return (after the limit).
        sigma: (days, stocks) conditional idiosyncratic volatility.
        vol: (stocks,) its unconditional level.
        noise: (days, stocks) standard normal draws.

    Returns:
        (days, stocks) lots traded.
    """
    return base * (sigma / vol) * (1 + 3 * np.abs(ret) / (2 * vol)) * np.exp(0.3 * noise)
