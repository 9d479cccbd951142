"""The README table of a `benchmarks.model_compare` result: validation by calendar year, test
beside (reported only)."""

from __future__ import annotations

from typing import Any


def pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def by_year(seg: dict[str, Any], key: str, fmt: Any) -> str:
    """`key` of each calendar year of a segment, " / "-separated."""
    return " / ".join(fmt(v[key]) for v in seg["years"].values() if key in v)


def table(result: dict[str, Any]) -> str:
    """The README table: validation by calendar year, test beside (reported only)."""
    head = (
        "| candidate | val Rank IC (t) by year | val top-10 precision | val excess a year: total "
        "(by year) | val at exposure | val threshold picks' precision (picks, days) "
        "| test Rank IC (t) | test top-10 precision | test excess a "
        "year | test at exposure | test threshold picks' precision |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|"]

    for name, run in result["runs"].items():
        v, t = run["val"], run["test"]
        th = run["threshold_picks"]
        picks = th.get("test_precision", float("nan"))
        val_picks = (
            f"{th.get('val_precision', float('nan')):.3f} ({th.get('val_n_picks', 0):.0f}, "
            f"{th.get('val_n_pick_days', 0):.0f})"
        )
        lines.append(
            f"| {name} | {by_year(v, 'rank_ic_mean', lambda x: f'{x:+.3f}')} "
            f"(t {by_year(v, 'rank_ic_t', lambda x: f'{x:+.1f}')}) "
            f"| {v['topk_precision_mean']:.3f} | {pct(v['bt_excess_return'])} "
            f"({by_year(v, 'excess', pct)}) | {pct(v['bt_excess_return_exposure'])} "
            f"| {val_picks} | {t['rank_ic_mean']:+.3f} ({t['rank_ic_t']:+.1f}) "
            f"| {t['topk_precision_mean']:.3f} | {pct(t['bt_excess_return'])} "
            f"| {pct(t['bt_excess_return_exposure'])} | {picks:.3f} |"
        )
    for name in result["baselines"].get("val", {}):
        v, t = result["baselines"]["val"][name], result["baselines"]["test"][name]
        lines.append(
            f"| baseline {name} | {v['rank_ic_mean']:+.3f} (all years) | "
            f"{v['topk_precision_mean']:.3f} | {pct(v['bt_excess_return'])} "
            f"({by_year(v, 'excess', pct)}) | {pct(v['bt_excess_return_exposure'])} | "
            f"| {t['rank_ic_mean']:+.3f} | {t['topk_precision_mean']:.3f} "
            f"| {pct(t['bt_excess_return'])} | {pct(t['bt_excess_return_exposure'])} | |"
        )
    return "\n".join(lines)
