"""The report of a backtest: statistics, plots and an HTML tear sheet, as values and files.

Return-based statistics come from quantstats (`qs.stats`), not from formulas of our own; the
trade statistics (win rate, holding days, trades, costs) are counts over the trades table.
Pure functions returning values or paths: no MLflow here. The benchmark is always passed to
quantstats as a Series of daily returns taken from the index bars, never as a ticker (a ticker
would make quantstats download it).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ashare_autotune.errors import ConfigError, DataError  # noqa: E402
from ashare_autotune.evaluation.backtest import BacktestResult  # noqa: E402

log = logging.getLogger(__name__)


_QUANTSTATS_STYLE: dict[str, object] = {}  # its theme, for its own tear sheet only


def _quantstats() -> ModuleType:
    """quantstats, imported on first use with matplotlib's settings kept: its import sets a
    seaborn theme for every later figure of the process (the project's plots too)."""
    if "quantstats" not in sys.modules:
        with matplotlib.rc_context():
            before = dict(matplotlib.rcParams)
            import quantstats  # noqa: F401

            changed = {k: v for k, v in matplotlib.rcParams.items() if v != before.get(k)}
            _QUANTSTATS_STYLE.update(changed)
            _QUANTSTATS_STYLE.pop("backend", None)
    return sys.modules["quantstats"]


A_SHARE_DAYS = 244  # mean trading days a year of the A-share market 2015-2022 (fallback only)
DPI = 110


def periods_per_year(dates: pd.Series | pd.DatetimeIndex) -> float:
    """Trading days a year of the data's own calendar, for every annualised statistic.

    The mean count of days over the calendar years the dates cover in full (a day in the year's
    first week, Jan 1-7, and one in its last, Dec 25-31); without a full year, the days' density
    over the span (days - 1 per calendar day, times 365.25); `A_SHARE_DAYS` for fewer than two
    days. A-shares trade 242-245 days a year, a business-day calendar about 261, not 252.

    Args:
        dates: the market days (e.g. `result.daily.trade_date`), any order.

    Returns:
        Periods per year, a float.
    """
    days = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates).drop_duplicates())).sort_values()
    if len(days) < 2:
        return float(A_SHARE_DAYS)
    year = pd.Series(days, index=days.year).groupby(level=0)
    first, last = year.min(), year.max()
    full = (
        (first.dt.month == 1) & (first.dt.day <= 7) & (last.dt.month == 12) & (last.dt.day >= 25)
    )
    if full.any():
        return float(year.size()[full].mean())
    return (len(days) - 1) / (days[-1] - days[0]).days * 365.25


def benchmark_returns(index_bars: pd.DataFrame, code: str, dates: pd.Series) -> pd.Series:
    """Daily close-to-close returns of index `code` on the backtest's days.

    Args:
        index_bars: ts_code, trade_date, close of one or more indices (raw levels).
        code: the benchmark (`backtest.benchmark`), e.g. "000905.SH".
        dates: the backtest's market days (`result.daily.trade_date`).

    Returns:
        Returns indexed by trade_date; the first day's is against the index's previous close.
    """
    known = index_bars["ts_code"].astype(str).unique()
    if code not in known:
        have = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"config key 'backtest.benchmark'={code!r}: not in the index data ({have})"
        )
    bars = index_bars.loc[index_bars["ts_code"] == code, ["trade_date", "close"]]
    close = bars.assign(trade_date=pd.to_datetime(bars["trade_date"])).set_index("trade_date")
    returns = close["close"].astype(np.float64).sort_index().pct_change(fill_method=None)
    wanted = pd.DatetimeIndex(pd.to_datetime(dates))
    aligned = returns.reindex(wanted)
    if aligned.isna().any():
        day = wanted[aligned.isna().to_numpy()][0]
        raise DataError(f"index data: no {code} close on {day:%Y-%m-%d} or the day before")
    return aligned.rename(code)


def strategy_returns(result: BacktestResult) -> pd.Series:
    """The account's daily returns indexed by trade_date (what quantstats takes)."""
    daily = result.daily
    return pd.Series(
        daily["returns"].to_numpy(np.float64),
        index=pd.DatetimeIndex(daily["trade_date"]),
        name="strategy",
    )


def invested_fraction(result: BacktestResult) -> pd.Series:
    """The share of equity held in stocks after each day's close (holdings value / equity)."""
    daily = result.daily
    equity = daily["equity"].to_numpy(np.float64)
    held = daily["holdings_value"].to_numpy(np.float64)
    share = np.divide(held, equity, out=np.zeros_like(held), where=equity > 0)
    return pd.Series(share, index=pd.DatetimeIndex(daily["trade_date"]), name="invested")


def exposure_benchmark(result: BacktestResult, benchmark: pd.Series) -> pd.Series:
    """The benchmark held at the account's exposure: each day's benchmark return times the
    invested fraction at the previous close (the first day's: 0, the account starts in cash).

    The previous close's fraction is what is exposed to the day's move (the day's buys fill at
    its open, so this slightly understates a day of heavy buying and overstates one of selling);
    the rest is cash at 0%. An all-cash account's matched benchmark is 0 every day.
    """
    before = invested_fraction(result).shift(1, fill_value=0.0)
    return (before * benchmark.to_numpy(np.float64)).rename("benchmark_at_exposure")


def backtest_stats(result: BacktestResult, benchmark: pd.Series) -> dict[str, float]:
    """The backtest's statistics as `bt_<stat>` floats, annualised with `periods_per_year`.

    Args:
        result: the simulated account.
        benchmark: the benchmark's daily returns on the same days (`benchmark_returns`).

    Returns:
        bt_annual_return, bt_benchmark_annual_return, bt_excess_return (the difference of the
        two), bt_information_ratio (annualised); the same against the benchmark held at the
        account's exposure (`exposure_benchmark`): bt_benchmark_exposure_annual_return,
        bt_excess_return_exposure, bt_information_ratio_exposure (0 when the active return
        never varies, e.g. an all-cash account: quantstats' convention); bt_invested_mean,
        bt_beta, bt_alpha (annualised, quantstats' `greeks`: 0 against a flat series);
        bt_total_return, bt_volatility, bt_sharpe, bt_max_drawdown (a negative fraction),
        bt_daily_win_rate (share of up days), bt_turnover (mean daily), bt_win_rate (share of
        closed trades with pnl > 0), bt_mean_holding_days, bt_trades, bt_open_trades,
        bt_total_costs, bt_final_equity, bt_periods_per_year.
    """
    returns = strategy_returns(result)
    periods = periods_per_year(returns.index)
    bench = pd.Series(benchmark.to_numpy(np.float64), index=returns.index, name="benchmark")
    matched = exposure_benchmark(result, bench)
    stats = _return_stats(returns, bench, matched, periods)
    stats["bt_invested_mean"] = float(invested_fraction(result).mean())
    return stats | _trade_stats(result) | {"bt_periods_per_year": periods}


def _return_stats(
    returns: pd.Series, bench: pd.Series, matched: pd.Series, periods: float
) -> dict[str, float]:
    """quantstats' statistics of the returns, against the benchmark and the matched one."""
    qs = _quantstats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantstats warns on flat series (no trades yet)
        annual = float(qs.stats.cagr(returns, periods=periods))
        bench_annual = float(qs.stats.cagr(bench, periods=periods))
        matched_annual = float(qs.stats.cagr(matched, periods=periods))
        greeks = qs.stats.greeks(returns, bench, periods=periods)
        return {
            "bt_annual_return": annual,
            "bt_benchmark_annual_return": bench_annual,
            "bt_excess_return": annual - bench_annual,
            "bt_benchmark_exposure_annual_return": matched_annual,
            "bt_excess_return_exposure": annual - matched_annual,
            "bt_total_return": float(qs.stats.comp(returns)),
            "bt_volatility": float(qs.stats.volatility(returns, periods=periods)),
            "bt_sharpe": float(qs.stats.sharpe(returns, periods=periods)),
            # quantstats' information ratio is per day; annualised like its Sharpe ratio
            "bt_information_ratio": float(
                qs.stats.information_ratio(returns, bench) * np.sqrt(periods)
            ),
            "bt_information_ratio_exposure": float(
                qs.stats.information_ratio(returns, matched) * np.sqrt(periods)
            ),
            "bt_beta": float(greeks["beta"]),
            "bt_alpha": float(greeks["alpha"]),
            "bt_max_drawdown": float(qs.stats.max_drawdown(returns)),
            "bt_daily_win_rate": float(qs.stats.win_rate(returns)),
        }


def _trade_stats(result: BacktestResult) -> dict[str, float]:
    """Counts over the trades table and sums over the daily account."""
    trades = result.trades
    closed = trades.loc[trades["sell_date"].notna()]
    none = not len(closed)
    return {
        "bt_turnover": float(result.daily["turnover"].mean()),
        "bt_win_rate": float("nan") if none else float((closed["pnl"] > 0).mean()),
        "bt_mean_holding_days": float("nan") if none else float(closed["holding_days"].mean()),
        "bt_trades": float(len(trades)),
        "bt_open_trades": float(len(trades) - len(closed)),
        "bt_total_costs": float(result.daily["costs"].sum()),
        "bt_final_equity": float(result.daily["equity"].iloc[-1]),
    }


def monthly_returns(result: BacktestResult) -> pd.DataFrame:
    """Compounded returns by year (rows) and month (columns JAN..DEC, plus EOY), quantstats';
    months outside the backtest are NaN (quantstats fills them with 0)."""
    qs = _quantstats()
    returns = strategy_returns(result)
    table = qs.stats.monthly_returns(returns, eoy=True, compounded=True)
    traded = set(returns.index.strftime("%Y-%b").str.upper())
    months = table.columns[:12]
    outside = [[f"{year}-{month}" not in traded for month in months] for year in table.index]
    table[months] = table[months].mask(np.array(outside, dtype=bool))
    return table


def write_backtest_plots(
    result: BacktestResult, benchmark: pd.Series, out_dir: Path
) -> list[Path]:
    """Equity vs benchmark, drawdown and the monthly-returns heatmap as PNG files.

    Args:
        result: the simulated account.
        benchmark: the benchmark's daily returns on the same days (named by its code).
        out_dir: where the files go (created if missing).

    Returns:
        The paths: backtest_equity.png, backtest_drawdown.png, backtest_monthly_returns.png.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    returns = strategy_returns(result)
    bench = pd.Series(benchmark.to_numpy(np.float64), index=returns.index)
    paths = [
        _plot_equity(returns, bench, str(benchmark.name or "benchmark"), out_dir),
        _plot_drawdown(returns, out_dir),
        _plot_monthly(monthly_returns(result), out_dir),
    ]
    return paths


def _plot_equity(returns: pd.Series, bench: pd.Series, name: str, out_dir: Path) -> Path:
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    ax.plot(returns.index, (1 + returns).cumprod(), label="strategy (after costs)")
    ax.plot(bench.index, (1 + bench).cumprod(), label=name, alpha=0.8)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set(title="Equity vs benchmark (start = 1)", ylabel="growth of 1")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, out_dir / "backtest_equity.png")


def _plot_drawdown(returns: pd.Series, out_dir: Path) -> Path:
    qs = _quantstats()
    drawdown = qs.stats.to_drawdown_series(returns)
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    ax.fill_between(drawdown.index, drawdown.to_numpy(), 0.0, color="tab:red", alpha=0.5)
    ax.set(title="Drawdown", ylabel="from the last peak")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.autofmt_xdate()
    return _save(fig, out_dir / "backtest_drawdown.png")


def _plot_monthly(table: pd.DataFrame, out_dir: Path) -> Path:
    values = table.to_numpy(np.float64)
    fig = Figure(figsize=(10, 1.2 + 0.45 * len(table)))
    ax = fig.subplots()
    # colours scaled on the months: a year's total would wash them out (it is clipped)
    months = values[:, :12]
    limit = max(float(np.nanmax(np.abs(months))) if np.isfinite(months).any() else 0.0, 1e-6)
    ax.imshow(values, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.grid(False)
    ax.set_xticks(range(table.shape[1]), table.columns)
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            colour = "white" if abs(value) > 0.7 * limit else "black"
            ax.text(j, i, f"{value:.1%}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_title("Monthly returns (EOY: the year)")
    return _save(fig, out_dir / "backtest_monthly_returns.png")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def write_tearsheet(
    result: BacktestResult, benchmark: pd.Series, path: Path, title: str = "Backtest"
) -> Path:
    """quantstats' HTML tear sheet of the account against the benchmark, written offline.

    Args:
        result: the simulated account.
        benchmark: the benchmark's daily returns on the same days, as a Series (a ticker
            string would make quantstats download it).
        path: the HTML file to write.
        title: the page title.

    Returns:
        `path`.
    """
    returns = strategy_returns(result)
    bench = pd.Series(benchmark.to_numpy(np.float64), index=returns.index)
    path.parent.mkdir(parents=True, exist_ok=True)
    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level
    fonts.setLevel(logging.ERROR)  # quantstats asks for Arial, absent here: one line per text
    try:
        _html(returns, bench, path, title, str(benchmark.name or "benchmark"))
    finally:
        fonts.setLevel(level)
    return path


def _html(returns: pd.Series, bench: pd.Series, path: Path, title: str, name: str) -> None:
    qs = _quantstats()
    with warnings.catch_warnings(), matplotlib.rc_context(_QUANTSTATS_STYLE):
        warnings.simplefilter("ignore")
        qs.reports.html(
            returns,
            benchmark=bench,
            output=str(path),
            title=title,
            benchmark_title=name,
            strategy_title="strategy",
            periods_per_year=round(periods_per_year(returns.index)),
        )
