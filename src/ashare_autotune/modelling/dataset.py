"""Assemble the modelling table: features + labels on labelled rows, split by time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.modelling.feature_sets import FeatureSpec, build_feature_set
from ashare_autotune.modelling.label_designs import benchmark_closes
from ashare_autotune.modelling.labels import day_numbers, trading_calendar
from ashare_autotune.modelling.split import SplitPlan, split_by_time, walk_forward_windows
from ashare_autotune.modelling.tradable import Tradable, tradable_rows
from ashare_autotune.modelling.universe import UniverseRules

log = logging.getLogger(__name__)
DEFAULT_UNIVERSE = UniverseRules()


@dataclass
class Dataset:
    """Labelled rows with their features, trading-day numbers and the time split.

    Attributes:
        frame: ts_code, trade_date, day (trading-day number), the features (float32), label
            (float32 0/1; NaN where the entry cannot fill), fillable, close and fwd_return, for
            rows in the universe at T whose label horizon is fully observed. Only the fillable
            rows are trained on and measured (`segment`, `masks`); all of them can be scored
            (`segment_rows(..., all_rows=True)`).
        feature_names: the model's input columns, in order.
        plan: the train/val/test day ranges.
        calendar: the trading calendar behind the day numbers.
        windows: walk-forward windows, oldest first (empty for a single split); `plan` is then
            the last window.
    """

    frame: pd.DataFrame
    feature_names: list[str]
    plan: SplitPlan
    calendar: pd.DatetimeIndex
    windows: list[SplitPlan] = field(default_factory=list)

    def window(self, k: int) -> Dataset:
        """The same rows seen through walk-forward window `k` (no copy of the frame)."""
        return replace(self, plan=self.windows[k], windows=[])

    def segment(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Features and labels of one segment's fillable rows ("train", "val" or "test")."""
        mask = self.masks()[name]
        # one copy of the segment's feature columns, not a copy of all columns and then another
        return self.frame.loc[mask, self.feature_names], self.frame["label"].to_numpy()[mask]

    def masks(self, all_rows: bool = False) -> dict[str, np.ndarray]:
        """Boolean row masks of `frame` for "train", "val" and "test": the fillable rows (what
        is trained on and measured), or with `all_rows` also the unfillable ones."""
        masks = self.plan.masks(self.frame["day"].to_numpy())
        if all_rows:
            return masks
        fillable = self.frame["fillable"].to_numpy()
        return {name: mask & fillable for name, mask in masks.items()}

    def segment_rows(
        self, name: str, columns: list[str] | None = None, all_rows: bool = False
    ) -> pd.DataFrame:
        """One segment's fillable rows (or with `all_rows`, every row, for scoring): all
        columns, or only `columns`."""
        mask = self.masks(all_rows)[name]
        return self.frame.loc[mask] if columns is None else self.frame.loc[mask, columns]

    def date_range(self, name: str) -> tuple[str, str]:
        """First and last trading day (YYYYMMDD) of a segment."""
        lo, hi = self.plan.ranges()[name]
        return self.calendar[lo].strftime("%Y%m%d"), self.calendar[hi - 1].strftime("%Y%m%d")

    def summary(self) -> dict[str, float | int | str]:
        """Rows, base rate and date range per segment, for logs and MLflow params."""
        out: dict[str, float | int | str] = {}
        masks = self.masks()
        label = self.frame["label"].to_numpy()
        for name, mask in masks.items():
            start, end = self.date_range(name)
            out[f"{name}_rows"] = int(mask.sum())
            out[f"{name}_base_rate"] = round(float(label[mask].mean()), 4) if mask.any() else 0.0
            out[f"{name}_start"], out[f"{name}_end"] = start, end
        return out


def split_off_train(ds: Dataset) -> tuple[pd.DataFrame, Dataset]:
    """The training rows and a dataset of the other rows (new frames; `ds` is unchanged).

    Once the caller lets go of `ds`, the training rows live only as long as the frame returned
    here: quantised, they can be freed (0.4 GB at whole-market scale); the returned dataset's
    `summary` and `segment` no longer see them.

    Returns:
        (the train rows, the dataset without them), both with a fresh 0..n-1 index.
    """
    train = ds.frame.loc[ds.masks()["train"]].reset_index(drop=True)
    rest = ~ds.masks(all_rows=True)["train"]  # unfillable train rows are never read again
    return train, replace(ds, frame=ds.frame.loc[rest].reset_index(drop=True))


def labelled_rows(
    market: Market,
    features: FeatureSpec,
    label: LabelConfig,
    universe: UniverseRules = DEFAULT_UNIVERSE,
    benchmark: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str], pd.DatetimeIndex]:
    """Features and labels of every row in the universe at T whose label horizon is observed.

    Args:
        market: validated bars, index and stock_basic.
        features: the `features` group, or the feature columns (None: basic).
        label: the label definition (its entry: next_open or close; its kind).
        universe: the candidate rules at T (`config.universe.UniverseConfig.rules`).
        benchmark: the excess label's index bars (`data.indices.label_benchmark`; None: the
            market's index).

    Returns:
        (frame with ts_code, trade_date, the features, label (NaN where the entry cannot
        fill), fillable, day, close, fwd_return (the entry price to the last close of the label
        horizon); the feature names; the trading calendar).
    """
    calendar = trading_calendar(market.daily, market.index)
    rows = label_rows(market, calendar, label, universe, benchmark)
    keep = rows.keep
    # features of the kept rows only: no full-panel frame to copy and drop from
    frame = build_feature_set(market, None, features, rows=keep)
    names = [c for c in frame.columns if c not in ("ts_code", "trade_date")]
    frame["label"] = rows.label[keep]
    frame["fillable"] = rows.fillable[keep]
    frame["day"] = day_numbers(frame["trade_date"], calendar).astype(np.int32)
    frame["close"] = market.daily["close"].to_numpy()[keep]
    frame["fwd_return"] = rows.fwd_return[keep]  # the same entry as the label
    return frame, names, calendar


def label_rows(
    market: Market,
    calendar: pd.DatetimeIndex,
    label: LabelConfig,
    universe: UniverseRules = DEFAULT_UNIVERSE,
    benchmark: pd.DataFrame | None = None,
) -> Tradable:
    """`tradable.tradable_rows` for a label definition: universe, fill, label, forward return.

    Args:
        market: validated bars, index and stock_basic.
        calendar: the trading calendar.
        label: the label definition (entry, kind, horizon, stop-loss).
        universe: the candidate rules at T.
        benchmark: the excess label's index bars (None: the market's index).
    """
    index = market.index if benchmark is None else benchmark
    bench = benchmark_closes(index, calendar) if label.kind == "excess" else None
    horizon = (label.min_days, label.max_days, label.min_return)
    return tradable_rows(
        market, calendar, *horizon, str(label.entry), universe,
        kind=str(label.kind), stop_loss=label.stop_loss, benchmark=bench,
    )  # fmt: skip


def build_dataset(
    market: Market,
    features: FeatureSpec,
    label: LabelConfig,
    split: SplitConfig,
    universe: UniverseRules = DEFAULT_UNIVERSE,
    benchmark: pd.DataFrame | None = None,
) -> Dataset:
    """Features, labels and the embargoed time split for a market.

    Args:
        market: validated bars, index and stock_basic.
        features: the `features` group, or the feature columns (None: basic).
        label: the label definition.
        split: fractions and embargo.
        universe: the candidate rules at T.
        benchmark: the excess label's index bars (None: the market's index).
    """
    frame, names, calendar = labelled_rows(market, features, label, universe, benchmark)
    days = int(frame["day"].min()), int(frame["day"].max())
    fractions = (split.train, split.val, split.test)
    windows = []
    if split.kind == "walk_forward":
        windows = walk_forward_windows(*days, fractions, split.embargo, split.n_windows)
        plan = windows[-1]
    else:
        plan = split_by_time(*days, fractions, split.embargo)
    ds = Dataset(frame=frame, feature_names=names, plan=plan, calendar=calendar, windows=windows)
    for k in range(len(windows)):
        log.info("walk-forward window %d: %s", k + 1, ds.window(k).summary())
    log.info("split: %s", ds.summary())
    return ds
