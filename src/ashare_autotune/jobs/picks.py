"""Daily picks: score one trading day with a registered model and write a ranked table."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ashare_autotune.config.schema import PredictConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.modelling.labels import trading_calendar
from ashare_autotune.modelling.tradable import universe_mask
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.data_match import check_same_data
from ashare_autotune.tracking.loaded_model import LoadedModel, load_model

log = logging.getLogger(__name__)

# Rolling features look back this many of a stock's rows (MA20, momentum 20, max of 20).
HISTORY_ROWS = 21
PICK_COLUMNS = [
    "trade_date",
    "rank",
    "ts_code",
    "name",
    "industry",
    "probability",
    "pick",
    "eligible",
    "threshold",
    "model_name",
    "model_version",
    "model_uri",
]


@dataclass
class PredictResult:
    """The picks table, the day scored and where the table was written."""

    picks: pd.DataFrame
    trade_date: str
    path: Path


def select_day(features: pd.DataFrame, date: str | None) -> pd.DataFrame:
    """The feature rows of `date` (YYYYMMDD), or of the latest trading day when None.

    Raises `DataError` naming the date and the loaded range when that day has no bars.
    """
    dates = features["trade_date"]
    day = dates.max() if date is None else pd.Timestamp(date)
    rows = features.loc[dates == day]
    if rows.empty:
        raise DataError(
            f"date={date}: no bars on that day in the loaded data "
            f"({dates.min():%Y%m%d}..{dates.max():%Y%m%d}); not a trading day or outside "
            "data.start/data.end"
        )
    return rows


def rank_picks(
    rows: pd.DataFrame, scores: pd.DataFrame, stock_basic: pd.DataFrame, top_k: int | None
) -> pd.DataFrame:
    """Stocks of one day, the eligible ones first, sorted by probability (rank 1 = the highest
    eligible), with name and industry.

    Args:
        rows: ts_code, trade_date and eligible (default: all) of the scored rows.
        scores: probability and pick, aligned with `rows`.
        stock_basic: ts_code, name, industry.
        top_k: keep only the first k rows (None: all).
    """
    info = stock_basic.drop_duplicates("ts_code").set_index("ts_code")
    codes = rows["ts_code"].astype(str)
    out = pd.DataFrame(
        {
            "trade_date": rows["trade_date"].dt.strftime("%Y%m%d").to_numpy(),
            "ts_code": codes.to_numpy(),
            "name": codes.map(info["name"]).to_numpy() if "name" in info else None,
            "industry": codes.map(info["industry"]).to_numpy() if "industry" in info else None,
            "probability": scores["probability"].to_numpy(),
            "pick": scores["pick"].to_numpy(),
            "eligible": rows["eligible"].to_numpy(bool) if "eligible" in rows else True,
        }
    )
    out["pick"] &= out["eligible"]  # a stock outside the universe is never a pick
    out = out.sort_values(
        ["eligible", "probability", "ts_code"], ascending=[False, False, True], kind="stable"
    )
    out.insert(1, "rank", range(1, len(out) + 1))
    out = out.reset_index(drop=True)
    return out if top_k is None else out.head(top_k)


def run_predict(cfg: PredictConfig) -> PredictResult:
    """Load the model and the bars, score the day and write the picks file.

    Args:
        cfg: the validated predict configuration.

    Returns:
        The `PredictResult`.
    """
    tracking.set_tracking_uri(cfg.mlflow.tracking_uri)
    model = load_model(cfg.model_uri)
    market = load_market(cfg.data)
    check_same_data(model.meta, market, model.display, cfg.allow_other_data)
    picks = score_market(model, market, cfg.date, cfg.top_k)
    day = str(picks["trade_date"].iloc[0])
    path = write_table(picks, Path(cfg.output_dir) / f"picks_{day}.{cfg.format}")
    n_picks = int(picks["pick"].sum())
    log.info(
        "%s on %s: %d picks of %d rows (%d in the universe: %s) written to %s; whether each "
        "can be bought at the next open (no limit-up open, not suspended) is not known yet",
        model.display,
        day,
        n_picks,
        len(picks),
        int(picks["eligible"].sum()),
        model.universe.describe(),
        path,
    )
    if os.environ.get("MLFLOW_RUN_ID"):  # under `mlflow run -e predict`: keep the file
        tracking.log_artifact(path, "picks")
    return PredictResult(picks=picks, trade_date=day, path=path)


def score_market(
    model: LoadedModel, market: Market, date: str | None, top_k: int | None
) -> pd.DataFrame:
    """The ranked picks of one day of `market` with the model's features, threshold and
    universe (`eligible`: the universe rules at that day, from data up to it). Whether the next
    open fills (no bar, or an open at limit-up) is unknown on the day: the picks cannot say."""
    features = build_feature_set(market, None, list(model.features))
    calendar = trading_calendar(market.daily, market.index)
    features["eligible"] = universe_mask(market, model.universe.rules(), calendar)
    rows = select_day(features, date)
    day = rows["trade_date"].iloc[0]
    history = int((features["trade_date"].drop_duplicates() <= day).sum())
    if history < HISTORY_ROWS:
        log.warning(
            "only %d trading days up to %s in the data: features need %d; load an earlier "
            "data.start",
            history,
            f"{day:%Y%m%d}",
            HISTORY_ROWS,
        )
    train_start, train_end = model.data_range
    if f"{day:%Y%m%d}" <= train_end:
        log.warning(
            "%s is inside the model's training data (%s..%s): these are in-sample scores",
            f"{day:%Y%m%d}",
            train_start,
            train_end,
        )
    picks = rank_picks(rows, model.predict(rows), market.stock_basic, top_k)
    picks["threshold"] = model.threshold
    picks["model_name"] = model.name or ""
    picks["model_version"] = model.version or ""
    picks["model_uri"] = model.uri
    return picks[PICK_COLUMNS]


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write CSV or parquet (by suffix) via a temporary file, so no half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False, encoding="utf-8")
    os.replace(tmp, path)
    return path
