"""The picks rule `model.picks=filter_then_rank`: a day's picks are the rows whose classifier
probability clears the threshold, ordered by the ranker, the day's best `max_picks_per_day`
(checked by hand); its threshold is chosen on validation with those picks; the ensemble trained
with it registers and serves the same picks from the pyfunc model and `predict`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.picks_rule import (
    pick_rule_threshold,
    rule_frontier,
    rule_picks,
    rule_scores,
)
from ashare_autotune.evaluation.threshold import signal_picks
from ashare_autotune.jobs.picks import run_predict
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.tracking.loaded_model import load_model
from tests.conftest import TrainedModel
from tests.test_predict import _predict_config

# Two days; the classifier's probability filters at 0.5, the ranker orders, two picks a day.
FIXTURE = pd.DataFrame(
    {
        "day": [1, 1, 1, 1, 1, 2, 2, 2],
        "proba": [0.9, 0.6, 0.55, 0.4, 0.8, 0.7, 0.3, 0.51],
        "ranker": [0.1, 2.0, 1.0, 9.0, -1.0, 0.0, 5.0, 3.0],
        "label": [1, 0, 1, 1, 0, 0, 1, 1],
    }
)
# day 1: rows 0, 1, 2, 4 clear 0.5 (row 3, the ranker's best, does not); by the ranker
# row 1 (2.0), row 2 (1.0), row 0 (0.1), row 4 (-1.0): the first two are picked.
# day 2: rows 5 and 7 clear 0.5; row 7 (3.0) then row 5 (0.0), both picked.
PICKED = [False, True, True, False, False, True, False, True]


def test_the_picks_are_the_days_rows_above_the_threshold_in_the_rankers_order() -> None:
    f = FIXTURE
    args = (f["proba"], f["ranker"], f["day"], 0.5, 2)
    assert rule_picks(*args).tolist() == PICKED
    # the rule's score carries the rule: any score-and-threshold consumer picks the same rows
    scores = rule_scores(f["proba"], f["ranker"], f["day"], 0.5)
    assert signal_picks(scores, f["day"].to_numpy(), 0.5, 2).tolist() == PICKED
    assert ((scores >= 0.5) == (f["proba"] >= 0.5)).all()
    # day 1's list: the four rows clearing 0.5 by the ranker, then row 3 (below the threshold)
    day1 = np.argsort(-scores[:5], kind="stable").tolist()
    assert day1 == [1, 2, 0, 4, 3]
    # by hand: a row's day percentile by the ranker r; above: 0.5 + 0.5 r, below: ~0.5 r
    assert scores[1] == pytest.approx(0.5 + 0.5 * 0.75)  # day 1's 2nd of 5 by the ranker
    assert scores[3] == pytest.approx(0.5 * 1.0)  # the ranker's best of day 1, below
    assert scores[3] < 0.5


def test_an_unfillable_pick_takes_its_slot_and_each_day_is_ranked_alone() -> None:
    f = FIXTURE
    fillable = np.ones(len(f), bool)
    fillable[1] = False  # day 1's first pick cannot be bought: its slot is not given on
    bought = rule_picks(f["proba"], f["ranker"], f["day"], 0.5, 2, fillable)
    assert bought.tolist() == [False, False, True, False, False, True, False, True]
    scaled = f["ranker"].where(f["day"] == 1, f["ranker"] * 100 - 7)  # day 2 on its own scale
    np.testing.assert_array_equal(
        rule_scores(f["proba"], scaled, f["day"], 0.5),
        rule_scores(f["proba"], f["ranker"], f["day"], 0.5),
    )
    one_day = rule_scores(f["proba"][:5], f["ranker"][:5], None, 0.5)  # a served call
    np.testing.assert_allclose(one_day, rule_scores(f["proba"], f["ranker"], f["day"], 0.5)[:5])


def test_the_frontier_counts_the_rules_picks_at_each_threshold() -> None:
    f = FIXTURE
    frontier = rule_frontier(f["label"], f["proba"], f["ranker"], f["day"], [0.5, 0.85], 2)
    # 0.5: picks rows 1, 2, 5, 7 (labels 0, 1, 0, 1); 0.85: only row 0 (label 1), on day 1
    assert frontier.to_dict("list") == {
        "threshold": [0.5, 0.85],
        "precision": [0.5, 1.0],
        "recall": [2 / 5, 1 / 5],
        "n_picks": [4, 1],
        "n_days": [2, 1],
    }
    rng = np.random.default_rng(1)  # and it is `rule_picks` at every threshold
    n = 600
    y, p, r = rng.integers(0, 2, n), rng.random(n), rng.normal(size=n)
    days, fill = rng.integers(0, 30, n), rng.random(n) > 0.1
    grid = np.linspace(0.05, 0.95, 19)
    got = rule_frontier(y, p, r, days, grid, 3, fill)
    for t, row in zip(grid, got.itertuples(), strict=True):
        bought = rule_picks(p, r, days, t, 3, fill)
        assert (row.n_picks, row.n_days) == (bought.sum(), len(np.unique(days[bought])))
        assert row.precision == pytest.approx(y[bought].mean() if bought.any() else 0.0)


def test_the_threshold_is_the_most_recall_at_the_target_precision_with_the_rules_picks() -> None:
    f = FIXTURE
    grid = np.array([0.5, 0.85])
    choice = pick_rule_threshold(f["label"], f["proba"], f["ranker"], f["day"], grid, 0.9, 1, 2, 1)
    assert (choice.threshold, choice.feasible, choice.n_picks) == (0.85, True, 1)
    loose = pick_rule_threshold(f["label"], f["proba"], f["ranker"], f["day"], grid, 0.5, 1, 2, 1)
    assert (loose.threshold, loose.recall) == (0.5, pytest.approx(0.4))  # more recall


@pytest.mark.parametrize(
    "overrides",
    [
        ("model=xgboost", "model.picks=filter_then_rank"),
        (
            "model=ensemble",
            "model.picks=filter_then_rank",
            "model.members.ranker.objective=binary",
        ),
    ],
)
def test_the_rule_without_one_classifier_and_one_ranker_is_one_line_naming_the_key(
    overrides: tuple[str, ...], compose_app: Callable[..., AppConfig]
) -> None:
    with pytest.raises(ConfigError) as err:
        compose_app(*overrides)
    message = str(err.value)
    assert message.startswith("config key 'model.picks'='filter_then_rank': needs model=ensemble")
    assert "\n" not in message


@pytest.mark.slow
def test_the_ensemble_picking_by_the_rule_trains_registers_and_serves_it(
    compose_app: Callable[..., AppConfig], tracking_uri: str, tmp_path: Path
) -> None:
    app = compose_app(
        "model=ensemble",
        "model.picks=filter_then_rank",
        "model.members.ranker.objective=regression",
        f"mlflow.tracking_uri={tracking_uri}",
        f"data.end={TrainedModel.train_end}",
        "registry.model_name=models-rule",
        "features=basic",
    )
    result = run_training(app)
    threshold = result.threshold.threshold
    assert result.model_version == "1" and 0.05 <= threshold <= 0.95  # a probability's grid
    model = load_model("models:/models-rule/1")
    assert model.meta["picks"] == {
        "rule": "filter_then_rank",
        "classifier": "classifier",
        "ranker": "ranker",
    }
    # the run's test record, two days of it served again through the registry
    folder = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="predictions")
    record = pd.read_parquet(Path(folder) / "test.parquet")
    record["trade_date"] = pd.to_datetime(record["trade_date"])
    busiest = record.groupby("trade_date")["pick"].sum().idxmax()  # a day with picks
    day = record[record["trade_date"] == busiest]
    cap = app.threshold.max_picks_per_day  # binds on that day: the ranker chooses the passes
    assert day["pick"].sum() == cap < (day["probability"] >= threshold).sum()
    features = build_feature_set(load_market(app.data), None, model.features)
    rows = day[["ts_code", "trade_date"]].merge(features, how="left")
    out = model.pyfunc.predict(rows[model.features].astype(np.float64))  # one day, one call
    assert list(out.columns) == ["probability", "pick", "ranker_score", "classifier_score"]
    np.testing.assert_allclose(out["probability"], day["probability"], rtol=1e-6)
    # the served picks are the rule's: probability clears the threshold, ranker orders
    expected = rule_picks(
        out["classifier_score"], out["ranker_score"], np.zeros(len(out)), threshold, cap
    )
    served = model.predict(rows)  # the capped picks, as predict/evaluate/backtest take them
    assert served["pick"].tolist() == expected.tolist() == day["pick"].tolist()
    # predict's table: the picks are the classifier's passes, in the ranker's order
    trained = TrainedModel(tracking_uri, tmp_path, result, model_uri="models:/models-rule/1")
    picks = pd.read_csv(run_predict(_predict_config(trained, tmp_path)).path)
    chosen = picks[picks["pick"]]
    assert (chosen["probability"] >= threshold).all()
    assert np.all(np.diff(chosen["probability"]) <= 0) and len(chosen) <= 10
