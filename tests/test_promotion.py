"""Promotion: a new version is champion only if it meets the precision target on test and is not
worse than the current champion; otherwise it is a challenger and the registry says why."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.tracking import registry
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.promotion import decide_promotion
from ashare_autotune.tracking.registration import register_and_promote

COMPARE = ["test_precision", "test_recall"]


def _metrics(precision: float, recall: float, picks: int = 100) -> dict[str, float]:
    return {"test_precision": precision, "test_recall": recall, "test_n_picks": float(picks)}


def _decide(candidate: dict[str, float], champion: dict[str, float] | None = None, **kw):
    args = {"threshold_feasible": True, "target_precision": 0.6, "min_picks": 20} | kw
    return decide_promotion(
        candidate, compare=COMPARE, champion=champion, champion_version="3", **args
    )


def test_first_model_meeting_the_target_becomes_champion() -> None:
    decision = _decide(_metrics(0.65, 0.2))
    assert decision.promote and decision.role == "champion"
    assert "no champion yet" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "kw", "why"),
    [
        (_metrics(0.55, 0.4), {}, "test precision 0.5500 is below the target 0.60"),
        (_metrics(0.70, 0.4, picks=7), {}, "only 7 test picks"),
        (_metrics(0.70, 0.4), {"threshold_feasible": False}, "on validation"),
    ],
)
def test_a_model_missing_the_precision_constraint_is_a_challenger_even_without_champion(
    candidate: dict[str, float], kw: dict, why: str
) -> None:
    decision = _decide(candidate, None, **kw)
    assert not decision.promote and decision.role == "challenger"
    assert why in decision.reason


def test_worse_precision_than_the_champion_keeps_the_champion() -> None:
    decision = _decide(_metrics(0.62, 0.9), champion=_metrics(0.66, 0.1))
    assert not decision.promote
    assert decision.reason == (
        "test_precision 0.6200 is worse than champion version 3's 0.6600; champion kept"
    )


def test_recall_breaks_a_precision_tie_in_either_direction() -> None:
    assert _decide(_metrics(0.66, 0.30), champion=_metrics(0.66, 0.25)).promote
    worse = _decide(_metrics(0.66, 0.20), champion=_metrics(0.66, 0.25))
    assert not worse.promote and "test_recall 0.2000 is worse" in worse.reason


def test_a_full_tie_goes_to_the_newer_model() -> None:
    decision = _decide(_metrics(0.66, 0.25), champion=_metrics(0.66, 0.25))
    assert decision.promote and "newer model wins" in decision.reason


def test_a_metric_the_champion_lacks_is_skipped_not_guessed() -> None:
    decision = _decide(_metrics(0.66, 0.1), champion={"test_precision": 0.66})
    assert decision.promote and "champion has no test_recall" in decision.reason


def test_unknown_promotion_metric_is_a_config_error(compose_app: Callable[..., AppConfig]) -> None:
    with pytest.raises(ConfigError, match="registry.promotion_metrics"):
        compose_app("registry.promotion_metrics=[test_sharpe]")


def _log_model(metrics: dict[str, float]) -> str:
    """Log a tiny real PickModel with `metrics` attached to it, as the pipeline does."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["f1", "f2"])
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x, label=(x["f1"] > 0).astype(int)),
        num_boost_round=3,
    )
    meta = {"features": ["f1", "f2"], "threshold": 0.5}
    info = tracking.log_pick_model(booster, meta, x.head(3))
    tracking.log_metrics(metrics, model_id=info.model_id)
    return info.model_uri


def _register(app: AppConfig, precision: float, recall: float) -> tuple[str, str]:
    metrics = _metrics(precision, recall) | {"test_auc": 0.7}
    choice = ThresholdChoice(0.4, 0.62, 0.3, 50, True, 0.6, 0.7)
    meta = {
        "label": {"min_days": 3, "max_days": 5, "min_return": 0.04},
        "data": {"source": "synthetic", "start": "20180102", "end": "20181231", "n_stocks": 40},
        "segments": {"test": ["20181017", "20181224"]},
        "threshold": 0.4,
        "threshold_feasible": True,
        "target_precision": 0.6,
    }
    with mlflow.start_run():
        uri = _log_model(metrics)
        version, decision = register_and_promote(
            app.registry, app.threshold, uri, choice, metrics, meta
        )
    return version, decision.reason


def test_registry_keeps_an_older_better_champion_and_names_the_challenger(
    tracking_uri: str, compose_app: Callable[..., AppConfig]
) -> None:
    app = compose_app(f"mlflow.tracking_uri={tracking_uri}")
    tracking.setup(tracking_uri, "promotion")
    name = app.registry.model_name
    v1, _ = _register(app, precision=0.70, recall=0.20)
    v2, why = _register(app, precision=0.65, recall=0.50)

    assert str(registry.alias_version(name, "champion").version) == v1
    assert str(registry.alias_version(name, "challenger").version) == v2
    assert (
        why == f"test_precision 0.6500 is worse than champion version {v1}'s 0.7000; champion kept"
    )
    version = mlflow.MlflowClient().get_model_version(name, v2)
    assert version.tags["promotion"] == "challenger"
    assert version.tags["promotion_reason"] == why
    for fact in ("20180102..20181231", "T+3..T+5 >= +4.0%", "Threshold 0.400", "Promotion"):
        assert fact in version.description

    v3, why3 = _register(app, precision=0.72, recall=0.10)
    assert str(registry.alias_version(name, "champion").version) == v3
    assert why3 == f"test_precision 0.7200 beats champion version {v1}'s 0.7000"
