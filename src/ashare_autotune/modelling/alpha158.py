"""qlib's Alpha158 feature set written in the project: vectorised over the whole panel, float32.

The definitions follow qlib's `Alpha158DL.get_feature_config` (9 KBAR, OPEN0 HIGH0 LOW0 VWAP0,
29 rolling operators x windows 5/10/20/30/60) and the semantics of qlib's operators: `Std` is
pandas' sample std (ddof=1), `Corr` is NaN where either side's rolling std is within 2e-5 of 0,
`Rsquare` is NaN where the close's rolling std is, `Rank` is the average rank over the window
divided by its length (qlib since its PR #1228; before, percentileofscore / length),
`IdxMax`/`IdxMin` are the 1-based position of the first extreme counted from the oldest row,
`Quantile` interpolates linearly, and every `+1e-12` guard is kept.

Two deliberate differences, both at the edges of the data:
- qlib evaluates windows with `min_periods=1`; here a value needs the full window of the stock's
  own rows (the project's NaN warm-up), and an operator on a one-day change (`Ref($close, 1)`)
  needs the change on every row of the window, so it starts one row later. Wherever both are
  defined the values are qlib's.
- The data are forward-adjusted prices with raw `vol` and `amount` (see `estimate_vwap`).
  `$volume` is the raw `vol` in lots: qlib's volume is split-adjusted, so around a bonus-share
  issue the volume operators see a jump qlib's would not (every volume feature is a ratio or a
  correlation, so the unit itself does not matter, except for CORR's `Log($volume+1)`).

Rows are sorted by (ts_code, trade_date). Each rolling operator runs once over the whole panel
with a window indexer that stops at the stock's first row (`panel.Panel`), so no window crosses
stocks and pandas' running sums restart at every stock.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.modelling.panel import Panel

WINDOWS = (5, 10, 20, 30, 60)
KBAR = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
PRICE = ("OPEN0", "HIGH0", "LOW0", "VWAP0")
ROLLING = (
    "ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV",
    "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD",
    "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD",
)  # fmt: skip
# qlib's column order: KBAR, price fields, then each operator over all its windows
ALPHA158: tuple[str, ...] = (*KBAR, *PRICE, *(f"{op}{w}" for op in ROLLING for w in WINDOWS))
EPS = 1e-12  # qlib's guard against a zero denominator
FLAT_STD = 2e-5  # qlib: np.isclose(rolling std, 0, atol=2e-5) -> NaN correlation / R-square
VWAP_WINDOWS = (5, 10, 20)  # trailing windows tried for the price-adjustment factor
VWAP_SLACK = 1e-3  # adjusted prices are rounded to 0.01: bounds may overlap by this much less


def estimate_vwap(p: Panel) -> np.ndarray:
    """The day's volume-weighted price on the forward-adjusted basis of the prices.

    Raw vwap is amount * 1000 / (vol * 100) CNY per share; the prices are raw * f with an
    unknown adjustment factor f that only changes at a corporate action. Raw low <= raw vwap <=
    raw high, so each day bounds f to [low / vwap_raw, high / vwap_raw]; over trailing rows of
    one factor the bounds intersect. f is the midpoint of the intersection over the longest of
    20, 10, 5 or 1 trailing rows whose bounds still intersect (a corporate action inside the
    window empties it), so it uses rows up to T only. On the 300 real stocks of
    `../shared/data/daily.parquet` the estimated f moves from one day to the next by less than
    0.06% on 90% of days and 0.35% on 99% (0.24% of days move by more than 1%: about one
    corporate action per stock and year); a small dividend inside the window may leave the
    bounds overlapping and bias f by up to its size until it leaves the window.

    Returns:
        adjusted vwap per row (NaN where vol or amount is 0 or missing).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = p["amount"] * 10.0 / p["vol"]
        raw[~(raw > 0) | ~np.isfinite(raw)] = np.nan
        lo_day, hi_day = p["low"] / raw, p["high"] / raw
    lo_f, hi_f = lo_day, hi_day
    for window in VWAP_WINDOWS:
        lo_w = p.roll(lo_day, window, full=False).max().to_numpy()
        hi_w = p.roll(hi_day, window, full=False).min().to_numpy()
        ok = lo_w <= hi_w * (1 + VWAP_SLACK)
        lo_f, hi_f = np.where(ok, lo_w, lo_f), np.where(ok, hi_w, hi_f)
    return raw * (lo_f + hi_f) / 2


def alpha158_features(daily: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """Compute qlib's Alpha158 features for every row of a daily panel.

    Args:
        daily: bars sorted by (ts_code, trade_date) with open, high, low, close (forward-adjusted),
            vol (lots) and amount (thousand CNY).
        names: columns to return, in this order (default: all 158 of `ALPHA158`).

    Returns:
        one float32 column per name, index and row order of `daily`; +-inf become NaN.
    """
    names = check_names(names)
    wanted = set(names)
    needed = ["ts_code", "open", "high", "low", "close", "vol"] + ["amount"] * ("VWAP0" in wanted)
    missing = [col for col in needed if col not in daily.columns]
    if missing:
        raise DataError(f"daily bars: column(s) {missing} missing (needed by alpha158 features)")
    block = np.empty((len(names), len(daily)), dtype=np.float32)
    for name, values in _compute(Panel(daily), wanted):
        if name in wanted:
            values = np.where(np.isfinite(values), values, np.nan)  # +-inf -> NaN, one column
            block[names.index(name)] = values  # float64 -> float32 one column at a time
    return pd.DataFrame(block.T, columns=names, index=daily.index, copy=False)


def check_names(names: list[str] | None) -> list[str]:
    """The requested Alpha158 names, or all of them; one-line error for an unknown name."""
    names = list(ALPHA158 if names is None else names)
    unknown = sorted(set(names) - set(ALPHA158))
    if unknown:
        raise ConfigError(f"config key 'features.alpha158': unknown feature(s) {unknown}")
    return names


def _compute(p: Panel, wanted: set[str]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, float64 values) for the wanted features, one window at a time.

    Window-major, so what several operators share (rolling max, std, sums of changes) is
    computed once per window and dropped before the next window.
    """
    o, h, lo, c = p["open"], p["high"], p["low"], p["close"]
    if wanted & set(KBAR):
        yield from _kbar(o, h, lo, c)
    yield from (("OPEN0", o / c), ("HIGH0", h / c), ("LOW0", lo / c))
    if "VWAP0" in wanted:
        yield "VWAP0", estimate_vwap(p) / c
    base = _Inputs(p)
    for w in WINDOWS:
        ops = [op for op in ROLLING if f"{op}{w}" in wanted]
        if ops:
            window = _Window(p, base, w)
            yield from ((f"{op}{w}", window.value(op)) for op in ops)


def _kbar(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> Iterator[tuple[str, np.ndarray]]:
    span = h - lo + EPS
    up, down = h - np.maximum(o, c), np.minimum(o, c) - lo
    shift = 2 * c - h - lo
    yield from (("KMID", (c - o) / o), ("KLEN", (h - lo) / o), ("KMID2", (c - o) / span))
    yield from (("KUP", up / o), ("KUP2", up / span), ("KLOW", down / o), ("KLOW2", down / span))
    yield from (("KSFT", shift / o), ("KSFT2", shift / span))


class _Inputs:
    """Row-wise inputs of the rolling operators (the same for every window)."""

    def __init__(self, p: Panel) -> None:
        c, v = p["close"], p["vol"]
        self.prev_c, prev_v = p.lag(c), p.lag(v)
        self.dc, self.dv = c - self.prev_c, v - prev_v
        # comparisons with a missing previous close are missing, not False (module docstring)
        self.up = np.where(np.isnan(self.dc), np.nan, self.dc > 0)
        self.down = np.where(np.isnan(self.dc), np.nan, self.dc < 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.log_v = np.log(v + 1)
            self.log_dv = np.log(v / prev_v + 1)
            self.wv = np.abs(c / self.prev_c - 1) * v


class _Window:
    """The 29 rolling operators over one window; shared pieces are computed once."""

    def __init__(self, p: Panel, base: _Inputs, w: int) -> None:
        self.p, self.b, self.w = p, base, w
        self.c, self.v = p["close"], p["vol"]

    def value(self, op: str) -> np.ndarray:
        """Values of operator `op` (qlib's name without the window) over this window."""
        return getattr(self, "_corr_" if op == "CORR" else f"_{op.lower()}")()

    def _roll(self, x: np.ndarray) -> Any:
        return self.p.roll(x, self.w)

    @cached_property
    def std_c(self) -> np.ndarray:
        return self._roll(self.c).std().to_numpy()

    @cached_property
    def mean_c(self) -> np.ndarray:
        return self._roll(self.c).mean().to_numpy()

    @cached_property
    def slope_c(self) -> np.ndarray:
        return _slope(self.p, self.c, self.w)

    @cached_property
    def max_h(self) -> np.ndarray:
        return self._roll(self.p["high"]).max().to_numpy()

    @cached_property
    def min_l(self) -> np.ndarray:
        return self._roll(self.p["low"]).min().to_numpy()

    @cached_property
    def idx_max(self) -> np.ndarray:
        return self.p.arg_extreme(self.p["high"], self.w, "max")

    @cached_property
    def idx_min(self) -> np.ndarray:
        return self.p.arg_extreme(self.p["low"], self.w, "min")

    @cached_property
    def cnt_up(self) -> np.ndarray:
        return self._roll(self.b.up).mean().to_numpy()

    @cached_property
    def cnt_down(self) -> np.ndarray:
        return self._roll(self.b.down).mean().to_numpy()

    @cached_property
    def sums_c(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._gain_loss_abs(self.b.dc)

    @cached_property
    def sums_v(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._gain_loss_abs(self.b.dv)

    def _gain_loss_abs(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sums of Greater(d, 0), Greater(-d, 0) and Abs(d) + 1e-12 over the window."""
        total = [self._roll(x).sum().to_numpy() for x in (np.maximum(d, 0), np.maximum(-d, 0))]
        return total[0], total[1], self._roll(np.abs(d)).sum().to_numpy() + EPS

    def _corr(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = self._roll(x).corr(pd.Series(y, copy=False)).to_numpy().copy()
        flat_x = np.abs(self._roll(x).std().to_numpy()) <= FLAT_STD
        out[flat_x | (np.abs(self._roll(y).std().to_numpy()) <= FLAT_STD)] = np.nan
        return out

    def _roc(self) -> np.ndarray:
        return self.p.lag(self.c, self.w) / self.c

    def _ma(self) -> np.ndarray:
        return self.mean_c / self.c

    def _std(self) -> np.ndarray:
        return self.std_c / self.c

    def _beta(self) -> np.ndarray:
        return self.slope_c / self.c

    def _rsqr(self) -> np.ndarray:
        k = np.arange(self.w) - (self.w - 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.slope_c**2 * (k @ k) / ((self.w - 1) * self.std_c**2)
        out[np.abs(self.std_c) <= FLAT_STD] = np.nan
        return out

    def _resi(self) -> np.ndarray:
        # residual of the last row from the window's least-squares line through its centre
        return (self.c - self.mean_c - self.slope_c * (self.w - 1) / 2) / self.c

    def _max(self) -> np.ndarray:
        return self.max_h / self.c

    def _min(self) -> np.ndarray:
        return self.min_l / self.c

    @cached_property
    def quantiles_c(self) -> list[np.ndarray]:
        return self.p.quantiles(self.c, self.w, (0.8, 0.2))  # one partition for both

    def _qtlu(self) -> np.ndarray:
        return self.quantiles_c[0] / self.c

    def _qtld(self) -> np.ndarray:
        return self.quantiles_c[1] / self.c

    def _rank(self) -> np.ndarray:
        return self.p.rank_last(self.c, self.w)

    def _rsv(self) -> np.ndarray:
        return (self.c - self.min_l) / (self.max_h - self.min_l + EPS)

    def _imax(self) -> np.ndarray:
        return self.idx_max / self.w

    def _imin(self) -> np.ndarray:
        return self.idx_min / self.w

    def _imxd(self) -> np.ndarray:
        return (self.idx_max - self.idx_min) / self.w

    def _corr_(self) -> np.ndarray:
        return self._corr(self.c, self.b.log_v)

    def _cord(self) -> np.ndarray:
        return self._corr(self.c / self.b.prev_c, self.b.log_dv)

    def _cntp(self) -> np.ndarray:
        return self.cnt_up

    def _cntn(self) -> np.ndarray:
        return self.cnt_down

    def _cntd(self) -> np.ndarray:
        return self.cnt_up - self.cnt_down

    def _sump(self) -> np.ndarray:
        return self.sums_c[0] / self.sums_c[2]

    def _sumn(self) -> np.ndarray:
        return self.sums_c[1] / self.sums_c[2]

    def _sumd(self) -> np.ndarray:
        return (self.sums_c[0] - self.sums_c[1]) / self.sums_c[2]

    def _vma(self) -> np.ndarray:
        return self._roll(self.v).mean().to_numpy() / (self.v + EPS)

    def _vstd(self) -> np.ndarray:
        return self._roll(self.v).std().to_numpy() / (self.v + EPS)

    def _wvma(self) -> np.ndarray:
        rolled = self._roll(self.b.wv)
        return rolled.std().to_numpy() / (rolled.mean().to_numpy() + EPS)

    def _vsump(self) -> np.ndarray:
        return self.sums_v[0] / self.sums_v[2]

    def _vsumn(self) -> np.ndarray:
        return self.sums_v[1] / self.sums_v[2]

    def _vsumd(self) -> np.ndarray:
        return (self.sums_v[0] - self.sums_v[1]) / self.sums_v[2]


def _slope(p: Panel, y: np.ndarray, w: int) -> np.ndarray:
    """Least-squares slope of y on 1..w over the full window (centred weights: no cancellation)."""
    k = np.arange(w, dtype=np.float64) - (w - 1) / 2
    out = np.full(len(y), np.nan)
    if len(y) >= w:
        # correlate(y, k)[i] = sum_j k[j] * y[i + j]: the window ending at row i + w - 1
        out[w - 1 :] = np.correlate(y, k, mode="valid") / (k @ k)
    out[p.pos < w - 1] = np.nan
    return out
