"""The ensemble (`model=ensemble`): members built from their own groups and tuned in one study
over their prefixed spaces; scores blended by day rank (checked by hand); one pyfunc model
that the training, predict and evaluate jobs all serve from; bad member settings are one line
naming the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import ConfigError
from ashare_autotune.jobs.out_of_time import run_evaluation
from ashare_autotune.jobs.picks import run_predict
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.models.base import RowOptions, frame_rows
from ashare_autotune.models.build import build_model
from ashare_autotune.models.ensemble.blend import day_rank_blend
from ashare_autotune.models.ensemble.fitted import EnsembleFitted, EnsembleInput
from ashare_autotune.tracking.loaded_model import load_model
from tests.conftest import TrainedModel
from tests.test_out_of_time import _evaluate_config
from tests.test_predict import _predict_config


def test_the_blend_is_the_mean_of_the_members_percentile_ranks_within_each_day() -> None:
    # day 1: three rows; day 2: two rows. Member a is a probability, b a ranker's margin.
    scores = np.array(
        [
            [0.9, -1.0],  # day 1: a ranks it 1.0, b 0.0 -> 0.5
            [0.1, 3.0],  # day 1: a 0.0, b 1.0 -> 0.5
            [0.5, 2.0],  # day 1: a 0.5, b 0.5 -> 0.5
            [0.2, 7.0],  # day 2: a 0.0, b tied 0.5 -> 0.25
            [0.3, 7.0],  # day 2: a 1.0, b tied 0.5 -> 0.75
        ]
    )
    days = np.array([1, 1, 1, 2, 2])
    expected = [0.5, 0.5, 0.5, (0.0 + 0.5) / 2, (1.0 + 0.5) / 2]
    np.testing.assert_allclose(day_rank_blend(scores, days), expected)


def test_a_days_blend_does_not_move_with_another_days_rows_and_a_nan_member_abstains() -> None:
    rng = np.random.default_rng(0)
    scores, days = rng.normal(size=(40, 3)), np.repeat([1, 2, 3, 4], 10)
    blend = day_rank_blend(scores, days)
    shifted = scores.copy()
    shifted[days == 2] *= 100  # another scale on day 2 only
    np.testing.assert_allclose(day_rank_blend(shifted, days)[days != 2], blend[days != 2])
    one_day = day_rank_blend(scores[days == 3])  # no days: the rows are one day
    np.testing.assert_allclose(one_day, blend[days == 3])
    scores[0, 1] = np.nan  # member 1 abstains on row 0: the others' mean
    ranks_0 = [np.mean(scores[:10, j] <= scores[0, j]) for j in (0, 2)]  # no ties
    expected = np.mean([(r * 10 - 1) / 9 for r in ranks_0])
    assert day_rank_blend(scores, days)[0] == pytest.approx(expected)


def test_members_are_built_from_their_groups_and_searched_under_prefixed_names(
    compose_app: Callable[..., AppConfig],
) -> None:
    app = compose_app("model=ensemble", "model.members.ranker.objective=regression")
    model = build_model(app.model)
    assert app.tuning.metric == "rank_ic"  # the blend has no AUC: ranked by its Rank IC
    assert {n: (m.kind, m.cfg.objective) for n, m in model.members.items()} == {
        "ranker": ("lightgbm", "regression"),
        "classifier": ("xgboost", "binary"),
    }
    # each member's space under its name; the rest of its group is the ensemble's
    assert "ranker.num_leaves" in app.model.space and "classifier.max_depth" in app.model.space
    ranker = model.members["ranker"].cfg
    assert ranker.space["num_leaves"] == app.model.space["ranker.num_leaves"]
    assert (ranker.n_jobs, ranker.num_boost_round) == (app.model.n_jobs, app.model.num_boost_round)


def _days(n_days: int = 40, per_day: int = 25) -> pd.DataFrame:
    """Days of candidates whose forward return is planted in `a`; the label is a top return."""
    rng = np.random.default_rng(3)
    n = n_days * per_day
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["a", "b", "c"])
    frame["day"] = np.repeat(np.arange(n_days), per_day)
    frame["fwd"] = 0.02 * frame["a"] + rng.normal(scale=0.02, size=n)
    rank = frame.groupby("day")["fwd"].rank(pct=True)
    frame["label"] = (rank > 0.7).astype(np.float64)
    frame["rel"] = np.minimum(np.floor((rank - 1e-9) * 5), 4)
    return frame


def test_an_ensemble_trains_each_member_blends_validation_by_day_and_saves(
    compose_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    frame = _days()
    model = build_model(compose_app("model=ensemble", "model.max_bin=32").model)
    cut, n, day = 30 * 25, len(frame), frame["day"].to_numpy()
    rows = [
        frame_rows(frame, ["a", "b", "c"], "label", at)
        for at in (np.arange(cut), np.arange(cut, n))
    ]
    train, val = (replace(r, label=frame[["rel", "label"]].to_numpy(), group=day) for r in rows)
    matrices = model.build_matrices(train, val, RowOptions())
    params = {"ranker.learning_rate": 0.1, "classifier.learning_rate": 0.3}
    fitted = model.fit(params, matrices)
    held = frame.iloc[cut:]
    x = held[["a", "b", "c"]]
    each = {name: m.predict(x) for name, m in fitted.members.items()}
    expected = day_rank_blend(np.column_stack(list(each.values())), held["day"].to_numpy())
    # validation in the members' own forms, blended by its days, is the blend of their scores
    np.testing.assert_allclose(fitted.predict(matrices.val), expected, rtol=1e-6)
    assert isinstance(matrices.val, EnsembleInput)
    ic = held.assign(s=expected).groupby("day")[["s", "fwd"]].corr("spearman")
    assert ic.xs("s", level=1)["fwd"].mean() > 0.5  # each day's order is learned
    assert all(0 <= p <= 1 for p in each["classifier"])  # the classifier's probability
    fitted.save(tmp_path)
    loaded = EnsembleFitted.load(tmp_path, 1)
    np.testing.assert_allclose(loaded.predict(x, held["day"].to_numpy()), expected, rtol=1e-6)
    for member in loaded.members.values():  # SHAP: each member's sums to its margin
        margin = member.predict(x)
        if member.kind == "xgboost":  # the binary classifier: log-odds
            margin = np.log(margin / (1 - margin))
        np.testing.assert_allclose(member.contributions(x).sum(axis=1), margin, atol=1e-4)
    with pytest.raises(TypeError, match="members"):
        fitted.contributions(x)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("~model.members.ranker", "~model.members.classifier"), "config key 'model.members'={}"),
        (
            ("model.members.ranker.objective=binary:logistic",),
            "config key 'model.members.ranker.objective'",
        ),
        (("+model.members.ranker.rounds=3",), "config key 'model.members.ranker'=['rounds']"),
    ],
)
def test_a_bad_member_is_one_line_naming_its_key(
    overrides: tuple[str, ...], key: str, compose_app: Callable[..., AppConfig]
) -> None:
    with pytest.raises(ConfigError) as err:
        build_model(compose_app("model=ensemble", *overrides).model)
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


@pytest.mark.slow
def test_the_ensemble_trains_registers_and_serves_predict_and_evaluate(
    compose_app: Callable[..., AppConfig], tracking_uri: str, tmp_path: Path
) -> None:
    app = compose_app(
        "model=ensemble",
        f"mlflow.tracking_uri={tracking_uri}",
        f"data.end={TrainedModel.train_end}",
        "registry.model_name=models-ensemble",
        "features=basic",  # few features: a fast run (the serving path is the same)
    )
    result = run_training(app)
    uri = "models:/models-ensemble/1"
    assert result.model_version == "1" and set(result.best_params) == set(app.model.space)
    assert result.metrics["test_rank_ic_mean"] > 0.02  # the planted reversal, in each day
    model = load_model(uri)
    assert model.meta["model"] == {
        "kind": "ensemble",
        "class": "ashare_autotune.models.ensemble.fitted:EnsembleFitted",
        "by_day": True,
    }
    # the run's test record: every candidate of a day, scored by the trained ensemble
    folder = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="predictions")
    record = pd.read_parquet(Path(folder) / "test.parquet")
    record["trade_date"] = pd.to_datetime(record["trade_date"])
    days = record[record["trade_date"].isin(record["trade_date"].unique()[:2])]
    features = build_feature_set(load_market(app.data), None, model.features)
    rows = days[["ts_code", "trade_date"]].merge(features, how="left")
    # served two days at once, each day's rows are ranked among themselves, as at training
    served = model.predict(rows)
    np.testing.assert_allclose(served["probability"], days["probability"], rtol=1e-6)
    assert list(served.columns) == ["probability", "pick"]
    out = model.pyfunc.predict(rows[model.features].astype(np.float64))  # one call: one day
    assert list(out.columns) == ["probability", "pick", "ranker_score", "classifier_score"]
    assert out["classifier_score"].between(0, 1).all()
    # predict and evaluate load it like any model
    trained = TrainedModel(tracking_uri, tmp_path, result, model_uri=uri)
    picks = pd.read_csv(run_predict(_predict_config(trained, tmp_path)).path)
    assert (picks["pick"] == (picks["probability"] >= result.threshold.threshold)).all()
    assert picks["probability"].max() <= 1 and np.all(np.diff(picks["probability"]) <= 0)
    evaluation = run_evaluation(_evaluate_config(trained))
    assert np.isfinite(evaluation.metrics["oot_rank_ic_mean"])
