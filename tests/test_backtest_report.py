"""The backtest report: quantstats' statistics, plots and an offline HTML tear sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from ashare_autotune.config.schema import LabelConfig
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation import backtest_report as report
from ashare_autotune.evaluation.backtest import BacktestConfig, BacktestResult, run_backtest


def seeded_market(n_stocks: int = 15, n_days: int = 120) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars (every stock every day, no limits) and an index one day longer at the start."""
    rng = np.random.default_rng(11)
    days = pd.bdate_range("2023-06-01", periods=n_days + 1)
    close = 10 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, (n_days, n_stocks)), axis=0))
    opens = close * np.exp(rng.normal(0, 0.01, close.shape))
    bars = pd.DataFrame(
        {
            "ts_code": np.tile([f"{i:06d}.SZ" for i in range(n_stocks)], n_days),
            "trade_date": np.repeat(days[1:], n_stocks),
            "open": opens.ravel(),
            "close": close.ravel(),
            "open_limit_up": False,
            "open_limit_down": False,
            "one_price_down": False,
        }
    )
    level = 5000 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days + 1)))
    index = pd.DataFrame({"ts_code": "000905.SH", "trade_date": days, "close": level})
    return bars, index


@pytest.fixture(scope="module")
def backtest() -> tuple[BacktestResult, pd.Series]:
    bars, index = seeded_market()
    scores = bars[["ts_code", "trade_date"]].copy()
    scores["score"] = np.random.default_rng(5).random(len(scores))
    result = run_backtest(
        scores,
        bars,
        BacktestConfig(strategy="top_k", top_k=3, max_holdings=15).with_label(LabelConfig()),
    )
    benchmark = report.benchmark_returns(index, "000905.SH", result.daily["trade_date"])
    return result, benchmark


def test_benchmark_returns_are_the_index_close_to_close_returns_on_the_backtest_days() -> None:
    index = pd.DataFrame(
        {
            "ts_code": ["000905.SH"] * 3 + ["000300.SH"] * 3,
            "trade_date": ["20230103", "20230104", "20230105"] * 2,
            "close": [100.0, 110.0, 99.0, 1.0, 1.0, 1.0],
        }
    )
    days = pd.Series(pd.to_datetime(["2023-01-04", "2023-01-05"]))
    returns = report.benchmark_returns(index, "000905.SH", days)
    np.testing.assert_allclose(returns.to_numpy(), [0.10, -0.10])
    assert returns.name == "000905.SH"
    with pytest.raises(DataError, match="no 000905.SH close on 2023-01-03"):
        report.benchmark_returns(index, "000905.SH", pd.Series(pd.to_datetime(["2023-01-03"])))


def test_an_unknown_benchmark_code_is_a_one_line_error_naming_the_key() -> None:
    _, index = seeded_market(n_days=5)
    with pytest.raises(ConfigError, match="'backtest.benchmark'='399999.SZ'") as err:
        report.benchmark_returns(index, "399999.SZ", pd.Series(index["trade_date"]))
    assert "\n" not in str(err.value)


def test_return_statistics_are_quantstats_on_the_daily_returns(
    backtest: tuple[BacktestResult, pd.Series],
) -> None:
    result, benchmark = backtest
    stats = report.backtest_stats(result, benchmark)
    returns = pd.Series(
        result.daily["returns"].to_numpy(), index=pd.DatetimeIndex(result.daily["trade_date"])
    )
    bench = pd.Series(benchmark.to_numpy(), index=returns.index)
    periods = report.periods_per_year(result.daily["trade_date"])
    assert stats["bt_periods_per_year"] == periods
    # 119 business days, Jun 5 (the day after the first signal) .. Nov 16
    assert periods == pytest.approx(118 / 164 * 365.25)
    assert stats["bt_annual_return"] == pytest.approx(qs.stats.cagr(returns, periods=periods))
    assert stats["bt_benchmark_annual_return"] == pytest.approx(
        qs.stats.cagr(bench, periods=periods)
    )
    assert stats["bt_excess_return"] == pytest.approx(
        qs.stats.cagr(returns, periods=periods) - qs.stats.cagr(bench, periods=periods)
    )
    assert stats["bt_total_return"] == pytest.approx(qs.stats.comp(returns))
    assert stats["bt_volatility"] == pytest.approx(qs.stats.volatility(returns, periods=periods))
    assert stats["bt_sharpe"] == pytest.approx(qs.stats.sharpe(returns, periods=periods))
    assert stats["bt_information_ratio"] == pytest.approx(
        qs.stats.information_ratio(returns, bench) * np.sqrt(periods)
    )
    greeks = qs.stats.greeks(returns, bench, periods=periods)
    assert stats["bt_beta"] == pytest.approx(greeks["beta"])
    assert stats["bt_alpha"] == pytest.approx(greeks["alpha"])
    assert stats["bt_max_drawdown"] == pytest.approx(qs.stats.max_drawdown(returns))
    assert stats["bt_daily_win_rate"] == pytest.approx(qs.stats.win_rate(returns))
    # the account's own total return is what quantstats compounds from the daily returns
    assert stats["bt_total_return"] == pytest.approx(
        result.daily["equity"].iloc[-1] / result.config.capital - 1
    )
    assert all(isinstance(v, float) for v in stats.values())


def test_trade_statistics_are_counts_over_the_trades(
    backtest: tuple[BacktestResult, pd.Series],
) -> None:
    result, benchmark = backtest
    stats = report.backtest_stats(result, benchmark)
    trades = result.trades
    closed = trades.loc[trades["sell_date"].notna()]
    assert stats["bt_trades"] == len(trades) > 50
    assert stats["bt_open_trades"] == trades["sell_date"].isna().sum()
    assert stats["bt_win_rate"] == pytest.approx((closed["pnl"] > 0).mean())
    assert stats["bt_mean_holding_days"] == pytest.approx(closed["holding_days"].mean())
    assert stats["bt_total_costs"] == pytest.approx(trades["costs"].sum())
    assert stats["bt_turnover"] == pytest.approx(result.daily["turnover"].mean())


def test_monthly_returns_leave_months_outside_the_backtest_empty(
    backtest: tuple[BacktestResult, pd.Series],
) -> None:
    result, _ = backtest
    table = report.monthly_returns(result)
    assert np.isnan(table.loc["2023", "JAN"])  # the backtest starts in June
    june = result.daily.loc[result.daily["trade_date"].dt.month == 6, "returns"]
    assert table.loc["2023", "JUN"] == pytest.approx(float(np.prod(1 + june) - 1))


def test_plots_are_written_as_png_files(
    backtest: tuple[BacktestResult, pd.Series], tmp_path: Path
) -> None:
    result, benchmark = backtest
    paths = report.write_backtest_plots(result, benchmark, tmp_path / "plots")
    names = [p.name for p in paths]
    assert names == [
        "backtest_equity.png",
        "backtest_drawdown.png",
        "backtest_monthly_returns.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_html_tear_sheet_is_written_without_downloading_anything(
    backtest: tuple[BacktestResult, pd.Series], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("quantstats tried to download a benchmark")

    monkeypatch.setattr(qs.utils, "download_returns", no_download)
    result, benchmark = backtest
    path = report.write_tearsheet(result, benchmark, tmp_path / "tearsheet.html", title="Test")
    html = path.read_text(encoding="utf-8")
    assert "<html" in html.lower()
    assert "000905.SH" in html
    assert "<svg" in html  # the charts are inline, the page needs no network


def year_of(year: int, n_days: int) -> pd.DatetimeIndex:
    """`n_days` market days of `year`, the first on Jan 4 and the last on Dec 30."""
    days = pd.bdate_range(f"{year}-01-04", f"{year}-12-30")
    return days[: n_days - 1].append(days[-1:])


def test_periods_per_year_are_the_mean_days_of_the_full_years_of_the_calendar() -> None:
    # half of 2021 (ignored), 2022 with 240 days, 2023 with 244, a week of 2024 (ignored)
    dates = (
        pd.bdate_range("2021-07-01", "2021-12-31")
        .append(year_of(2022, 240))
        .append(year_of(2023, 244))
        .append(pd.bdate_range("2024-01-02", "2024-01-05"))
    )
    assert report.periods_per_year(pd.Series(dates)) == 242.0
    # without a full year: the days' density over the span; one day: the A-share mean
    two_weeks = pd.bdate_range("2023-06-05", periods=11)  # Mon Jun 5 .. Mon Jun 19
    assert report.periods_per_year(two_weeks) == pytest.approx(10 / 14 * 365.25)
    assert report.periods_per_year(two_weeks[:1]) == report.A_SHARE_DAYS == 244


def hand_account(returns: list[float], invested: list[float]) -> BacktestResult:
    """An account with the given daily returns and invested fractions (no trades)."""
    days = pd.bdate_range("2023-06-05", periods=len(returns))
    equity = 1e6 * np.cumprod(1 + np.asarray(returns))
    daily = pd.DataFrame(
        {
            "trade_date": days,
            "cash": equity * (1 - np.asarray(invested)),
            "holdings_value": equity * np.asarray(invested),
            "equity": equity,
            "costs": 0.0,
            "turnover": 0.0,
            "n_holdings": 0,
            "returns": returns,
        }
    )
    trades = pd.DataFrame(columns=["ts_code", "sell_date", "pnl", "holding_days", "costs"]).astype(
        {"sell_date": "datetime64[ns]", "pnl": float, "holding_days": float}
    )
    cfg = BacktestConfig().with_label(LabelConfig())
    return BacktestResult(daily=daily, trades=trades, skipped={}, config=cfg)


def test_half_invested_account_is_measured_against_the_index_held_at_half() -> None:
    # 50% invested from the first close on; the index gains 1% a day, the account 0.6%
    result = hand_account([0.0, 0.006, 0.006, 0.006, 0.006], [0.5] * 5)
    days = pd.DatetimeIndex(result.daily["trade_date"])  # Mon Jun 5 .. Fri Jun 9
    bench = pd.Series(0.01, index=days, name="000905.SH")
    # the first day's exposure is the start's: all cash
    matched = report.exposure_benchmark(result, bench)
    np.testing.assert_allclose(matched.to_numpy(), [0.0, 0.005, 0.005, 0.005, 0.005])
    stats = report.backtest_stats(result, bench)
    assert stats["bt_periods_per_year"] == pytest.approx(365.25)  # 4 gaps over 4 days
    years = 5 / 365.25
    assert stats["bt_invested_mean"] == 0.5
    assert stats["bt_annual_return"] == pytest.approx(1.006 ** (4 / years) - 1)
    assert stats["bt_benchmark_annual_return"] == pytest.approx(1.01 ** (5 / years) - 1)
    assert stats["bt_benchmark_exposure_annual_return"] == pytest.approx(1.005 ** (4 / years) - 1)
    assert stats["bt_excess_return_exposure"] == pytest.approx(
        1.006 ** (4 / years) - 1.005 ** (4 / years)
    )
    # active returns 0, .001 x4: mean .0008, std sqrt(2e-7); annualised with the calendar
    assert stats["bt_information_ratio_exposure"] == pytest.approx(
        0.0008 / np.sqrt(2e-7) * np.sqrt(365.25)
    )


def test_an_account_holding_half_the_index_has_beta_one_half_and_no_alpha() -> None:
    index = np.array([0.01, -0.02, 0.03, 0.0, 0.01])
    result = hand_account(list(0.5 * index), [0.5] * 5)
    bench = pd.Series(index, index=pd.DatetimeIndex(result.daily["trade_date"]))
    stats = report.backtest_stats(result, bench)
    assert stats["bt_beta"] == pytest.approx(0.5)
    assert stats["bt_alpha"] == pytest.approx(0.0, abs=1e-12)


def test_an_account_that_never_trades_has_no_excess_over_the_index_at_its_exposure() -> None:
    bars, index = seeded_market(n_stocks=4, n_days=30)
    scores = bars[["ts_code", "trade_date"]].assign(score=np.nan)  # no signal: all cash
    cfg = BacktestConfig(strategy="top_k", top_k=2, max_holdings=4).with_label(LabelConfig())
    result = run_backtest(scores, bars, cfg, start=bars["trade_date"].min())
    benchmark = report.benchmark_returns(index, "000905.SH", result.daily["trade_date"])
    stats = report.backtest_stats(result, benchmark)
    assert stats["bt_trades"] == 0 and stats["bt_invested_mean"] == 0.0
    assert stats["bt_excess_return_exposure"] == 0.0
    assert stats["bt_benchmark_exposure_annual_return"] == 0.0
    # no active return to divide by: quantstats' IR is 0, not a division blow-up
    assert stats["bt_information_ratio_exposure"] == 0.0
    assert stats["bt_beta"] == 0.0 and stats["bt_alpha"] == 0.0
    # the plain excess says the cash "lost" the index's whole return
    assert stats["bt_excess_return"] == pytest.approx(-stats["bt_benchmark_annual_return"])
