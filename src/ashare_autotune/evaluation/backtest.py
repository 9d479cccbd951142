"""The account a user would have had trading the model's scores under A-share rules and costs.

A daily simulation (pure: frames in, frames out). The signal of day T is computed after T's
close; its orders go in at the open of the next market day (T+1), so the account's daily
series (and the benchmark's, taken on the same days) starts at T+1 of the first signal day.

`strategy=topk_dropout` (the default): a fully invested equal-weight book of `top_k` names, at
most `n_drop` replaced a day, both sides traded at T+1's open (one price per day; a sale is
blocked while suspended or at a limit-down open); rules in `backtest_topk`. Costs, lots,
slippage and valuation are those below.

`strategy=top_k` (the top_k best scores of each signal day) and `threshold` (the picks), one
position per signal, held to an exit:
- a buy fills at T+1's open only when the stock has a bar that day and did not open at the
  limit-up price (`open_limit_up`); otherwise it is skipped, not replaced by a lower score;
- a position is sold at the close of its exit day: the last day of the horizon (T+max_days,
  market days), or with `exit=take_profit` the first close >= entry * (1 + min_return) from
  T+min_days on (entry = T+1's open, as in the label), else the horizon's last day;
- no sale on the day of purchase (T+1 rule), while suspended (no bar) or on a one-price
  limit-down day (`one_price_down`): the exit carries to the next day the stock can be sold;
- shares in lots by board (`fills`: STAR at least 200 then 1-share steps, Beijing at least 100
  then 1-share steps, others lots of `lot`); with `max_volume_share` a buy takes at most that
  share of the day's traded value; cash never goes negative; slippage moves both fills against
  us (`slippage_bps` per side).

Sizing of top_k and threshold (equal weight): each day's candidates are taken best score
first, skipping names already held, up to `max_holdings` open positions. Each new position
gets a budget of min(cash left, previous close's equity / max_holdings), rounded down to
whole lots so that price * shares plus the buy costs fit in the budget. When the cash left
cannot pay a full budget, the best remaining name gets what is left and no further name is
bought that day.

Costs (`fills`): commission on both sides (at least `min_commission` CNY per order), transfer
fee on both sides (`transfer_fee_before` / `_after` around `transfer_fee_switch`), stamp duty
on sales only (`stamp_duty_before` before `stamp_duty_switch`, `stamp_duty_after` from then).
Holdings are valued at the last known close (a suspended stock keeps its last close).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ashare_autotune.config.backtest import BacktestConfig, Strategy
from ashare_autotune.config.choices import check
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation.backtest_account import (
    Orders,
    Panel,
    daily_frame,
    simulate,
    trades_frame,
)
from ashare_autotune.evaluation.backtest_topk import simulate_topk_dropout
from ashare_autotune.evaluation.fills import traded_value

SCORE_COLUMNS = ("ts_code", "trade_date", "score")
BAR_COLUMNS = ("ts_code", "trade_date", "open", "close", "open_limit_up", "open_limit_down")
BAR_COLUMNS += ("one_price_down",)


@dataclass
class BacktestResult:
    """The simulated account.

    Attributes:
        daily: one row per market day from the first day orders can fill (the day after the
            first signal day): trade_date, cash, holdings_value, equity, costs, turnover
            ((buys + sells) / 2 / previous equity), n_holdings, invested (holdings_value /
            equity), returns.
        trades: one row per position: ts_code, signal_date, buy_date, buy_price, shares,
            sell_date, sell_price, costs (both sides), pnl, return (pnl over the cash paid),
            holding_days (market days from buy to sell); NaT/NaN sale for a position still
            open at the end.
        skipped: orders not filled, by reason (held, suspended, limit_up, no_slot, no_cash,
            sell_blocked: a topk_dropout sale not possible at the open, retried next day).
        config: the configuration used.
    """

    daily: pd.DataFrame
    trades: pd.DataFrame
    skipped: dict[str, int]
    config: BacktestConfig = field(repr=False)


def run_backtest(
    scores: pd.DataFrame,
    bars: pd.DataFrame,
    cfg: BacktestConfig,
    start: object | None = None,
    end: object | None = None,
) -> BacktestResult:
    """Simulate the account trading `scores` on `bars` (rules and sizing: module docstring).

    Args:
        scores: ts_code, trade_date, score (and bool `pick` for the threshold strategy); the
            signal of trade_date, known after its close.
        bars: ts_code, trade_date, open, close and bool open_limit_up, open_limit_down,
            one_price_down (and amount or vol for `max_volume_share`); a stock without a row on a
            market day is suspended that day.
        cfg: strategy, exit rule, capital and costs.
        start, end: the window of market days (default: the first signal day to the last bar).
            Signals inside it are traded; positions still open at its end stay open.

    Returns:
        The daily account, the trades and the count of orders not filled.

    Raises:
        ConfigError: topk_dropout with top_k + n_drop above the most candidates of a day.
        DataError: bad bars or scores, or no market day after the first signal day.
    """
    cfg.check_complete()
    _check_columns(scores, SCORE_COLUMNS + (("pick",) if cfg.strategy == "threshold" else ()))
    _check_columns(bars, BAR_COLUMNS, "bars")
    panel = _build_panel(bars, _window(scores, bars, start, end))
    first = _first_fill_day(scores, panel)
    orders = _build_orders(scores, panel, cfg)
    if cfg.strategy is Strategy.TOPK_DROPOUT:
        _check_universe(orders, cfg)
        account = simulate_topk_dropout(panel, orders, cfg)
    else:
        account = simulate(panel, orders, cfg)
    return BacktestResult(
        daily=daily_frame(account, first),
        trades=trades_frame(account),
        skipped=account.skipped,
        config=cfg,
    )


def _check_columns(frame: pd.DataFrame, needed: tuple[str, ...], name: str = "scores") -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column {missing[0]!r} (needs {', '.join(needed)})")


def _window(
    scores: pd.DataFrame, bars: pd.DataFrame, start: object, end: object
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last day of the backtest; a window without bars is an error."""
    bar_days = pd.to_datetime(bars["trade_date"])
    if start is None and len(scores) == 0:
        raise DataError("scores: no rows to backtest")
    lo = pd.Timestamp(start) if start is not None else pd.to_datetime(scores["trade_date"]).min()
    hi = pd.Timestamp(end) if end is not None else bar_days.max()
    if len(bar_days) == 0 or not ((bar_days >= lo) & (bar_days <= hi)).any():
        span = f"{bar_days.min():%Y-%m-%d}..{bar_days.max():%Y-%m-%d}" if len(bars) else "none"
        first = f"start={lo:%Y-%m-%d}" + (" (the first signal day)" if start is None else "")
        last = f"end={hi:%Y-%m-%d}" if pd.notna(hi) else "end=none"
        raise ConfigError(f"backtest window {first}, {last}: no bars in it (bars cover {span})")
    return lo, hi


def _build_panel(bars: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp]) -> Panel:
    """Dense (day, stock) arrays of the bars inside the window (NaN/False where suspended)."""
    dates = pd.to_datetime(bars["trade_date"]).to_numpy("datetime64[ns]")
    inside = (dates >= window[0].to_datetime64()) & (dates <= window[1].to_datetime64())
    rows = bars.loc[inside]
    dates = dates[inside]
    prices = rows[["open", "close"]].to_numpy(np.float64)
    valid = (np.isfinite(prices) & (prices > 0)).all(axis=1)
    if not valid.all():
        bad = rows.iloc[int(np.flatnonzero(~valid)[0])]
        where = f"ts_code={bad.ts_code}, trade_date={bad.trade_date}"
        raise DataError(f"bars: open or close is not a positive price at {where}")
    day, days = pd.factorize(dates, sort=True)
    code, codes = pd.factorize(rows["ts_code"], sort=True)
    cell = day * len(codes) + code
    repeated = np.bincount(cell, minlength=len(days) * len(codes))[cell] > 1
    if repeated.any():
        first = rows.iloc[int(np.flatnonzero(repeated)[0])]
        raise DataError(f"bars: two rows for ts_code={first.ts_code}, {first.trade_date}")
    shape = (len(days), len(codes))

    def dense(values: np.ndarray, fill: float | bool) -> np.ndarray:
        out = np.full(shape, fill, dtype=np.asarray(values).dtype)
        out[day, code] = values
        return out

    close = dense(prices[:, 1], np.nan)
    return Panel(
        days=np.asarray(days, dtype="datetime64[ns]"),
        codes=np.asarray(codes, dtype=object),
        open=dense(prices[:, 0], np.nan),
        close=close,
        last_close=pd.DataFrame(close).ffill().to_numpy(),
        has_bar=dense(np.ones(len(rows), dtype=bool), False),
        open_limit_up=dense(rows["open_limit_up"].to_numpy(bool), False),
        open_limit_down=dense(rows["open_limit_down"].to_numpy(bool), False),
        one_price_down=dense(rows["one_price_down"].to_numpy(bool), False),
        traded_value=None if (value := traded_value(rows)) is None else dense(value, np.nan),
    )


def _first_fill_day(scores: pd.DataFrame, panel: Panel) -> int:
    """The panel day after the first signal day in the window: the first the account trades
    (day T is in neither the account's nor the benchmark's returns)."""
    dates = pd.to_datetime(scores["trade_date"]).to_numpy("datetime64[ns]")
    dates = dates[(dates >= panel.days[0]) & (dates <= panel.days[-1])]
    first_signal = dates.min() if len(dates) else panel.days[0]
    first = int(np.searchsorted(panel.days, first_signal, side="right"))
    if first >= len(panel.days):
        day = f"{pd.Timestamp(first_signal):%Y-%m-%d}"
        raise DataError(f"backtest window: no market day after the first signal day {day}")
    return first


def _check_universe(orders: Orders, cfg: BacktestConfig) -> None:
    """topk_dropout ranks top_k held + n_drop candidates: a universe smaller than that on
    every day would hold all of it (a configuration error, not a strategy)."""
    most = int(np.diff(orders.starts).max(initial=0))
    need = cfg.top_k + cfg.n_drop
    why = f"plus backtest.n_drop={cfg.n_drop} is {need}, more than the candidates of any day"
    check(need <= most, "backtest.top_k", cfg.top_k, f"{why} (at most {most})")


def _build_orders(scores: pd.DataFrame, panel: Panel, cfg: BacktestConfig) -> Orders:
    """The candidate orders, mapped to their buy day: top_k per signal day, the picks, or
    every candidate (topk_dropout)."""
    dates = pd.to_datetime(scores["trade_date"]).to_numpy("datetime64[ns]")
    score = scores["score"].to_numpy(np.float64)
    keep = (dates >= panel.days[0]) & (dates <= panel.days[-1]) & np.isfinite(score)
    if cfg.strategy == Strategy.THRESHOLD:
        keep &= scores["pick"].to_numpy(bool)
    # stock -> panel column (-1: no bar in the window at all); integers sort fast
    code = pd.Index(panel.codes).get_indexer(scores["ts_code"])[keep]
    dates, score = dates[keep], score[keep]
    order = np.lexsort((code, -score, dates))  # by day, best score first, ties by code
    code, dates = code[order], dates[order]
    if cfg.strategy == Strategy.TOP_K:
        first = np.searchsorted(dates, dates, side="left")  # the day's first row
        top = np.arange(len(dates)) - first < cfg.top_k
        code, dates = code[top], dates[top]
    _check_unique_orders(code, dates, panel)
    buy_day = np.searchsorted(panel.days, dates, side="right")  # next market day
    ok = buy_day < len(panel.days)
    return Orders(
        starts=np.searchsorted(buy_day[ok], np.arange(len(panel.days) + 1)),
        code=code[ok],
        signal_day=buy_day[ok] - 1,
        signal_date=dates[ok],
    )


def _check_unique_orders(code: np.ndarray, dates: np.ndarray, panel: Panel) -> None:
    """Two score rows of one stock and day would buy it twice: an error, not a guess."""
    known = code >= 0
    key = np.sort(np.searchsorted(panel.days, dates[known]) * len(panel.codes) + code[known])
    twice = key[1:][key[1:] == key[:-1]]
    if len(twice):
        day, column = divmod(int(twice[0]), len(panel.codes))
        where = (
            f"ts_code={panel.codes[column]}, trade_date={pd.Timestamp(panel.days[day]):%Y-%m-%d}"
        )
        raise DataError(f"scores: two rows for {where}")
