"""Out-of-time evaluation: a registered model is scored on days after its training data, with
labels made the same way, and the result is a new MLflow run linked to the model version."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ashare_autotune.config.loading import register_configs, to_evaluate_config
from ashare_autotune.config.schema import EvaluateConfig, LabelConfig
from ashare_autotune.config.universe import UniverseConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.evaluation.threshold import signal_picks
from ashare_autotune.jobs.out_of_time import run_evaluation
from ashare_autotune.modelling.dataset import labelled_rows
from ashare_autotune.modelling.labels import forward_returns, trading_calendar
from ashare_autotune.modelling.limits import limit_flags
from tests.conftest import CONF_DIR, TrainedModel


def _evaluate_config(trained: TrainedModel, *overrides: str) -> EvaluateConfig:
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"mlflow.tracking_uri={trained.tracking_uri}",
                f"model_uri={trained.model_uri}",
                *trained.data_overrides,
                # 40 stocks: a book smaller than the default 50 + 5 (the debug preset's)
                "backtest.top_k=10",
                "backtest.n_drop=2",
                *overrides,
            ],
        )
    return to_evaluate_config(cfg)


def test_forward_return_is_last_close_within_the_horizon_over_close() -> None:
    dates = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    daily = pd.DataFrame(
        {
            # B is suspended on the 3rd and 4th: its horizon from the 2nd ends at the 2nd+2 days
            "ts_code": pd.Categorical(["A"] * 5 + ["B"] * 3),
            "trade_date": list(dates) + [dates[0], dates[1], dates[4]],
            "close": [10.0, 11.0, 12.0, 9.0, 10.0, 20.0, 21.0, 30.0],
        }
    )
    calendar = pd.DatetimeIndex(dates)
    fwd = forward_returns(daily, calendar, days=2)
    expected = [12 / 10 - 1, 9 / 11 - 1, 10 / 12 - 1, 10 / 9 - 1, np.nan, 21 / 20 - 1, np.nan]
    np.testing.assert_allclose(fwd[:7], expected)
    assert np.isnan(fwd[7])  # B's last row has nothing ahead


@pytest.mark.slow
def test_evaluate_logs_a_run_linked_to_the_model_version(trained_model: TrainedModel) -> None:
    cfg = _evaluate_config(trained_model)
    assert cfg.label is None  # the label stored with the model is used
    result = run_evaluation(cfg)

    assert result.start > trained_model.train_end
    run = mlflow.MlflowClient(trained_model.tracking_uri).get_run(result.run_id)
    version = trained_model.result.model_version
    assert run.data.tags["model_name"] == "ashare-autotune-debug"
    assert run.data.tags["model_version"] == version
    assert run.data.tags["source_run_id"] == trained_model.result.run_id
    assert run.data.tags["source_model_id"].startswith("m-")
    assert run.data.tags["overlaps_training_data"] == "false"
    for key in ("oot_auc", "oot_precision", "oot_recall", "oot_n_picks"):
        assert run.data.metrics[key] == pytest.approx(result.metrics[key])
    linked = mlflow.MlflowClient(trained_model.tracking_uri).get_model_version(
        "ashare-autotune-debug", version
    )
    assert linked.tags["last_evaluation_run_id"] == result.run_id

    # The rows scored are exactly the labelled rows after the model's data, labels made the
    # same way as in training.
    market = load_market(cfg.data)
    label = LabelConfig(kind="touch")  # the debug preset's, stored with the model
    frame, _, _ = labelled_rows(market, None, label, UniverseConfig().rules())
    after = frame["trade_date"] > pd.Timestamp(trained_model.train_end)
    candidates = frame.loc[after]  # the universe's rows at T: all recorded
    oot = candidates.loc[candidates["label"].notna()]  # labelled: the entry fills, a close
    assert result.metrics["oot_n_rows"] == len(oot)
    assert result.metrics["oot_base_rate"] == pytest.approx(oot["label"].mean())
    calendar = trading_calendar(market.daily, market.index)
    open_up = limit_flags(market.daily, market.stock_basic)["open_limit_up"].to_numpy()
    fwd = market.daily[["ts_code", "trade_date"]].assign(
        fwd=forward_returns(market.daily, calendar, 5, "next_open", open_up)
    )
    universe = oot.merge(fwd, on=["ts_code", "trade_date"])["fwd"]
    assert len(universe) == len(oot)
    assert result.metrics["oot_mean_fwd_return_universe"] == pytest.approx(universe.mean())
    assert 0 < result.metrics["oot_n_picks"] < len(oot)
    assert "out-of-time" in result.table and "mean_fwd_return_picks" in result.table
    # the window's record: the scored rows, from which its metrics are recomputed
    record = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=result.run_id,
            artifact_path=f"predictions/oot_{result.start}_{result.end}.parquet",
            tracking_uri=trained_model.tracking_uri,
        )
    )
    assert len(record) == len(candidates) and record["eligible"].all()
    assert (record["fillable"].to_numpy() == candidates["fillable"].to_numpy()).all()
    assert record["pick"].sum() == result.metrics["oot_n_picks"]
    # at most the cap the threshold was chosen under a day (the default 10), the day's best
    assert record.groupby("trade_date")["pick"].sum().max() <= 10
    threshold = trained_model.result.threshold.threshold
    capped = signal_picks(record["probability"], record["trade_date"], threshold, 10)
    assert (record["pick"].to_numpy() == capped).all()
    precision = record.loc[record["pick"], "label"].mean()
    assert run.data.metrics["oot_precision"] == pytest.approx(precision, abs=1e-9)
    assert "oot_rank_ic_mean" in run.data.metrics and "rank_ic_mean" in result.table


def test_a_window_inside_the_training_data_is_refused(trained_model: TrainedModel) -> None:
    with pytest.raises(ConfigError, match="not out-of-time"):
        run_evaluation(_evaluate_config(trained_model, "start=20181201"))


@pytest.mark.slow
def test_allow_overlap_scores_inside_the_training_data_and_says_so(
    trained_model: TrainedModel,
) -> None:
    cfg = _evaluate_config(trained_model, "start=20181201", "end=20181231", "allow_overlap=true")
    result = run_evaluation(cfg)
    assert (result.start, result.end) == ("20181203", "20181231")
    run = mlflow.MlflowClient(trained_model.tracking_uri).get_run(result.run_id)
    assert run.data.tags["overlaps_training_data"] == "true"


def test_a_window_without_labelled_rows_is_a_data_error(trained_model: TrainedModel) -> None:
    with pytest.raises(DataError, match="no labelled rows in the window 20190222"):
        run_evaluation(_evaluate_config(trained_model, "start=20190222"))


def test_label_can_be_overridden_with_the_label_group(trained_model: TrainedModel) -> None:
    cfg = _evaluate_config(trained_model, "label=default", "label.min_return=0.06")
    assert cfg.label == LabelConfig(min_days=3, max_days=5, min_return=0.06)
