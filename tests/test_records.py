"""The prediction record holds every scored candidate with whether its entry fills, and a top-k
taken from it buys only what a trader could: ranked among all candidates, an unfillable pick
keeps its slot and is not bought (no look-ahead into T+1's fills)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import LabelConfig, SplitConfig
from ashare_autotune.config.universe import UniverseConfig
from ashare_autotune.data.market import Market
from ashare_autotune.evaluation.records import RECORD_COLUMNS, segment_records
from ashare_autotune.evaluation.signal import bought_top_k
from ashare_autotune.modelling.dataset import build_dataset

TOP_K = 3


def _limit_up_next_opens(market: Market, day_from: int, every: int = 7) -> Market:
    """T+1 opens at the +10% limit (open == high) for one main-board row in `every` from the
    stocks' `day_from`-th row on: those rows' next-open entries cannot fill."""
    daily = market.daily.copy()
    codes = daily["ts_code"].astype(str)
    rank = daily.groupby("ts_code", observed=True).cumcount().to_numpy()
    same_next = (codes.shift(-1) == codes).to_numpy()
    main = codes.str.startswith(("600", "000")).to_numpy()
    chosen = np.flatnonzero(same_next & main & (rank >= day_from) & (rank % every == 0)) + 1
    price = (daily["pre_close"].to_numpy(np.float64)[chosen] * 1.1).round(2).astype(np.float32)
    daily.loc[chosen, "open"] = price
    daily.loc[chosen, "high"] = np.maximum(price, daily.loc[chosen, "high"].to_numpy())
    return Market(daily, market.index, market.stock_basic, market.source)


def test_a_top_k_from_the_records_never_selects_an_unfillable_row(small_market: Market) -> None:
    market = _limit_up_next_opens(small_market, day_from=180)
    rules = UniverseConfig(min_list_days=0, exclude_st=False).rules()
    ds = build_dataset(market, None, LabelConfig(kind="touch"), SplitConfig(), rules)
    rng = np.random.default_rng(0)
    scores = {}
    for name in ("val", "test"):
        fills = ds.fillable(name)
        # a model that loves the stocks about to open at limit-up: they head every day's list
        scores[name] = np.where(fills, rng.uniform(0, 0.9, len(fills)), 1.0)
    records, metrics = segment_records(ds, scores, 0.5, TOP_K)
    for name, record in records.items():
        assert list(record.columns) == RECORD_COLUMNS
        assert len(record) == ds.masks(all_rows=True)[name].sum()  # every candidate
        assert (~record["fillable"]).sum() >= 5  # the unfillable ones are there, marked
        assert record.loc[~record["fillable"], "label"].isna().all()
        bought = bought_top_k(record.rename(columns={"probability": "score"}), TOP_K)
        assert bought["fillable"].all()
        # not refilled from lower ranks: a day with u unfillable rows in its top k buys k - u
        top = record.sort_values(["trade_date", "probability"], ascending=[True, False])
        top = top.groupby("trade_date").head(TOP_K)
        per_day = top.groupby("trade_date")["fillable"].sum()
        counted = bought.groupby("trade_date").size().reindex(per_day.index, fill_value=0)
        pd.testing.assert_series_equal(counted, per_day, check_names=False, check_dtype=False)
        assert (per_day < TOP_K).any()
        assert metrics[f"{name}_topk_bought_mean"] == per_day.mean()
        precision = bought.groupby("trade_date")["label"].mean().mean()
        assert metrics[f"{name}_topk_precision_mean"] == precision
