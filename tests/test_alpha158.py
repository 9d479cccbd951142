"""Alpha158: every operator equals a plain per-stock pandas reference of qlib's definition, uses
only rows up to T of the same stock, and comes out float32 with qlib's names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import percentileofscore

from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.modelling.alpha158 import (
    ALPHA158,
    KBAR,
    ROLLING,
    WINDOWS,
    alpha158_features,
)

EPS = 1e-12


def make_panel(seed: int = 3, lengths: tuple[int, ...] = (150, 90, 130, 40)) -> pd.DataFrame:
    """A few stocks of different lengths; prices on a 0.01 grid (ties), a flat stretch."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, n in enumerate(lengths):
        close = np.round(20 * (1 + i) * np.exp(np.cumsum(rng.normal(0, 0.02, n))), 2)
        if i == 0:
            close[60:75] = close[60]  # a suspension-like flat run: qlib's flat-std guards
        opn = np.round(close * (1 + rng.normal(0, 0.01, n)), 2)
        high = np.maximum(opn, close) + np.round(rng.uniform(0, 0.3, n), 2)
        low = np.minimum(opn, close) - np.round(rng.uniform(0, 0.3, n), 2)
        vol = np.round(rng.lognormal(10, 0.5, n))
        if i == 0:
            high[60:75], low[60:75], opn[60:75] = close[60:75], close[60:75], close[60:75]
        vwap = low + (high - low) * rng.uniform(0.2, 0.8, n)
        frames.append(
            pd.DataFrame(
                {
                    "ts_code": f"{600000 + i}.SH",
                    "trade_date": pd.bdate_range("2020-01-01", periods=n).strftime("%Y%m%d"),
                    "open": opn,
                    "high": high,
                    "low": low,
                    "close": close,
                    "vol": vol,
                    "amount": vwap * vol / 10,  # thousand CNY for lots of 100 at vwap
                }
            )
        )
    daily = pd.concat(frames, ignore_index=True)
    return daily.astype({c: np.float32 for c in daily.columns[2:]})


def _apply(s: pd.Series, w: int, fn) -> pd.Series:  # noqa: ANN001
    return s.rolling(w).apply(fn, raw=True)


def _corr(x: pd.Series, y: pd.Series, w: int) -> pd.Series:
    """Plain loop: np.corrcoef of each full window; NaN where either side is flat (qlib)."""
    out = pd.Series(np.nan, index=x.index)
    for end in range(w, len(x) + 1):
        a, b = x.iloc[end - w : end].to_numpy(), y.iloc[end - w : end].to_numpy()
        if np.isnan(a).any() or np.isnan(b).any():
            continue
        if np.std(a, ddof=1) <= 2e-5 or np.std(b, ddof=1) <= 2e-5:
            continue
        out.iloc[end - 1] = np.corrcoef(a, b)[0, 1]
    return out


def _line(x: np.ndarray) -> tuple[float, float]:
    return tuple(np.polyfit(np.arange(1, len(x) + 1), x, 1))  # slope, intercept


def _rsquare(x: np.ndarray) -> float:
    if np.std(x, ddof=1) <= 2e-5:
        return np.nan
    return np.corrcoef(np.arange(len(x)), x)[0, 1] ** 2


def reference(g: pd.DataFrame, w: int) -> dict[str, pd.Series]:
    """qlib's rolling expressions for one stock, full windows only, written the obvious way."""
    g = g.astype({c: np.float64 for c in ("open", "high", "low", "close", "vol")})
    c, h, lo, v = g["close"], g["high"], g["low"], g["vol"]
    prev_c, prev_v = c.shift(1), v.shift(1)
    known = prev_c.notna()
    up, down = (c > prev_c).where(known), (c < prev_c).where(known)
    gain, loss = (c - prev_c).clip(lower=0), (prev_c - c).clip(lower=0)
    vgain, vloss = (v - prev_v).clip(lower=0), (prev_v - v).clip(lower=0)
    move, vmove = (c - prev_c).abs().rolling(w).sum() + EPS, (v - prev_v).abs().rolling(w).sum()
    wv = (c / prev_c - 1).abs() * v
    idx_max = _apply(h, w, lambda x: np.argmax(x) + 1)
    idx_min = _apply(lo, w, lambda x: np.argmin(x) + 1)
    low_w, high_w = lo.rolling(w).min(), h.rolling(w).max()
    return {
        "ROC": c.shift(w) / c,
        "MA": _apply(c, w, np.mean) / c,
        "STD": _apply(c, w, lambda x: np.std(x, ddof=1)) / c,
        "BETA": _apply(c, w, lambda x: _line(x)[0]) / c,
        "RSQR": _apply(c, w, _rsquare),
        "RESI": _apply(c, w, lambda x: x[-1] - np.polyval(_line(x), len(x))) / c,
        "MAX": _apply(h, w, np.max) / c,
        "MIN": _apply(lo, w, np.min) / c,
        "QTLU": _apply(c, w, lambda x: np.quantile(x, 0.8)) / c,
        "QTLD": _apply(c, w, lambda x: np.quantile(x, 0.2)) / c,
        "RANK": _apply(c, w, lambda x: percentileofscore(x, x[-1]) / 100),
        "RSV": (c - low_w) / (high_w - low_w + EPS),
        "IMAX": idx_max / w,
        "IMIN": idx_min / w,
        "IMXD": (idx_max - idx_min) / w,
        "CORR": _corr(c, np.log(v + 1), w),
        "CORD": _corr(c / prev_c, np.log(v / prev_v + 1), w),
        "CNTP": up.rolling(w).mean(),
        "CNTN": down.rolling(w).mean(),
        "CNTD": up.rolling(w).mean() - down.rolling(w).mean(),
        "SUMP": gain.rolling(w).sum() / move,
        "SUMN": loss.rolling(w).sum() / move,
        "SUMD": (gain.rolling(w).sum() - loss.rolling(w).sum()) / move,
        "VMA": v.rolling(w).mean() / (v + EPS),
        "VSTD": _apply(v, w, lambda x: np.std(x, ddof=1)) / (v + EPS),
        "WVMA": _apply(wv, w, lambda x: np.std(x, ddof=1)) / (wv.rolling(w).mean() + EPS),
        "VSUMP": vgain.rolling(w).sum() / (vmove + EPS),
        "VSUMN": vloss.rolling(w).sum() / (vmove + EPS),
        "VSUMD": (vgain.rolling(w).sum() - vloss.rolling(w).sum()) / (vmove + EPS),
    }


References = list[tuple[pd.Index, int, dict[str, pd.Series]]]


def references(daily: pd.DataFrame) -> References:
    """The reference of every operator, per stock and window (computed once: it is slow)."""
    return [
        (g.index, w, reference(g, w))
        for _, g in daily.groupby("ts_code", sort=False)
        for w in WINDOWS
    ]


def assert_matches_reference(refs: References, feats: pd.DataFrame, op: str) -> None:
    for rows, w, ref in refs:
        want, got = ref[op].astype(np.float32), feats.loc[rows, f"{op}{w}"]
        assert got.isna().equals(want.isna()), f"{op}{w}: NaN pattern"
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=f"{op}{w}")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def feats(panel: pd.DataFrame) -> pd.DataFrame:
    return alpha158_features(panel)


@pytest.fixture(scope="module")
def refs(panel: pd.DataFrame) -> References:
    return references(panel)


def test_names_are_qlibs_158_in_qlibs_order_and_columns_are_float32(
    panel: pd.DataFrame, feats: pd.DataFrame
) -> None:
    assert len(ALPHA158) == 158 == len(set(ALPHA158))
    assert ALPHA158[:13] == (*KBAR, "OPEN0", "HIGH0", "LOW0", "VWAP0")
    assert ALPHA158[13:18] == ("ROC5", "ROC10", "ROC20", "ROC30", "ROC60")
    assert ALPHA158[-1] == "VSUMD60" and len(ROLLING) == 29
    assert list(feats.columns) == list(ALPHA158)
    assert (feats.dtypes == np.float32).all()
    assert feats.index.equals(panel.index)


@pytest.mark.parametrize("op", ROLLING)
def test_rolling_operator_equals_the_pandas_reference(
    op: str, refs: References, feats: pd.DataFrame
) -> None:
    assert_matches_reference(refs, feats, op)


def test_flat_prices_give_nan_correlation_and_r_square_as_in_qlib(feats: pd.DataFrame) -> None:
    # rows 60..74 of the first stock are one flat price: the 5-row windows inside it
    assert feats.loc[64:74, "RSQR5"].isna().all()
    assert feats.loc[64:74, "CORR5"].isna().all()
    assert feats.loc[64:74, "STD5"].eq(0).all()


def test_a_nearly_flat_close_counts_as_flat_below_qlibs_2e5_std() -> None:
    panel = make_panel(lengths=(80,))
    wiggle = (20.0 + 1e-5 * (np.arange(20) % 2)).astype(np.float32)  # std ~5e-6 < 2e-5
    for col in ("open", "high", "low", "close"):
        panel.loc[30:49, col] = wiggle
    feats = alpha158_features(panel, ["STD5", "RSQR5", "CORR5"])
    inside = feats.loc[34:49]
    assert (inside["STD5"] > 0).all()
    assert inside["RSQR5"].isna().all() and inside["CORR5"].isna().all()


def test_kbar_and_price_fields_follow_qlibs_formulas(
    panel: pd.DataFrame, feats: pd.DataFrame
) -> None:
    o, h, lo, c = (panel[k].astype(np.float64) for k in ("open", "high", "low", "close"))
    want = {
        "KMID": (c - o) / o,
        "KLEN": (h - lo) / o,
        "KMID2": (c - o) / (h - lo + EPS),
        "KUP": (h - np.maximum(o, c)) / o,
        "KUP2": (h - np.maximum(o, c)) / (h - lo + EPS),
        "KLOW": (np.minimum(o, c) - lo) / o,
        "KLOW2": (np.minimum(o, c) - lo) / (h - lo + EPS),
        "KSFT": (2 * c - h - lo) / o,
        "KSFT2": (2 * c - h - lo) / (h - lo + EPS),
        "OPEN0": o / c,
        "HIGH0": h / c,
        "LOW0": lo / c,
    }
    for name, values in want.items():
        np.testing.assert_allclose(feats[name], values, rtol=1e-6, atol=1e-7, err_msg=name)


def test_vwap_on_unadjusted_prices_is_amount_over_volume(feats: pd.DataFrame) -> None:
    """Prices with factor 1: the estimated factor is within the bounds, near the true vwap."""
    panel = make_panel()
    true = panel["amount"].astype(np.float64) * 10 / panel["vol"] / panel["close"]
    assert (feats["VWAP0"] >= feats["LOW0"] * (1 - 2e-3)).all()
    assert (feats["VWAP0"] <= feats["HIGH0"] * (1 + 2e-3)).all()
    assert np.median(np.abs(feats["VWAP0"] / true - 1)) < 2e-3


def test_vwap_after_a_bonus_issue_uses_the_new_factor_only() -> None:
    """A 2x share split in the raw bars (volume doubles, raw prices halve) on forward-adjusted
    prices: the estimate must not mix the two factors on the ex-date or after it."""
    panel = make_panel(lengths=(80,))
    true = panel["amount"].astype(np.float64) * 10 / panel["vol"] / panel["close"]
    before = alpha158_features(panel, ["VWAP0"])["VWAP0"]
    split = panel.copy()
    split.loc[40:, "vol"] *= 2  # raw: twice the shares for the same amount after the split
    after = alpha158_features(split, ["VWAP0"])["VWAP0"]
    np.testing.assert_allclose(after.iloc[:40], before.iloc[:40])
    assert np.abs(after.iloc[40:] / true.iloc[40:] - 1).max() < 0.02


def test_features_at_t_ignore_every_bar_after_t(panel: pd.DataFrame) -> None:
    cut = "20200401"
    before = alpha158_features(panel)
    later = panel["trade_date"] > cut
    changed = panel.copy()
    rng = np.random.default_rng(1)
    for col in ("open", "high", "low", "close", "vol", "amount"):
        noise = rng.uniform(0.5, 2.0, later.sum()).astype(np.float32)
        changed.loc[later, col] = changed.loc[later, col] * noise
    after = alpha158_features(changed)
    pd.testing.assert_frame_equal(before[~later], after[~later])
    assert not before.loc[later, "MA20"].equals(after.loc[later, "MA20"])  # the edit bit


def test_rolling_windows_never_reach_into_the_previous_stock(panel: pd.DataFrame) -> None:
    first = panel["ts_code"] == panel["ts_code"].iloc[0]
    changed = panel.copy()
    changed.loc[first, ["open", "high", "low", "close"]] *= 3.0
    changed.loc[first, "vol"] *= 7.0
    before, after = alpha158_features(panel), alpha158_features(changed)
    pd.testing.assert_frame_equal(before[~first], after[~first])
    second = panel.index[panel["ts_code"] == panel["ts_code"].unique()[1]]
    assert before.loc[second[:59], "MA60"].isna().all()  # warm-up: the stock's own 60 rows
    assert before.loc[second[59:], "MA60"].notna().all()


def test_a_selection_of_names_is_returned_in_the_given_order(panel: pd.DataFrame) -> None:
    some = alpha158_features(panel, ["STD20", "KMID", "RANK5"])
    full = alpha158_features(panel)
    pd.testing.assert_frame_equal(some, full[["STD20", "KMID", "RANK5"]])


def test_an_unknown_name_is_a_one_line_config_error(panel: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="features.alpha158.*'STD7'"):
        alpha158_features(panel, ["STD7"])


def test_missing_bar_columns_are_a_one_line_data_error(panel: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"\['amount'\] missing"):
        alpha158_features(panel.drop(columns="amount"))
    assert "VWAP0" not in alpha158_features(panel.drop(columns="amount"), ["KMID", "MA5"])


def test_real_stocks_match_the_reference_for_every_operator(shared_data: Path) -> None:
    """Three real stocks (forward-adjusted, with suspensions and limit days), last 160 bars."""
    daily = pd.read_parquet(shared_data / "daily.parquet")
    codes = ["000001.SZ", "300059.SZ", "600519.SH"]
    codes = [c for c in codes if c in set(daily["ts_code"])] or list(daily["ts_code"].unique()[:3])
    sample = daily[daily["ts_code"].isin(codes)].sort_values(["ts_code", "trade_date"])
    sample = sample.groupby("ts_code").tail(160).reset_index(drop=True)
    feats, refs = alpha158_features(sample), references(sample)
    for op in ROLLING:
        assert_matches_reference(refs, feats, op)
