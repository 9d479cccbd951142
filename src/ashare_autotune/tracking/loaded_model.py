"""A model taken from the registry (or a run) together with the facts it was trained under."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import LabelConfig
from ashare_autotune.config.universe import UniverseConfig
from ashare_autotune.errors import DataError
from ashare_autotune.evaluation.threshold import signal_picks
from ashare_autotune.tracking import registry
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.input_checks import InputError, check_input

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A loaded `PickModel` pyfunc plus its meta.json and where it came from.

    Attributes:
        uri: the URI it was loaded from (models:/name@alias, models:/name/N, runs:/...).
        pyfunc: the MLflow pyfunc model (the same object `mlflow models serve` uses).
        meta: features, threshold, label definition, data range, segments, metrics.
        name, version: the registered model name and version (None outside the registry).
        model_id, run_id: the MLflow logged-model id and the training run.
    """

    uri: str
    pyfunc: Any
    meta: dict[str, Any]
    name: str | None
    version: str | None
    model_id: str | None
    run_id: str | None

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def label(self) -> LabelConfig:
        # Models from before label.entry existed bought at the close of T.
        return LabelConfig(**({"entry": "close"} | self.meta["label"]))

    @property
    def universe(self) -> UniverseConfig:
        """The universe the model was trained on (models from before it: every stock)."""
        stored = self.meta.get("universe", {"min_list_days": 0, "exclude_st": False})
        return UniverseConfig(**stored)

    @property
    def max_picks_per_day(self) -> int | None:
        """The picks a day the threshold was chosen under (`threshold.max_picks_per_day`);
        None for a model from before it was recorded (every row >= threshold is a pick)."""
        cap = self.meta.get("max_picks_per_day")
        return None if cap is None else int(cap)

    @property
    def top_k(self) -> int:
        """The daily top-k list's size of its signal metrics (`trading.top_k` at training)."""
        return int(self.meta.get("top_k", 10))

    @property
    def data_range(self) -> tuple[str, str]:
        """First and last trading day (YYYYMMDD) of the data the model was trained on."""
        return str(self.meta["data"]["start"]), str(self.meta["data"]["end"])

    @property
    def display(self) -> str:
        """`name vN` when registered, else the URI."""
        return f"{self.name} v{self.version}" if self.version else self.uri

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """probability and pick for rows of feature columns: probability >= threshold and,
        when the rows have a `trade_date`, among the day's `max_picks_per_day` best (the cap
        the threshold was chosen under: `threshold.signal_picks`; rows with `eligible` False
        take no slot and are never picked). An ensemble ranks each day's rows among themselves
        (without `trade_date`, all rows are one day).

        Raises `DataError` (one line) when the rows fail the model's input checks
        (`input_checks.check_input`: columns, dtypes, NaN, ranges recorded at training).
        """
        try:
            check_input(features, self.features, self.meta.get("input_profile"))
        except InputError as exc:
            raise DataError(f"{self.display}: {exc}") from None
        x = features[self.features].astype(np.float64)
        out = self._predict(x, features.get("trade_date"))
        proba = out["probability"].to_numpy(np.float64)
        pick = out["pick"].to_numpy(bool)
        if "trade_date" in features.columns:
            eligible = features["eligible"].to_numpy(bool) if "eligible" in features else None
            days = features["trade_date"].to_numpy()
            pick = signal_picks(proba, days, self.threshold, self.max_picks_per_day, eligible)
        return pd.DataFrame({"probability": proba, "pick": pick}, index=features.index)

    def _predict(self, x: pd.DataFrame, days: pd.Series | None) -> pd.DataFrame:
        """The pyfunc's output for rows `x` in their order; a model scored by day (an
        ensemble's day-rank blend, meta `model.by_day`) is asked one day's rows at a time."""
        if days is None or not self.meta.get("model", {}).get("by_day"):
            return self.pyfunc.predict(x)
        groups = pd.Series(np.arange(len(x))).groupby(days.to_numpy()).indices
        parts = [self.pyfunc.predict(x.iloc[at]).set_axis(at) for at in groups.values()]
        return pd.concat(parts).sort_index()

    def tags(self) -> dict[str, str]:
        """Tags that link another run (evaluation, picks) to this model."""
        tags = {"model_uri": self.uri, "source_model_id": self.model_id or ""}
        tags["source_run_id"] = self.run_id or ""
        if self.version:
            tags |= {"model_name": self.name or "", "model_version": self.version}
        return tags


def load_model(model_uri: str) -> LoadedModel:
    """Resolve and load a model URI; raises `UserError` when it does not exist.

    An alias is resolved once, to a version, and that version is loaded as `models:/name/N`:
    an alias moved meanwhile (a registration finishing) cannot make the picks name one
    version while another scores them.

    Args:
        model_uri: models:/name@alias, models:/name/N, runs:/<run>/model or models:/m-<id>.

    Returns:
        The `LoadedModel`; its `uri` is `models:/name/N` for any registry URI.
    """
    version = registry.resolve_version(model_uri)
    if version is not None:
        pinned = f"models:/{version.name}/{version.version}"
        if pinned != model_uri:
            log.info("%s is %s", model_uri, pinned)
        model_uri = pinned
    pyfunc, meta = tracking.load_pick_model(model_uri)
    ids = tracking.model_ids(pyfunc)
    loaded = LoadedModel(
        uri=model_uri,
        pyfunc=pyfunc,
        meta=meta,
        name=version.name if version else None,
        version=str(version.version) if version else None,
        model_id=ids["model_id"],
        run_id=ids["run_id"],
    )
    log.info(
        "model %s: %d features, threshold %.3f, trained on %s..%s",
        loaded.display,
        len(loaded.features),
        loaded.threshold,
        *loaded.data_range,
    )
    return loaded
