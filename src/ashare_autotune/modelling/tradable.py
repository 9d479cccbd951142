"""Which stock-days a signal can act on: the universe at T, the entry fill at T+1, the label.

A row is a candidate when it is in the universe at T (data up to T only) and T+max_days is
inside the data (the data's end: the same day for every stock). Nothing a stock does after T
decides whether it is a candidate: one suspended after entry, or delisted, stays one (a trader
would have bought it and been stuck; the account holds it through the suspension). Each
candidate carries `fillable` (its next-open entry fills: a bar on T+1 not opening at the
limit-up price) and a label, NaN where the entry cannot fill or the stock has no close inside
the horizon. Every candidate is scored and traded; only the labelled ones are trained on and
measured by label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.label_designs import make_label
from ashare_autotune.modelling.labels import (
    day_numbers,
    entry_prices,
    forward_returns,
    horizon_in_data,
)
from ashare_autotune.modelling.limits import limit_flags
from ashare_autotune.modelling.universe import UniverseRules, eligible, st_flags

log = logging.getLogger(__name__)


@dataclass
class Tradable:
    """Per row of the daily bars: candidate, fillable, label and forward return.

    Attributes:
        keep: a candidate: in the universe at T and T+max_days inside the data.
        fillable: the entry fills (always True with entry=close).
        label: 1/0, NaN where not fillable or the stock has no close in the horizon (float32).
        fwd_return: entry to the last close inside the horizon, NaN where unknown (float32).
    """

    keep: np.ndarray
    fillable: np.ndarray
    label: np.ndarray
    fwd_return: np.ndarray


def namechange_of(market: Market) -> pd.DataFrame | None:
    """The market's point-in-time name history (Tushare `namechange`), None when unknown."""
    return getattr(market, "namechange", None)


def universe_mask(
    market: Market, rules: UniverseRules, calendar: pd.DatetimeIndex | None = None
) -> np.ndarray:
    """`universe.eligible` on the market's bars, with its namechange history when it has one.

    Args:
        market: the bars, stock_basic and (optionally) namechange.
        rules: the universe rules.
        calendar: the market trading days (default: the bars' days).

    Returns:
        A bool array aligned with `market.daily`.
    """
    try:
        return eligible(market.daily, market.stock_basic, rules, namechange_of(market), calendar)
    except ConfigError as exc:  # a rule needing a column this data lacks: say which data
        raise ConfigError(f"{market.source}: {exc}") from None


def tradable_rows(
    market: Market,
    calendar: pd.DatetimeIndex,
    min_days: int,
    max_days: int,
    min_return: float,
    entry: str,
    rules: UniverseRules,
    kind: str = "touch",
    stop_loss: float = 0.03,
    benchmark: pd.DataFrame | None = None,
) -> Tradable:
    """Universe, entry fill, labels and forward returns of every row, logging the counts.

    Args:
        market: validated bars, index and stock_basic (and optionally namechange).
        calendar: the market trading days.
        min_days, max_days, min_return: the label definition.
        entry: "next_open" or "close".
        rules: the universe rules.
        kind, stop_loss, benchmark: the label design (`label_designs.make_label`).
    """
    daily = market.daily
    namechange = namechange_of(market)
    # ST limits (5%) only where ST is known point-in-time; a snapshot name would move the
    # limit of years the stock was not ST.
    is_st = st_flags(daily, market.stock_basic, namechange) if namechange is not None else None
    open_up = limit_flags(daily, market.stock_basic, is_st)["open_limit_up"].to_numpy()
    horizon = (min_days, max_days)
    label = make_label(
        kind, daily, calendar, horizon, min_return, stop_loss, benchmark, entry, open_up
    ).to_numpy()
    fwd = forward_returns(daily, calendar, max_days, entry=entry, open_limit_up=open_up)
    fillable = np.isfinite(entry_prices(daily, calendar, entry, open_up))
    in_data = horizon_in_data(day_numbers(daily["trade_date"], calendar), calendar, max_days)
    in_universe = universe_mask(market, rules, calendar)
    keep = in_data & in_universe
    labelled = keep & np.isfinite(label)
    log.info(
        "candidate rows (entry=%s): %d of %d bars (%d outside the universe, %d without T+%d "
        "in the data); %d labelled; %d unfillable, %d more without a close in the horizon "
        "(scored and traded, never trained on or counted by label)",
        entry,
        int(keep.sum()),
        len(keep),
        int((in_data & ~in_universe).sum()),
        int((~in_data).sum()),
        max_days,
        int(labelled.sum()),
        int((keep & ~fillable).sum()),
        int((keep & fillable & ~labelled).sum()),
    )
    return Tradable(keep, fillable, label.astype(np.float32), fwd.astype(np.float32))
