"""Which stock-days a signal can act on: the universe at T, the entry fill at T+1, the label.

A row is kept when it is in the universe at T (data up to T only) and its label horizon is
observed. A kept row whose next-open entry cannot fill (no bar on T+1, or T+1 opens at the
limit-up price) stays `fillable=False` without a label: a backtest scores it (at T nobody knows
whether T+1 will fill), training, the threshold and every metric leave it out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling.label_designs import make_label
from ashare_autotune.modelling.labels import forward_returns, make_labels
from ashare_autotune.modelling.limits import limit_flags
from ashare_autotune.modelling.universe import UniverseRules, eligible, st_flags

log = logging.getLogger(__name__)


@dataclass
class Tradable:
    """Per row of the daily bars: kept, fillable, label and forward return.

    Attributes:
        keep: in the universe at T and the label horizon observed.
        fillable: the entry fills (always True with entry=close).
        label: 1/0, NaN where not observed or not fillable (float32).
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
    # A row's horizon is observed iff its close-entry touch label exists (the same window and
    # rule for every kind; a close entry always fills).
    observed = (
        np.isfinite(label)
        if entry == "close"
        else make_labels(daily, calendar, min_days, max_days, min_return).notna().to_numpy()
    )
    in_universe = universe_mask(market, rules, calendar)
    keep = observed & in_universe
    fillable = np.isfinite(label)
    log.info(
        "labelled rows (entry=%s): %d of %d bars; dropped: %d without a full horizon, %d outside "
        "the universe; %d more unfillable (kept to be scored, never trained on or counted)",
        entry,
        int((keep & fillable).sum()),
        len(keep),
        int((~observed).sum()),
        int((observed & ~in_universe).sum()),
        int((keep & ~fillable).sum()),
    )
    return Tradable(keep, fillable, label.astype(np.float32), fwd.astype(np.float32))
