"""Tradable by construction (issue 15): the universe at T, the next-open entry, the predictions
record and the signal metrics it reproduces, recomputed here from the raw bars and the record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ashare_autotune.config.schema import AppConfig, LabelConfig, SplitConfig
from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.config.universe import UniverseConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.evaluation.records import (
    RECORD_COLUMNS,
    SOURCE_COLUMNS,
    prediction_record,
)
from ashare_autotune.evaluation.threshold import capped_picks
from ashare_autotune.jobs.picks import rank_picks, run_predict
from ashare_autotune.jobs.pipeline import TrainResult, run_training
from ashare_autotune.modelling.dataset import build_dataset
from ashare_autotune.modelling.features import build_features
from ashare_autotune.modelling.labels import make_labels, trading_calendar
from ashare_autotune.modelling.tradable import universe_mask
from tests.conftest import TrainedModel
from tests.test_predict import _predict_config

MIN_AMOUNT = 100_000.0  # about the 25th percentile of the synthetic 20-day mean amount
OVERRIDES = (
    f"universe.min_amount={MIN_AMOUNT}",
    "universe.exclude_boards=[ChiNext]",
    "registry.register=false",
)


@pytest.fixture(scope="module")
def run(
    compose_app: Callable[..., AppConfig], tmp_path_factory: pytest.TempPathFactory
) -> tuple[AppConfig, TrainResult, Path]:
    """One debug training run with a liquidity floor and a board excluded."""
    root = tmp_path_factory.mktemp("tradable")
    app = compose_app(f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}", *OVERRIDES)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        result = run_training(app)
    return app, result, root


def _record(run: tuple[AppConfig, TrainResult, Path], segment: str) -> pd.DataFrame:
    app, result, root = run
    path = mlflow.artifacts.download_artifacts(
        run_id=result.run_id,
        artifact_path=f"predictions/{segment}.parquet",
        tracking_uri=app.mlflow.tracking_uri,
        dst_path=str(root / "download"),
    )
    return pd.read_parquet(path)


def _logged(run: tuple[AppConfig, TrainResult, Path]) -> dict[str, float]:
    app, result, _ = run
    return mlflow.MlflowClient(app.mlflow.tracking_uri).get_run(result.run_id).data.metrics


def _bars(record: pd.DataFrame, market: Market) -> pd.DataFrame:
    """The record's rows joined with their own bar and the stock's next market day's bar."""
    daily = market.daily.assign(ts_code=market.daily["ts_code"].astype(str))
    calendar = trading_calendar(market.daily, market.index)
    rows = record.merge(daily, on=["ts_code", "trade_date"], how="left", validate="1:1")
    nxt = calendar[calendar.searchsorted(rows["trade_date"], side="right")]
    rows["next_date"] = nxt
    ahead = daily.rename(columns=lambda c: f"next_{c}" if c != "ts_code" else c).rename(
        columns={"next_trade_date": "next_date"}
    )
    return rows.merge(ahead, on=["ts_code", "next_date"], how="left", validate="1:1")


@pytest.mark.parametrize("segment", ["val", "test"])
def test_the_record_holds_every_candidate_and_whether_it_fills(
    run: tuple[AppConfig, TrainResult, Path], segment: str
) -> None:
    app = run[0]
    record = _record(run, segment)
    assert list(record.columns) == RECORD_COLUMNS
    assert record["eligible"].all() and record["pick"].any()
    rows = _bars(record, load_market(app.data))
    # fillable at T+1's open: the stock has that day's bar and it does not open at +10%
    # (the synthetic 600/000 limit; ChiNext is excluded, STAR's limit is 20%).
    limit = np.where(rows["ts_code"].str.startswith("688"), 1.2, 1.1)
    at_limit = (rows["next_open"] - rows["next_pre_close"] * limit).abs() <= 0.006
    fills = rows["next_open"].notna() & ~(at_limit & (rows["next_open"] == rows["next_high"]))
    assert (record["fillable"] == fills).all()
    # (the planted limit-up opens below show unfillable candidates recorded, marked)
    assert record.loc[~record["fillable"], "label"].isna().all()
    # the universe at T, from the bars up to T
    assert not rows["ts_code"].str.startswith(("300", "301")).any()
    market = load_market(app.data)
    daily = market.daily.assign(ts_code=market.daily["ts_code"].astype(str))
    mean20 = daily.groupby("ts_code")["amount"].transform(
        lambda a: a.astype(float).rolling(20).mean()
    )
    liquid = daily.assign(mean20=mean20).merge(record, on=["ts_code", "trade_date"])
    assert (liquid["mean20"] >= MIN_AMOUNT).all() and len(liquid) == len(record)
    # and the rules did leave rows out of this segment
    lo, hi = record["trade_date"].min(), record["trade_date"].max()
    window = daily.loc[daily["trade_date"].between(lo, hi)]
    assert window["ts_code"].str.startswith("300").any()
    assert (mean20[window.index] < MIN_AMOUNT).any()


@pytest.mark.parametrize("segment", ["val", "test"])
def test_logged_metrics_are_recomputed_from_the_record(
    run: tuple[AppConfig, TrainResult, Path], segment: str
) -> None:
    app, result, _ = run
    record, logged = _record(run, segment), _logged(run)
    picks = record.loc[record["pick"]]
    labelled = picks.loc[picks["label"].notna()]  # classification metrics: labelled rows
    assert logged[f"{segment}_n_picks"] == len(labelled)
    assert logged[f"{segment}_precision"] == pytest.approx(labelled["label"].mean(), abs=1e-9)
    # a pick: probability >= threshold and among the day's threshold.max_picks_per_day best
    capped = capped_picks(
        record["probability"].to_numpy(),
        record["trade_date"].to_numpy(),
        result.threshold.threshold,
        app.threshold.max_picks_per_day,
    )
    assert (record["pick"].to_numpy() == capped).all()
    assert record.groupby("trade_date")["pick"].sum().max() <= app.threshold.max_picks_per_day
    top = (
        record.sort_values(["trade_date", "probability"], ascending=[True, False], kind="stable")
        .groupby("trade_date")
        .head(app.trading.top_k)
    )
    bought = top.loc[top["fillable"]]  # ranked among all; an unfillable pick is not bought
    topk = bought.groupby("trade_date")["label"].mean().mean()
    assert logged[f"{segment}_topk_precision_mean"] == pytest.approx(topk, abs=1e-9)
    rank_ic = [
        stats.spearmanr(day["probability"], day["fwd_return"]).statistic
        for _, day in record.dropna(subset=["fwd_return"]).groupby("trade_date")
    ]
    assert logged[f"{segment}_rank_ic_mean"] == pytest.approx(np.nanmean(rank_ic), abs=1e-9)
    per_day = (
        picks.groupby("trade_date").size().reindex(record["trade_date"].unique(), fill_value=0)
    )
    assert logged[f"{segment}_picks_per_day"] == pytest.approx(per_day.mean(), abs=1e-9)
    assert logged[f"{segment}_days_with_picks"] == (per_day > 0).sum()


def test_the_registered_facts_name_the_entry_and_the_universe(
    run: tuple[AppConfig, TrainResult, Path],
) -> None:
    app, result, _ = run
    params = mlflow.MlflowClient(app.mlflow.tracking_uri).get_run(result.run_id).data.params
    assert params["label.entry"] == "next_open"
    assert params["universe.min_amount"] == str(MIN_AMOUNT)
    assert params["universe.exclude_boards"] == "['ChiNext']"


def _plant_limit_up_opens(market: Market, n: int = 6) -> tuple[Market, pd.DataFrame]:
    """Make T+1 open at the +10% limit (open == high) for `n` main-board stock-days T."""
    daily = market.daily.copy()
    codes = daily["ts_code"].astype(str)
    same_next = codes.shift(-1) == codes
    main = codes.str.startswith(("600", "000"))
    day_rank = daily.groupby("ts_code", observed=True).cumcount()
    candidates = np.flatnonzero(
        same_next & main & day_rank.between(60, 250) & (day_rank % 37 == 0)
    )
    chosen = candidates[:: max(1, len(candidates) // n)][:n]
    nxt = chosen + 1
    limit_price = (daily["pre_close"].to_numpy(np.float64)[nxt] * 1.1).round(2)
    for col in ("open", "high"):
        daily.loc[nxt, col] = limit_price.astype(np.float32)
    daily.loc[nxt, "close"] = np.minimum(daily.loc[nxt, "close"], daily.loc[nxt, "high"])
    planted = daily.loc[chosen, ["ts_code", "trade_date"]].assign(
        ts_code=lambda f: f["ts_code"].astype(str)
    )
    return Market(daily, market.index, market.stock_basic, market.source), planted


def test_unfillable_rows_are_scored_but_never_trained_on_or_measured(
    small_market: Market,
) -> None:
    market, planted = _plant_limit_up_opens(small_market)
    rules = UniverseConfig(min_list_days=0, exclude_st=False).rules()
    ds = build_dataset(market, None, LabelConfig(), SplitConfig(), rules)
    keys = ds.frame.assign(ts_code=ds.frame["ts_code"].astype(str))
    marked = keys.merge(planted, on=["ts_code", "trade_date"])
    assert len(marked) == len(planted) >= 3
    assert not marked["fillable"].any() and marked["label"].isna().all()
    unfillable = ~ds.frame["fillable"].to_numpy()
    for name, mask in ds.masks().items():
        assert not (mask & unfillable).any(), name
        x, y = ds.segment(name)
        assert len(x) == mask.sum() and np.isfinite(y).all()
    every = ds.masks(all_rows=True)  # what a backtest scores: the unfillable rows too
    # the planted rows and the synthetic market's own limit-up opens
    assert sum(int((m & unfillable).sum()) for m in every.values()) >= len(planted)
    for name, mask in every.items():
        assert len(ds.segment_rows(name, all_rows=True)) == mask.sum()
    train = ds.segment_rows("train")
    assert train["fillable"].all() and np.isfinite(train["label"]).all()
    for name in ("val", "test"):  # a record holds them, marked: a top-k cannot buy them
        rows = ds.segment_rows(name, SOURCE_COLUMNS, all_rows=True)
        record = prediction_record(rows, np.full(len(rows), 0.5), 0.5)
        assert not record.merge(planted, on=["ts_code", "trade_date"])["fillable"].any()


def test_no_universe_rule_or_feature_at_t_changes_when_later_bars_change(
    small_market: Market,
) -> None:
    cut = small_market.daily["trade_date"].sort_values().unique()[200]
    later = small_market.daily["trade_date"] > cut
    rng = np.random.default_rng(0)
    daily = small_market.daily.copy()
    scale = rng.uniform(0.5, 2.0, int(later.sum())).astype(np.float32)
    for col in ("open", "high", "low", "close", "pre_close", "amount", "vol"):
        daily.loc[later, col] = daily.loc[later, col] * scale
    drop = later & (rng.random(len(daily)) < 0.3)  # and some later bars vanish (suspensions)
    daily = daily.loc[~drop].reset_index(drop=True)
    changed = Market(daily, small_market.index, small_market.stock_basic, small_market.source)
    rules = UniverseConfig(min_amount=MIN_AMOUNT, exclude_boards=["STAR"]).rules()

    def at_or_before_cut(market: Market) -> tuple[np.ndarray, pd.DataFrame]:
        calendar = trading_calendar(market.daily, market.index)
        ok = universe_mask(market, rules, calendar)
        feats = build_features(market.daily, market.index, market.stock_basic)
        early = (market.daily["trade_date"] <= cut).to_numpy()
        return ok[early], feats.loc[early].reset_index(drop=True)

    ok_before, feats_before = at_or_before_cut(small_market)
    ok_after, feats_after = at_or_before_cut(changed)
    assert 0 < ok_before.sum() < len(ok_before), "the rules must exclude some rows to mean much"
    np.testing.assert_array_equal(ok_before, ok_after)
    pd.testing.assert_frame_equal(feats_before, feats_after)


def test_rank_picks_never_picks_an_ineligible_stock() -> None:
    day = pd.Timestamp("2024-01-02")
    rows = pd.DataFrame(
        {
            "ts_code": ["600000.SH", "000001.SZ", "300001.SZ"],
            "trade_date": [day] * 3,
            "eligible": [False, True, True],
        }
    )
    scores = pd.DataFrame({"probability": [0.9, 0.7, 0.2], "pick": [True, True, False]})
    basic = pd.DataFrame({"ts_code": rows["ts_code"], "name": ["a", "b", "c"]})
    out = rank_picks(rows, scores, basic, top_k=None)
    assert list(out["ts_code"]) == ["000001.SZ", "300001.SZ", "600000.SH"]  # eligible first
    assert list(out["pick"]) == [True, False, False]
    assert list(out["eligible"]) == [True, True, False]
    assert list(rank_picks(rows, scores, basic, top_k=1)["ts_code"]) == ["000001.SZ"]


def test_predict_writes_every_stock_marks_the_ineligible_and_never_picks_them(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    # 20180720: 000013.SZ (listed 20180712) is younger than 20 trading days; every other stock
    # trading that day listed before 20180116
    cfg = _predict_config(trained_model, tmp_path, "date=20180720")
    picks = run_predict(cfg).picks.set_index("ts_code")
    bars = load_market(cfg.data).daily
    assert len(picks) == (bars["trade_date"] == "2018-07-20").sum()  # every stock of the day
    assert picks["eligible"].dtype == bool
    young = ["000013.SZ"]
    assert not picks.loc[young, "eligible"].any()
    assert picks.drop(index=young)["eligible"].all()
    assert not (picks["pick"] & ~picks["eligible"]).any()
    # picked: at or above the threshold and among the day's best `max_picks_per_day` eligible
    threshold = trained_model.result.threshold.threshold
    eligible = picks.loc[picks["eligible"]]
    above = eligible["probability"] >= threshold
    cap = ThresholdConfig().max_picks_per_day  # the model was trained with the default
    assert not (eligible["pick"] & ~above).any()
    assert eligible["pick"].sum() == min(cap, above.sum())
    if eligible["pick"].any() and (~eligible["pick"]).any():
        lowest_pick = eligible.loc[eligible["pick"], "probability"].min()
        assert lowest_pick >= eligible.loc[~eligible["pick"], "probability"].max()


def test_st_is_point_in_time_from_the_markets_namechange(small_market: Market) -> None:
    code = str(small_market.daily["ts_code"].iloc[0])
    names = pd.DataFrame(  # `Market.namechange`'s shape: datetimes, an open end = still in force
        {
            "ts_code": [code, code],
            "name": ["合成", "*ST合成"],
            "start_date": pd.to_datetime(["2017-01-01", "2018-06-01"]),
            "end_date": pd.to_datetime(["2018-05-31", None]),
        }
    )
    market = replace(small_market, namechange=names)
    frame = build_dataset(market, None, LabelConfig(), SplitConfig()).frame
    dates = frame.loc[frame["ts_code"].astype(str) == code, "trade_date"]
    assert len(dates) and dates.max() < pd.Timestamp("2018-06-01")  # ST from then on: out


def test_a_gain_of_exactly_min_return_on_float32_prices_is_positive() -> None:
    days = pd.bdate_range("2024-01-01", periods=8)
    close = np.array([5.0, 5.0, 5.0, 5.2, 5.0, 5.0, 5.0, 5.0], dtype=np.float32)
    daily = pd.DataFrame(
        {
            "ts_code": pd.Categorical(["600000.SH"] * 8),
            "trade_date": days,
            "open": np.float32(5.0),
            "close": close,
        }
    )
    label = make_labels(
        daily, pd.DatetimeIndex(days), 3, 3, 0.04, "next_open", np.zeros(8, dtype=bool)
    )
    assert float(np.float32(5.2)) < 5.0 * 1.04  # in float64 the float32 close falls short
    assert label.iloc[0] == 1  # open[T+1] 5.00 -> close[T+3] 5.20 is +4.0% exactly


def test_the_candidates_at_t_do_not_change_when_a_stock_is_suspended_after_t(
    small_market: Market,
) -> None:
    daily = small_market.daily
    calendar = trading_calendar(daily, small_market.index)
    t = calendar[150]
    code = str(daily.loc[daily["trade_date"] == t, "ts_code"].iloc[3])
    mine = (daily["ts_code"] == code).to_numpy()
    after = daily["trade_date"].between(calendar[153], calendar[158]).to_numpy()
    assert (mine & after).sum() == 6  # it trades on T+3..T+8: remove them (a suspension)
    suspended = replace(small_market, daily=daily.loc[~(mine & after)].reset_index(drop=True))
    rules = UniverseConfig(min_list_days=0, exclude_st=False).rules()

    def candidates(market: Market) -> tuple[pd.DataFrame, pd.DataFrame]:
        ds = build_dataset(market, None, LabelConfig(), SplitConfig(), rules)
        rows = ds.frame.loc[ds.frame["trade_date"] <= t, ["ts_code", "trade_date", "fillable"]]
        return ds.frame, rows.reset_index(drop=True)

    frame, before = candidates(small_market)
    changed, now = candidates(suspended)
    pd.testing.assert_frame_equal(before, now)  # the same rows at and before T, same fills
    at_t = (changed["ts_code"] == code) & (changed["trade_date"] == t)
    row = changed.loc[at_t].iloc[0]
    assert row["fillable"] and np.isnan(row["label"])  # bought at T+1, stuck: no label
    assert np.isfinite(
        frame.loc[(frame["ts_code"] == code) & (frame["trade_date"] == t), "label"]
    ).all()
