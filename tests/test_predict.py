"""Daily picks: the registered model scores the latest (or a given) trading day with the same
feature code as training and flags picks at the threshold stored with the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ashare_autotune.config.loading import register_configs, to_predict_config
from ashare_autotune.config.schema import PredictConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError, DataError, UserError
from ashare_autotune.jobs.picks import run_predict
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.tracking import loaded_model
from ashare_autotune.tracking.loaded_model import load_model
from tests.conftest import CONF_DIR, ROOT, TrainedModel


def _predict_config(trained: TrainedModel, out: Path, *overrides: str) -> PredictConfig:
    """Compose conf/predict.yaml like the CLI does."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "predict",
            overrides=[
                f"mlflow.tracking_uri={trained.tracking_uri}",
                f"output_dir={out}",
                f"model_uri={trained.model_uri}",
                *trained.data_overrides,
                *overrides,
            ],
        )
    return to_predict_config(cfg)


def test_predict_picks_the_latest_day_at_the_stored_threshold(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    cfg = _predict_config(trained_model, tmp_path)
    result = run_predict(cfg)
    picks = pd.read_csv(result.path, dtype={"trade_date": str, "model_version": str})
    market = load_market(cfg.data)

    latest = market.daily["trade_date"].max().strftime("%Y%m%d")
    assert result.trade_date == latest and result.path.name == f"picks_{latest}.csv"
    assert (picks["trade_date"] == latest).all()
    assert sorted(picks["ts_code"]) == sorted(market.daily["ts_code"].astype(str).unique())
    threshold = trained_model.result.threshold.threshold
    assert (picks["threshold"] == threshold).all()
    # above the threshold, and at most the cap it was chosen under: the day's best (eligible)
    cap = load_model(trained_model.model_uri).max_picks_per_day
    assert cap == 10  # threshold.max_picks_per_day, recorded in meta.json
    above = picks["eligible"] & (picks["probability"] >= threshold)
    assert (picks["pick"] == (above & (picks["rank"] <= cap))).all()
    assert 0 < picks["pick"].sum() <= cap and not picks["pick"].all()
    assert np.all(np.diff(picks["probability"]) <= 0)
    assert list(picks["rank"]) == list(range(1, len(picks) + 1))
    assert (picks["model_version"] == trained_model.result.model_version).all()
    names = market.stock_basic.set_index("ts_code")["name"]
    assert (picks["name"] == picks["ts_code"].map(names)).all()


def test_a_model_picks_at_most_its_cap_a_day_whatever_clears_the_threshold(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The cap binds: with 2 a day, a day's picks are its two best eligible rows above the
    threshold, however many more clear it (evaluate and backtest score through the same)."""
    cfg = _predict_config(trained_model, tmp_path)
    run_predict(cfg)  # points MLflow at the model's store
    model = load_model(trained_model.model_uri)
    features = build_feature_set(load_market(cfg.data), None, model.features)
    days = features.loc[features["trade_date"] > pd.Timestamp(trained_model.train_end)]
    proba = model.predict(days)["probability"]
    model.meta["max_picks_per_day"] = 2
    model.meta["threshold"] = threshold = float(proba.quantile(0.5))  # half the rows clear it
    eligible = days["ts_code"] != days["ts_code"].iloc[0]  # one stock outside the universe
    picks = model.predict(days.assign(eligible=eligible))
    per_day = picks["pick"].groupby(days["trade_date"]).sum()
    assert per_day.max() == 2 and (per_day == 2).mean() > 0.9  # ~20 clear it a day
    best = proba.where(eligible, -1.0).groupby(days["trade_date"])
    top2 = best.rank(ascending=False, method="first") <= 2
    assert (picks["pick"] == (top2 & eligible & (proba >= threshold))).all()


def test_predict_a_given_date_top_k_as_parquet(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    cfg = _predict_config(trained_model, tmp_path, "date=20190110", "top_k=5", "format=parquet")
    result = run_predict(cfg)
    picks = pd.read_parquet(result.path)
    assert result.path.name == "picks_20190110.parquet"
    assert len(picks) == 5 and (picks["trade_date"] == "20190110").all()
    everything = run_predict(
        _predict_config(trained_model, tmp_path / "all", "date=20190110")
    ).picks
    pd.testing.assert_frame_equal(picks, everything.head(5))


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("model_uri=models:/no-such-model@champion", UserError, "no-such-model"),
        ("model_uri=models:/ashare-autotune-debug/99", UserError, "version=99"),
        ("date=20190105", DataError, "date=20190105: no bars on that day"),
    ],
)
def test_predict_missing_model_or_day_is_a_clear_error(
    trained_model: TrainedModel, tmp_path: Path, override: str, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        run_predict(_predict_config(trained_model, tmp_path, override))
    assert not list(tmp_path.glob("**/*.csv")), "no picks file may be written on error"


def test_predict_rejects_a_badly_written_date(trained_model: TrainedModel, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'date'='2019-01-10'"):
        _predict_config(trained_model, tmp_path, "date=2019-01-10")


@pytest.mark.slow
def test_predict_command_line_writes_picks_and_reports_errors_in_one_line(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HYDRA_FULL_ERROR": "0"}
    env["MLFLOW_TRACKING_URI"] = trained_model.tracking_uri
    base = [sys.executable, "-m", "ashare_autotune.predict", *trained_model.data_overrides]
    base.insert(3, f"model_uri={trained_model.model_uri}")
    ok = subprocess.run(
        [*base, f"output_dir={tmp_path}", "top_k=3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "picks on 20190225" in ok.stdout and (tmp_path / "picks_20190225.csv").exists()
    bad = subprocess.run(
        [*base, "model_uri=models:/missing@champion"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: model_uri='models:/missing@")
    assert "Traceback" not in bad.stderr


def test_picks_name_the_version_they_were_scored_with(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`@champion` is resolved once, to a version, and that version is what is loaded: an alias
    moving between the two reads cannot make the picks name one version and score another."""
    loaded: list[str] = []
    original = loaded_model.tracking.load_pick_model

    def load(uri: str) -> Any:
        loaded.append(uri)
        return original(uri)

    monkeypatch.setattr(loaded_model.tracking, "load_pick_model", load)
    picks = run_predict(_predict_config(trained_model, tmp_path)).picks
    version = trained_model.result.model_version
    assert loaded == [f"models:/ashare-autotune-debug/{version}"]
    assert set(picks["model_uri"]) == {loaded[0]}
    assert set(picks["model_version"]) == {version}
