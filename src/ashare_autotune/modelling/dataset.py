"""Assemble the modelling table: features + labels of the candidate rows, split by time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import LabelConfig, SplitConfig
from ashare_autotune.data.market import Market
from ashare_autotune.modelling import features as basic_features
from ashare_autotune.modelling.feature_sets import (
    FeatureSpec,
    build_feature_set,
    feature_chunks,
    feature_names,
)
from ashare_autotune.modelling.feature_store import SEGMENTS, FeatureStore, write_feature_store
from ashare_autotune.modelling.label_designs import benchmark_levels
from ashare_autotune.modelling.labels import day_numbers, trading_calendar
from ashare_autotune.modelling.split import SplitPlan, split_by_time, walk_forward_windows
from ashare_autotune.modelling.tradable import Tradable, tradable_rows
from ashare_autotune.modelling.universe import UniverseRules

log = logging.getLogger(__name__)
DEFAULT_UNIVERSE = UniverseRules()
PREDICT_ROWS = 1 << 18  # rows per prediction batch read from a feature store (~0.2 GB)


@dataclass
class Dataset:
    """Candidate rows with their features, trading-day numbers and the time split.

    Attributes:
        frame: ts_code, trade_date, day (trading-day number), the features (float32), label
            (float32 0/1; NaN where the entry cannot fill or the stock has no close in the
            horizon), fillable, close and fwd_return, for every candidate: in the universe at T
            with T+max_days inside the data (`tradable`: nothing after T decides it). Only the
            labelled rows are trained on and measured by label (`segment`, `masks`); all of
            them are scored, recorded and traded (`segment_rows(..., all_rows=True)`,
            `fillable`).
        feature_names: the model's input columns, in order.
        plan: the train/val/test day ranges.
        calendar: the trading calendar behind the day numbers.
        windows: walk-forward windows, oldest first (empty for a single split); `plan` is then
            the last window.
        store: the features on disk by segment (`feature_store`), or None: they are columns
            of `frame`. With a store, `frame` holds every other column, and features are read
            through `segment`, `features` and `predict`.
    """

    frame: pd.DataFrame
    feature_names: list[str]
    plan: SplitPlan
    calendar: pd.DatetimeIndex
    windows: list[SplitPlan] = field(default_factory=list)
    store: FeatureStore | None = None

    def window(self, k: int) -> Dataset:
        """The same rows seen through walk-forward window `k` (no copy of the frame)."""
        return replace(self, plan=self.windows[k], windows=[])

    def segment(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Features and labels of one segment's labelled rows ("train", "val" or "test")."""
        if self.store is not None:
            return self.features(name, self.positions(name)), self.labels(name)
        mask = self.masks()[name]
        # one copy of the segment's feature columns, not a copy of all columns and then another
        return self.frame.loc[mask, self.feature_names], self.frame["label"].to_numpy()[mask]

    def labels(self, name: str, all_rows: bool = False) -> np.ndarray:
        """Labels of one segment's labelled rows (with `all_rows`, of every candidate: NaN
        where unlabelled)."""
        return self.frame["label"].to_numpy()[self.masks(all_rows)[name]]

    def fillable(self, name: str) -> np.ndarray:
        """Whether each candidate of a segment (every row, in row order, as `predict(...,
        all_rows=True)` scores them) fills its entry: a top-k or a threshold's picks count an
        unfillable one as not bought."""
        return self.frame["fillable"].to_numpy(bool)[self.masks(all_rows=True)[name]]

    def positions(self, name: str) -> np.ndarray:
        """Where a segment's labelled rows are among all its rows (a store's row numbers)."""
        return np.flatnonzero(self._labelled()[self.masks(all_rows=True)[name]])

    def _labelled(self) -> np.ndarray:
        return np.isfinite(self.frame["label"].to_numpy())

    def features(self, name: str, positions: np.ndarray) -> pd.DataFrame:
        """Feature rows of a segment at increasing `positions` among all its rows (a copy of
        those rows only), in model column order."""
        if self.store is not None:
            values = self.store.take(name, positions)
            return pd.DataFrame(values, columns=self.feature_names, copy=False)
        rows = np.flatnonzero(self.masks(all_rows=True)[name])[positions]
        where = [self.frame.columns.get_loc(c) for c in self.feature_names]
        return self.frame.iloc[rows, where].reset_index(drop=True)

    def head(self, name: str, n_rows: int) -> pd.DataFrame:
        """The first `n_rows` labelled rows of a segment with every column (the features
        between the keys and the label, as in a frame without a store), fresh 0..n-1 index."""
        positions = self.positions(name)[:n_rows]
        rows = self.frame.loc[self.masks()[name]].head(n_rows).reset_index(drop=True)
        if self.store is None:
            return rows
        keys = list(basic_features.KEYS)
        features = self.features(name, positions)
        return pd.concat([rows[keys], features, rows.drop(columns=keys)], axis=1)

    def predict(
        self, name: str, score: Callable[[pd.DataFrame], np.ndarray], all_rows: bool = False
    ) -> np.ndarray:
        """`score` of a segment's labelled rows (or with `all_rows` every row), in row order;
        from a store a batch at a time.

        Args:
            name: "train", "val" or "test".
            score: probabilities of feature rows (e.g. `FittedModel.predict`).
            all_rows: score the unlabelled rows too (records and a backtest's signals).
        """
        if self.store is None:
            return score(self.segment_rows(name, self.feature_names, all_rows))
        parts = [
            np.asarray(score(pd.DataFrame(b, columns=self.feature_names, copy=False)))
            for b in self.store.batches(name, PREDICT_ROWS)
        ]
        proba = np.concatenate(parts) if parts else np.empty(0, np.float32)
        return proba if all_rows else proba[self.positions(name)]

    def masks(self, all_rows: bool = False) -> dict[str, np.ndarray]:
        """Boolean row masks of `frame` for "train", "val" and "test": the labelled rows (what
        is trained on and measured by label), or with `all_rows` every candidate."""
        masks = self.plan.masks(self.frame["day"].to_numpy())
        if all_rows:
            return masks
        labelled = self._labelled()
        return {name: mask & labelled for name, mask in masks.items()}

    def segment_rows(
        self, name: str, columns: list[str] | None = None, all_rows: bool = False
    ) -> pd.DataFrame:
        """One segment's labelled rows (or with `all_rows`, every candidate): all
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


def labelled_rows(
    market: Market,
    features: FeatureSpec,
    label: LabelConfig,
    universe: UniverseRules = DEFAULT_UNIVERSE,
    benchmark: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str], pd.DatetimeIndex]:
    """Features and labels of every candidate row: in the universe at T, T+max_days in the data.

    Args:
        market: validated bars, index and stock_basic.
        features: the `features` group, or the feature columns (None: basic).
        label: the label definition (its entry: next_open or close; its kind).
        universe: the candidate rules at T (`config.universe.UniverseConfig.rules`).
        benchmark: the excess label's index bars (`data.indices.label_benchmark`; None: the
            market's index).

    Returns:
        (frame with ts_code, trade_date, the features, label (NaN where the entry cannot
        fill or the horizon has no close), fillable, day, close, fwd_return (the entry price
        to the last close of the label horizon); the feature names; the trading calendar).
    """
    calendar = trading_calendar(market.daily, market.index)
    rows = label_rows(market, calendar, label, universe, benchmark)
    # features of the kept rows only: no full-panel frame to copy and drop from
    frame = build_feature_set(market, None, features, rows=rows.keep)
    names = [c for c in frame.columns if c not in basic_features.KEYS]
    return _with_labels(frame, rows, market, calendar), names, calendar


def _with_labels(
    frame: pd.DataFrame, rows: Tradable, market: Market, calendar: pd.DatetimeIndex
) -> pd.DataFrame:
    """The kept rows' frame with label, fillable, day, close and fwd_return added."""
    keep = rows.keep
    frame["label"] = rows.label[keep]
    frame["fillable"] = rows.fillable[keep]
    frame["day"] = day_numbers(frame["trade_date"], calendar).astype(np.int32)
    frame["close"] = market.daily["close"].to_numpy()[keep]
    frame["fwd_return"] = rows.fwd_return[keep]  # the same entry as the label
    return frame


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
    bench = benchmark_levels(index, calendar) if label.kind == "excess" else None
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
    store_dir: Path | None = None,
) -> Dataset:
    """Features, labels and the embargoed time split for a market.

    Args:
        market: validated bars, index and stock_basic.
        features: the `features` group, or the feature columns (None: basic).
        label: the label definition.
        split: fractions and embargo.
        universe: the candidate rules at T.
        benchmark: the excess label's index bars (None: the market's index).
        store_dir: an empty directory for the features on disk (`Dataset.store`; a single
            split only: walk-forward windows keep them in the frame). None: in the frame.
    """
    if store_dir is None or split.kind == "walk_forward":
        frame, names, calendar = labelled_rows(market, features, label, universe, benchmark)
        plan, windows = _split_plan(frame["day"].to_numpy(), split)
        ds = Dataset(frame, names, plan, calendar, windows)
    else:
        ds = _stored_dataset(market, features, label, split, universe, benchmark, store_dir)
    for k in range(len(ds.windows)):
        log.info("walk-forward window %d: %s", k + 1, ds.window(k).summary())
    log.info("split: %s", ds.summary())
    return ds


def _split_plan(day: np.ndarray, split: SplitConfig) -> tuple[SplitPlan, list[SplitPlan]]:
    """The split of the candidates' days (the last walk-forward window) and every window."""
    days = int(day.min()), int(day.max())
    fractions = (split.train, split.val, split.test)
    if split.kind == "walk_forward":
        windows = walk_forward_windows(*days, fractions, split.embargo, split.n_windows)
        return windows[-1], windows
    return split_by_time(*days, fractions, split.embargo), []


def _stored_dataset(
    market: Market,
    features: FeatureSpec,
    label: LabelConfig,
    split: SplitConfig | None,
    universe: UniverseRules,
    benchmark: pd.DataFrame | None,
    store_dir: Path,
) -> Dataset:
    """`build_dataset` with the features written to `store_dir` by segment: the split needs
    only the kept rows' days, so it is known before any feature is built (`split` None: every
    row in the train segment, `span_dataset`)."""
    calendar = trading_calendar(market.daily, market.index)
    rows = label_rows(market, calendar, label, universe, benchmark)
    keys = {k: market.daily[k].array[rows.keep] for k in basic_features.KEYS}
    frame = _with_labels(pd.DataFrame(keys), rows, market, calendar)
    if split is None:
        n = len(calendar)
        plan = SplitPlan(train=(0, n), val=(n, n), test=(n, n), embargo=0)
    else:
        plan, _ = _split_plan(frame["day"].to_numpy(), split)
    masks = plan.masks(frame["day"].to_numpy())
    segment = np.full(len(frame), -1, dtype=np.int8)
    for k, name in enumerate(SEGMENTS):
        segment[masks[name]] = k
    names = feature_names(features, market.daily)
    chunks = feature_chunks(market, None, features, rows.keep)
    store = write_feature_store(chunks, segment, names, store_dir)
    return Dataset(frame, names, plan, calendar, store=store)


def span_dataset(
    market: Market,
    features: FeatureSpec,
    label: LabelConfig,
    universe: UniverseRules,
    benchmark: pd.DataFrame | None,
    store_dir: Path,
) -> Dataset:
    """Every candidate row in one segment ("train"), its features computed once and written to
    `store_dir` (a rolling retrain's windows each read their own days' rows from it: a frame
    position is the row's position in the store). Arguments: `build_dataset`'s."""
    return _stored_dataset(market, features, label, None, universe, benchmark, store_dir)
