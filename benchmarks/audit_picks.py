"""Audit a run's scored rows against the raw bars, independently of the project's own code.

Reads `predictions/<segment>.parquet` of a run (ts_code, trade_date, probability, pick,
eligible, label, fwd_return) and recomputes from the raw daily bars, with plain pandas written
here and not imported from the package: whether each pick could be bought at the next open (a
bar on the next market day that does not open at the limit-up price), how many trading days the
stock had been listed, the next-open label and forward return, precision, daily top-k precision
and daily Rank IC. With `--run-id` it compares them with the metrics logged on that run.

    python -m benchmarks.audit_picks --predictions path/to/test.parquet \
        --daily ../shared/data/market_daily.parquet \
        --basic ../shared/data/market_stock_basic.csv [--tracking-uri ... --run-id ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

# Price-limit ratio by board (the audit's own, simplified: no ST, no IPO-day exemptions).
CHINEXT_20PCT_FROM = pd.Timestamp("2020-08-24")
# A gain of exactly min_return stored in float32 (5.00 -> 5.20) lands a hair short; the package
# counts it as reached (labels.TIE_MARGIN), and so does the audit.
TIE_MARGIN = 1e-6


def board_limit(codes: pd.Series, dates: pd.Series) -> np.ndarray:
    """The limit-up ratio of each (code, date): 10% main, 20% STAR / ChiNext (new rule), 30% BJ."""
    code = codes.astype(str)
    limit = np.full(len(code), 0.10)
    limit[code.str.startswith("688").to_numpy()] = 0.20
    chinext = code.str.startswith(("300", "301")).to_numpy()
    limit[chinext & (dates >= CHINEXT_20PCT_FROM).to_numpy()] = 0.20
    limit[code.str.endswith(".BJ").to_numpy()] = 0.30
    return limit


def next_day_facts(
    preds: pd.DataFrame,
    daily: pd.DataFrame,
    basic: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    horizon: tuple[int, int],
) -> pd.DataFrame:
    """Per scored row: next-open fillability, listed trading days, next-open label inputs.

    `calendar` is every market trading day (from the whole bar file, not only these stocks).
    An open within 0.2% of the limit ratio counts as at the limit: limits act on raw prices
    rounded to 0.01 CNY, which moves the ratio by at most 0.005 / price (0.2% at 2.5 CNY).
    """
    pos = pd.Series(np.arange(len(calendar)), index=calendar)
    bars = daily.set_index(["ts_code", "trade_date"]).sort_index()
    out = preds.copy()
    t = pos.reindex(out["trade_date"]).to_numpy()
    next_day = calendar[np.minimum(t + 1, len(calendar) - 1)]
    key = pd.MultiIndex.from_arrays([out["ts_code"], next_day])
    nxt = bars.reindex(key)
    out["next_open"] = nxt["open"].to_numpy()
    ratio = nxt["open"].to_numpy() / nxt["pre_close"].to_numpy() - 1
    limit = board_limit(out["ts_code"], pd.Series(next_day))
    out["opens_limit_up"] = ratio >= limit - 0.002
    out["fillable"] = np.isfinite(out["next_open"]) & ~out["opens_limit_up"]
    listed = pd.to_datetime(basic.set_index("ts_code")["list_date"].astype(str), format="%Y%m%d")
    list_pos = calendar.searchsorted(out["ts_code"].map(listed))
    out["listed_days"] = t - list_pos + 1  # the listing day is day 1, as in the universe
    lo, hi = horizon
    closes = [
        bars["close"]
        .reindex(
            pd.MultiIndex.from_arrays(
                [out["ts_code"], calendar[np.minimum(t + k, len(calendar) - 1)]]
            )
        )
        .to_numpy()
        for k in range(1, hi + 1)
    ]
    window = np.column_stack(closes[lo - 1 : hi])
    out["max_close"] = np.nanmax(np.where(np.isfinite(window), window, -np.inf), axis=1)
    last = np.full(len(out), np.nan)
    for c in closes:  # the last close inside T+1..T+hi
        last = np.where(np.isfinite(c), c, last)
    out["audit_fwd_return"] = last / out["next_open"] - 1
    exit_day = np.full(len(out), -1)
    for k in range(lo, hi + 1):  # the day of the last close inside T+lo..T+hi
        exit_day = np.where(np.isfinite(closes[k - 1]), t + k, exit_day)
    out["exit_pos"] = exit_day
    out["t_pos"] = t
    return out


def excess_label(
    facts: pd.DataFrame, index_close: pd.Series, calendar: pd.DatetimeIndex, min_return: float
) -> np.ndarray:
    """label.kind=excess from the raw bars: the stock's return from the next open to its last
    close inside the horizon, minus the index's from its close on T to that exit day."""
    idx = index_close.reindex(calendar).to_numpy(np.float64)
    exit_pos = facts["exit_pos"].to_numpy()
    ok = exit_pos >= 0
    bench = np.full(len(facts), np.nan)
    t = facts["t_pos"].to_numpy()
    bench[ok] = idx[exit_pos[ok]] / idx[t[ok]] - 1
    stock = facts["audit_fwd_return"].to_numpy()
    return (stock - bench >= min_return * (1 - TIE_MARGIN)).astype(float)


def audit(
    facts: pd.DataFrame, min_return: float, top_k: int, label: np.ndarray | None = None
) -> dict[str, float]:
    """Recomputed metrics of the scored rows (the picks, the daily top-k, the daily Rank IC);
    the label is the touch label unless given (`excess_label`)."""
    if label is None:
        target = facts["next_open"] * (1 + min_return) * (1 - TIE_MARGIN)
        label = (facts["max_close"] >= target).astype(float)
    facts = facts.assign(audit_label=label)
    picks = facts[facts["pick"]]
    top = facts.sort_values("probability", ascending=False).groupby("trade_date").head(top_k)
    ranks = facts.groupby("trade_date")[["probability", "audit_fwd_return"]].rank()
    ic = ranks.groupby(facts["trade_date"]).corr().xs("probability", level=1)["audit_fwd_return"]
    return {
        "rows": float(len(facts)),
        "picks": float(len(picks)),
        "picks_fillable_share": float(picks["fillable"].mean()),
        "picks_min_listed_days": float(picks["listed_days"].min()),
        "rows_fillable_share": float(facts["fillable"].mean()),
        "label_mismatch_share": float((facts["audit_label"] != facts["label"]).mean()),
        "precision": float(picks["audit_label"].mean()),
        "topk_precision": float(top.groupby("trade_date")["audit_label"].mean().mean()),
        "rank_ic_mean": float(ic.mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--daily", type=Path, required=True)
    p.add_argument("--basic", type=Path, required=True)
    p.add_argument("--min-return", type=float, default=0.04)
    p.add_argument("--min-days", type=int, default=3)
    p.add_argument("--max-days", type=int, default=5)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--kind", choices=("touch", "excess"), default="touch", help="label.kind")
    p.add_argument("--index", type=Path, help="index bars (ts_code, trade_date, close): excess")
    p.add_argument("--benchmark", default="000905.SH", help="label.benchmark: excess")
    p.add_argument("--out", type=Path, help="write the audit as JSON here")
    args = p.parse_args()
    preds = pd.read_parquet(args.predictions)
    if "eligible" in preds:  # metrics count the universe's rows only
        preds = preds[preds["eligible"].astype(bool)]
    preds = preds[preds["label"].notna()].reset_index(drop=True)
    preds["ts_code"] = preds["ts_code"].astype(str)
    codes = preds["ts_code"].unique().tolist()
    cols = ["ts_code", "trade_date", "open", "close", "pre_close"]
    daily = pd.read_parquet(args.daily, columns=cols, filters=[("ts_code", "in", codes)])
    daily["ts_code"] = daily["ts_code"].astype(str)
    daily["trade_date"] = pd.to_datetime(daily["trade_date"], format="%Y%m%d")
    preds["trade_date"] = pd.to_datetime(preds["trade_date"])
    basic = pd.read_csv(args.basic, dtype=str)
    days = pd.read_parquet(args.daily, columns=["trade_date"])["trade_date"].unique()
    calendar = pd.DatetimeIndex(np.sort(pd.to_datetime(days, format="%Y%m%d")))
    facts = next_day_facts(preds, daily, basic, calendar, (args.min_days, args.max_days))
    label = None
    if args.kind == "excess":
        index = pd.read_parquet(args.index, columns=["ts_code", "trade_date", "close"])
        index = index[index["ts_code"].astype(str) == args.benchmark]
        closes = index.set_index(pd.to_datetime(index["trade_date"], format="%Y%m%d"))["close"]
        label = excess_label(facts, closes, calendar, args.min_return)
    result = audit(facts, args.min_return, args.top_k, label)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
