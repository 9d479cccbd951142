"""Signal analysis per day, then summarised: IC, Rank IC, top-k precision and excess return.

As qlib's SigAnaRecord: each trading day is one cross-section; a statistic over days (mean,
std, IR, t) says how steady the signal is, which a pooled number over all rows hides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

DAILY_COLUMNS = (
    "ic",
    "rank_ic",
    "n",
    "topk_precision",
    "topk_fwd_return",
    "universe_fwd_return",
    "topk_bought",
    "n_picks",
)


def daily_signal(frame: pd.DataFrame, top_k: int, min_rows: int = 2) -> pd.DataFrame:
    """Per-day IC and Rank IC of the score against the forward return, and top-k results.

    A day's candidates are its rows with a score (a prediction record holds every candidate).
    IC is Pearson's r and Rank IC Spearman's rho (Pearson's r of the ranks within the day,
    ties averaged) over the candidates with a known fwd_return, NaN on days with fewer than
    `min_rows` of them or a constant input. The top k are the day's k highest scores among all
    candidates (ties kept in row order). A top-k row whose entry cannot fill (`fillable`
    False) keeps its slot but is not bought, and no lower-ranked row takes its place: the top
    k are known at T, the fills only at T+1. Precision and forward return are those of the
    bought rows with a label / a forward return: an unbought row is neither a hit nor a miss
    (no money went in); `topk_bought` counts the bought rows, so the unfilled slots show.

    Args:
        frame: trade_date, score, label (0/1, NaN where unknown), fwd_return, optional
            fillable (bool; default every row fills) and pick (bool).
        top_k: how many of the day's highest scores form the top k, >= 1.
        min_rows: fewest rows for a day's IC and Rank IC.

    Returns:
        One row per trade_date with a candidate (sorted) with columns ic, rank_ic, n,
        topk_precision, topk_fwd_return, universe_fwd_return, topk_bought, n_picks (NaN
        without a pick column).
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    scored = frame.loc[frame["score"].notna()]
    days = pd.Index(np.sort(scored["trade_date"].unique()), name="trade_date")
    rows = scored.loc[scored["fwd_return"].notna()]
    day = rows["trade_date"]
    score = rows["score"].astype(np.float64)
    ret = rows["fwd_return"].astype(np.float64)
    out = pd.DataFrame(
        {
            "ic": _daily_pearson(score, ret, day),
            "rank_ic": _daily_pearson(_ranks(score, day), _ranks(ret, day), day),
        }
    ).reindex(days)
    out["n"] = day.groupby(day).size().reindex(days, fill_value=0)
    out.loc[out["n"] < min_rows, ["ic", "rank_ic"]] = np.nan
    bought = bought_top_k(scored, top_k)
    by_day = bought.groupby("trade_date")
    out["topk_precision"] = by_day["label"].mean().astype(np.float64)
    out["topk_fwd_return"] = by_day["fwd_return"].mean().astype(np.float64)
    out["universe_fwd_return"] = ret.groupby(day).mean()
    out["topk_bought"] = by_day.size().reindex(days, fill_value=0).astype(np.float64)
    if "pick" in frame.columns:
        picks = frame["pick"].fillna(False).astype(bool).groupby(frame["trade_date"]).sum()
        out["n_picks"] = picks.reindex(out.index).astype(np.float64)
    else:
        out["n_picks"] = np.nan
    out.index.name = "trade_date"
    return out.loc[:, list(DAILY_COLUMNS)]


def bought_top_k(frame: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The rows a daily top-k buys: each day's k highest scores among all its candidates,
    less those whose entry cannot fill (not replaced from lower ranks).

    Args:
        frame: trade_date, score and optionally fillable (bool; default every row fills).
        top_k: the list's size, >= 1.

    Returns:
        The bought rows of `frame`, by day and falling score.
    """
    top = _top_k(frame.loc[frame["score"].notna()], top_k)
    if "fillable" not in top.columns:
        return top
    return top.loc[top["fillable"].fillna(False).astype(bool)]


def summarise_signal(daily: pd.DataFrame) -> dict[str, float]:
    """Summarise `daily_signal` over days; days with a NaN statistic are left out of it.

    Args:
        daily: the frame `daily_signal` returns.

    Returns:
        ic_mean, ic_std, ic_ir, ic_t, ic_pos_share and the same for rank_ic_; topk_precision
        mean and std; topk_excess_return_mean (bought top-k minus universe forward return);
        topk_bought_mean (rows a day's top-k buys); picks_per_day and days_with_picks (NaN
        without picks); days.
    """
    summary: dict[str, float] = {"days": float(len(daily))}
    for name in ("ic", "rank_ic"):
        summary |= _ic_summary(name, daily[name].dropna().to_numpy(np.float64))
    precision = daily["topk_precision"].dropna()
    summary["topk_precision_mean"] = _mean(precision)
    summary["topk_precision_std"] = float(precision.std()) if len(precision) > 1 else np.nan
    excess = (daily["topk_fwd_return"] - daily["universe_fwd_return"]).dropna()
    summary["topk_excess_return_mean"] = _mean(excess)
    summary["topk_bought_mean"] = _mean(daily["topk_bought"].dropna())
    picks = daily["n_picks"].dropna()
    summary["picks_per_day"] = _mean(picks)
    summary["days_with_picks"] = float((picks > 0).sum()) if len(picks) else np.nan
    return summary


def _ic_summary(name: str, values: np.ndarray) -> dict[str, float]:
    """Mean, std, IR (mean / std), t-statistic against zero and share of positive days."""
    n = len(values)
    mean = float(values.mean()) if n else np.nan
    std = float(values.std(ddof=1)) if n > 1 else np.nan
    steady = n > 1 and std > 0
    return {
        f"{name}_mean": mean,
        f"{name}_std": std,
        f"{name}_ir": mean / std if steady else np.nan,
        f"{name}_t": float(stats.ttest_1samp(values, 0.0).statistic) if steady else np.nan,
        f"{name}_pos_share": _pos_share(values),
    }


def _pos_share(values: np.ndarray) -> float:
    return float((values > 0).mean()) if len(values) else np.nan


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else np.nan


def _ranks(values: pd.Series, day: pd.Series) -> pd.Series:
    """Average ranks within each day (scipy's spearmanr ranks the same way)."""
    return values.groupby(day).rank(method="average")


def _daily_pearson(x: pd.Series, y: pd.Series, day: pd.Series) -> pd.Series:
    """Pearson's r per day from centred sums (one groupby pass, no loop over days)."""
    dx = x - x.groupby(day).transform("mean")
    dy = y - y.groupby(day).transform("mean")
    sums = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy}).groupby(day).sum()
    # A constant score or return has no correlation (scipy returns NaN too); tested on the
    # values, since centring a constant can leave rounding noise instead of zeros.
    varies = (x.groupby(day).max() > x.groupby(day).min()) & (
        y.groupby(day).max() > y.groupby(day).min()
    )
    return (sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])).where(varies)


def _top_k(rows: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Each day's k highest-scoring rows; equal scores keep their row order."""
    ordered = rows.assign(_order=np.arange(len(rows))).sort_values(
        ["trade_date", "score", "_order"], ascending=[True, False, True], kind="stable"
    )
    return ordered.loc[ordered.groupby("trade_date").cumcount() < top_k].drop(columns="_order")
