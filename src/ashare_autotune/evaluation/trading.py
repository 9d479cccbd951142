"""The trading view of a scored segment: would the picks have made money, day by day?

Pure functions: a frame of scored rows in, metrics and a per-day table out. Forward returns are
the dataset's `fwd_return` (buy at the label's entry, sell at the end of the label horizon).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.evaluation.threshold import capped_picks
from ashare_autotune.modelling.dataset import Dataset

REGIMES = ("up", "down")


@dataclass
class TradingView:
    """The trading view of a scored segment: its daily table, its `<segment>_*` metrics
    (`trading_metrics`) and its summary in markdown (with the signal metrics)."""

    table: pd.DataFrame
    metrics: dict[str, float]
    summary: str


def trading_view(
    ds: Dataset,
    segment: str,
    scores: np.ndarray,
    threshold: float,
    index: pd.DataFrame,
    signal: dict[str, float],
    top_k: int,
    cap: int,
) -> TradingView:
    """The trading view of one scored segment of the dataset.

    Args:
        ds: the dataset whose segment was scored.
        segment: "test" (or "val").
        scores: the model's score of every candidate of the segment (`Dataset.predict(...,
            all_rows=True)`).
        threshold: the pick threshold.
        index: the market index's bars (the regime of each day).
        signal: the segment's signal metrics (`records.signal_metrics`), for the summary.
        top_k: the day's top-k list (`trading.top_k`).
        cap: the picks a day that count (`threshold.max_picks_per_day`).
    """
    rows = ds.segment_rows(segment, ["trade_date", "label", "fwd_return", "fillable"], True)
    table = daily_table(rows, scores, threshold, top_k, market_regime(index), cap)
    metrics = trading_metrics(rows, scores, threshold, table, segment, cap)
    return TradingView(table, metrics, summary_markdown(metrics | signal, table, segment))


def market_regime(index: pd.DataFrame) -> pd.Series:
    """ "up" on days the index closed higher than the day before, else "down", by trade_date.

    The regime is the pick day's own move, known at the close when the picks are made.
    """
    change = index.set_index("trade_date")["close"].astype(np.float64).pct_change()
    regime = np.where(change > 0, "up", "down")
    return pd.Series(regime, index=change.index, name="regime").loc[change.notna()]


def pick_returns(fwd_return: np.ndarray, picked: np.ndarray) -> dict[str, float]:
    """Mean forward return of the picks, of the whole universe, and the difference.

    Args:
        fwd_return: forward return per row (NaN where unknown).
        picked: boolean pick flag per row.
    """
    fwd = np.asarray(fwd_return, dtype=np.float64)
    picked = np.asarray(picked, dtype=bool)
    picks = float(np.nanmean(fwd[picked])) if np.isfinite(fwd[picked]).any() else float("nan")
    universe = float(np.nanmean(fwd)) if np.isfinite(fwd).any() else float("nan")
    return {
        "mean_fwd_return_picks": picks,
        "mean_fwd_return_universe": universe,
        "excess_fwd_return": picks - universe,
    }


def daily_table(
    rows: pd.DataFrame,
    proba: np.ndarray,
    threshold: float,
    top_k: int,
    regime: pd.Series,
    max_picks_per_day: int | None = None,
) -> pd.DataFrame:
    """One row per trading day: picks, hits, top-k precision and forward returns.

    The top k are ranked among all the day's candidates and an unfillable one is not bought,
    as in `signal.daily_signal`; hits and precisions count the rows with a label.

    Args:
        rows: trade_date, label (0/1, NaN where unknown), fwd_return and optionally fillable
            (default: every row fills) per scored candidate.
        proba: the model's probability per row.
        threshold: a row is a pick when proba >= threshold.
        top_k: the k highest-probability stocks of each day form the top-k list.
        regime: "up"/"down" by trade_date (see `market_regime`).
        max_picks_per_day: the picks a day that count, the day's best scores
            (`threshold.capped_picks`); None: every row >= threshold.

    Returns:
        Columns trade_date, regime, n_stocks, n_picks, pick_hits, pick_labelled,
        pick_precision, pick_fwd_return, topk_n (bought), topk_precision, topk_fwd_return,
        universe_fwd_return, universe_base_rate; sorted by trade_date.
    """
    fills = rows["fillable"].to_numpy(bool) if "fillable" in rows else np.ones(len(rows), bool)
    frame = pd.DataFrame(
        {
            "trade_date": rows["trade_date"].to_numpy(),
            "label": rows["label"].to_numpy(np.float64),
            "fwd": rows["fwd_return"].to_numpy(np.float64),
            "proba": np.asarray(proba, dtype=np.float64),
        }
    )
    frame["pick"] = _picks(
        frame["proba"].to_numpy(), frame["trade_date"], threshold, max_picks_per_day
    )
    rank = frame.groupby("trade_date")["proba"].rank(method="first", ascending=False)
    frame["topk"] = (rank <= top_k) & fills
    by_day = frame.groupby("trade_date", sort=True)
    picks = frame.loc[frame["pick"]].groupby("trade_date")
    table = pd.DataFrame(
        {
            "n_stocks": by_day.size(),
            "n_picks": by_day["pick"].sum(),
            "pick_hits": picks["label"].sum(),
            "pick_labelled": picks["label"].count(),
            "pick_fwd_return": picks["fwd"].mean(),
            "topk_n": by_day["topk"].sum(),
            "topk_precision": frame.loc[frame["topk"]].groupby("trade_date")["label"].mean(),
            "topk_fwd_return": frame.loc[frame["topk"]].groupby("trade_date")["fwd"].mean(),
            "universe_fwd_return": by_day["fwd"].mean(),
            "universe_base_rate": by_day["label"].mean(),
        }
    )
    for name in ("pick_hits", "pick_labelled", "n_picks", "topk_n"):
        table[name] = table[name].fillna(0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["pick_precision"] = np.where(
            table["pick_labelled"] > 0,
            table["pick_hits"] / table["pick_labelled"].clip(lower=1),
            np.nan,
        )
    table.index.name = "trade_date"
    table = table.reset_index()
    table.insert(1, "regime", table["trade_date"].map(regime).fillna("unknown").to_numpy())
    return table


def trading_metrics(
    rows: pd.DataFrame,
    proba: np.ndarray,
    threshold: float,
    table: pd.DataFrame,
    prefix: str,
    max_picks_per_day: int | None = None,
) -> dict[str, float]:
    """Summary metrics of the trading view, named `<prefix>_<metric>`.

    Args:
        rows: fwd_return per scored row.
        proba: the model's probability per row.
        threshold: the pick threshold.
        table: the `daily_table` of the same rows.
        prefix: the segment, e.g. "test".
        max_picks_per_day: as in `daily_table`.

    Returns:
        mean forward returns of the threshold picks, the top-k and the universe, and per regime
        the days, the hit rate of the picks and of the top-k.
    """
    picked = _picks(np.asarray(proba), rows["trade_date"], threshold, max_picks_per_day)
    out = pick_returns(rows["fwd_return"].to_numpy(np.float64), picked)
    # top-k precision, excess return, picks per day and days are the signal metrics
    # (`records.signal_metrics`): one definition under one name.
    out["topk_mean_fwd_return"] = _mean(table["topk_fwd_return"])
    for regime in REGIMES:
        day = table.loc[table["regime"] == regime]
        picks = int(day["pick_labelled"].sum())
        out[f"n_days_{regime}"] = float(len(day))
        out[f"hit_rate_{regime}"] = float(day["pick_hits"].sum() / picks) if picks else np.nan
        out[f"topk_hit_rate_{regime}"] = _weighted(day["topk_precision"], day["topk_n"])
    return {f"{prefix}_{k}": v for k, v in out.items()}


def _picks(proba: np.ndarray, days: pd.Series, threshold: float, cap: int | None) -> np.ndarray:
    """Rows >= threshold, at most `cap` a day (the day's best) when a cap is given."""
    if cap is None:
        return np.asarray(proba) >= threshold
    return capped_picks(proba, days.to_numpy(), threshold, cap)


def _mean(values: pd.Series) -> float:
    values = pd.Series(values, dtype=np.float64).dropna()
    return float(values.mean()) if len(values) else float("nan")


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna() & (weights > 0)
    total = float(weights[ok].sum())
    return float((values[ok] * weights[ok]).sum() / total) if total else float("nan")


def summary_markdown(metrics: dict[str, float], table: pd.DataFrame, prefix: str) -> str:
    """A small markdown report: the headline metrics and a breakdown by market regime."""
    m = {k.removeprefix(f"{prefix}_"): v for k, v in metrics.items() if k.startswith(prefix)}
    lines = [
        f"# Trading view of the {prefix} segment",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in (  # with the signal metrics of the same segment (`records.signal_metrics`)
        "topk_precision_mean",
        "topk_mean_fwd_return",
        "topk_excess_return_mean",
        "mean_fwd_return_picks",
        "mean_fwd_return_universe",
        "excess_fwd_return",
        "picks_per_day",
        "days_with_picks",
        "days",
    ):
        lines.append(f"| {key} | {_fmt(key, m.get(key, float('nan')))} |")
    lines += [
        "",
        "| regime | days | picks | pick hit rate | top-k hit rate | "
        "mean fwd return picks | mean fwd return universe |",
        "|---|---|---|---|---|---|---|",
    ]
    for regime in REGIMES:
        day = table.loc[table["regime"] == regime]
        picks_fwd = _weighted(day["pick_fwd_return"], day["n_picks"])
        lines.append(
            f"| {regime} | {len(day)} | {int(day['n_picks'].sum())} | "
            f"{_fmt('rate', m.get(f'hit_rate_{regime}', np.nan))} | "
            f"{_fmt('rate', m.get(f'topk_hit_rate_{regime}', np.nan))} | "
            f"{_fmt('return', picks_fwd)} | {_fmt('return', _mean(day['universe_fwd_return']))} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(key: str, value: float) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if "return" in key:
        return f"{value:.3%}"
    if key.startswith(("n_", "picks_per", "days")):
        return f"{value:.1f}"
    return f"{value:.4f}"
