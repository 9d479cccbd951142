"""A/B of configurations by their rolling records: each job of a Hydra `-m` sweep adds its row
(the record's signal and account, and Rank IC by year) and its account's daily returns to files
in the sweep directory, and rewrites the comparison table and the equity plot from all of them:
the sweep's last job holds the whole comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ashare_autotune.jobs.rolling.record import markdown, save_figure

ROWS = "rolling_ab.csv"
RETURNS = "rolling_ab_returns.parquet"
# column -> the record's metric
COLUMNS = {
    "rank_ic": "roll_rank_ic_mean",
    "rank_ic_t": "roll_rank_ic_t",
    "topk_precision": "roll_topk_precision_mean",
    "pick_precision": "roll_pick_precision",
    "annual_return": "roll_bt_annual_return",
    "excess_at_exposure": "roll_bt_excess_return_exposure",
    "ir": "roll_bt_information_ratio",
    "max_drawdown": "roll_bt_max_drawdown",
}


def ab_row(job: str, metrics: dict[str, float], by_year: pd.DataFrame) -> pd.DataFrame:
    """One job's row: its overrides, the record's metrics and its Rank IC of each year."""
    row = {col: metrics.get(m, float("nan")) for col, m in COLUMNS.items()}
    years = by_year.drop(index="total", errors="ignore")["rank_ic_mean"]
    row |= {f"rank_ic_{year}": float(v) for year, v in years.items()}
    return pd.DataFrame([row], index=pd.Index([job], name="job"))


def update_ab(sweep_dir: Path, row: pd.DataFrame, returns: pd.Series | None) -> dict[str, Path]:
    """Add (or replace) this job's row and returns; write the table (csv, md) and the plot.

    Returns:
        The written files by artifact name.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rows_path = sweep_dir / ROWS
    table = pd.read_csv(rows_path, index_col="job") if rows_path.exists() else row.iloc[:0]
    table = pd.concat([table.drop(index=row.index, errors="ignore"), row])
    table.to_csv(rows_path)
    out = {"rolling_ab.csv": rows_path}
    (sweep_dir / "rolling_ab.md").write_text(markdown(table))
    out["rolling_ab.md"] = sweep_dir / "rolling_ab.md"
    if returns is None:
        return out
    path = sweep_dir / RETURNS
    curves = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    curves = curves.drop(columns=row.index, errors="ignore")
    curves = curves.join(returns.rename(row.index[0]), how="outer")
    curves.to_parquet(path)
    out["rolling_ab.png"] = save_figure(_equity(curves), sweep_dir / "rolling_ab.png")
    return out


def _equity(curves: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for name in curves.columns:
        ax.plot(curves.index, (1 + curves[name].fillna(0)).cumprod(), label=name, linewidth=1)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set(title="Rolling records of the sweep: accounts after costs (start = 1)")
    ax.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
