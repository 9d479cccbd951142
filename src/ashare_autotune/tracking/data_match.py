"""Is the market loaded to score a model the one it was trained on? `predict`, `evaluate` and
`backtest` refuse another data source, data that ends before the model's, or a market whose
bars on the model's last training day differ from those it recorded (another synthetic market,
another file), in one line naming both and the override key `allow_other_data`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError

log = logging.getLogger(__name__)

OVERRIDE = "allow_other_data"
# Relative difference of the stock count or the median close on the model's last training day
# beyond which the market is another one. Loose enough for a re-fetched history whose
# forward-adjusted closes moved by later dividends (a few stocks, a few per cent each); a
# different market differs in both by far more.
DAY_TOLERANCE = 0.05


def day_facts(daily: pd.DataFrame, day: str) -> tuple[int, float] | None:
    """The stock count and median close of the bars of `day` (YYYYMMDD), as `Market.describe`
    records them for its last day (`end_n_stocks`, `end_close_median`); None without a bar.

    Args:
        daily: the market's bars (trade_date, ts_code, close).
        day: the model's last day of data.
    """
    bars = daily.loc[daily["trade_date"] == pd.Timestamp(day)]
    if bars.empty:
        return None
    close = float(np.nanmedian(bars["close"].to_numpy(np.float64)))
    return int(bars["ts_code"].nunique()), close


def check_same_data(meta: dict[str, Any], market: Market, model: str, allow: bool) -> None:
    """Refuse (or with `allow`, warn about) a market other than the model's training data.

    Args:
        meta: the model's meta.json (`data`: source, start, end and, for models since they
            were recorded, `end_n_stocks` and `end_close_median`).
        market: the market loaded to score it.
        model: the model's name for the message (e.g. `ashare-autotune v3`).
        allow: the `allow_other_data` key: warn and go on instead of refusing.

    Raises:
        DataError: one line naming the loaded data, the model's and the override key.
    """
    problem = _mismatch(meta, market)
    if problem is None:
        return
    trained = meta["data"]
    message = (
        f"{problem}: {model} was trained on {trained['source']} "
        f"{trained['start']}..{trained['end']}; load that data (data=..., experiment=...) or "
        f"set {OVERRIDE}=true to score this data anyway"
    )
    if not allow:
        raise DataError(message)
    log.warning("%s (%s=true: going on)", message, OVERRIDE)


def _mismatch(meta: dict[str, Any], market: Market) -> str | None:
    """What differs between the loaded market and the model's data, or None."""
    have, trained = market.describe(), meta["data"]
    if str(have["source"]) != str(trained["source"]):
        return f"the loaded data is {have['source']} {have['start']}..{have['end']}"
    if str(have["end"]) < str(trained["end"]):
        return (
            f"the loaded data {have['source']} ends on {have['end']}, before the model's data "
            "ends (older data)"
        )
    if "end_close_median" not in trained or market.daily.empty:
        return None
    day = str(trained["end"])
    now = day_facts(market.daily, day)
    if now is None:  # loaded from a later start: nothing to compare, nothing contradicts
        return None
    then = int(trained["end_n_stocks"]), float(trained["end_close_median"])
    if _differs(now[0], then[0]) or _differs(now[1], then[1]):
        return (
            f"the loaded {have['source']} is another market: on {day} it has {now[0]} stocks "
            f"with a median close of {now[1]:.2f}, the model's data had {then[0]} and "
            f"{then[1]:.2f}"
        )
    return None


def _differs(now: float, then: float) -> bool:
    return abs(now - then) > DAY_TOLERANCE * max(abs(then), 1e-12)
