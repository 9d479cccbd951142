"""Promotion reads validation only: a new version is champion only if its threshold met the
precision target on validation and it is not worse than the current champion on validation
metrics; test metrics are reported with the version and never decide. Otherwise it is a
challenger and the registry says why."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.schema import AppConfig, ThresholdConfig
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.models.xgboost.fitted import XGBoostFitted
from ashare_autotune.tracking import registry
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.promotion import decide_promotion
from ashare_autotune.tracking.registration import register_and_promote

COMPARE = ["val_precision", "val_recall"]
FEASIBLE = ThresholdChoice(0.4, 0.65, 0.2, 100, 30, True, 0.6, 0.7)
# no threshold reached 0.60 with >= 20 picks over >= 20 days on validation; the best precision
# reachable was 0.55
INFEASIBLE = ThresholdChoice(0.5, 0.55, 0.1, 40, 25, False, 0.6, 0.55)
RULE = ThresholdConfig()  # >= 20 picks over >= 20 days, at most 10 a day


def _metrics(
    precision: float, recall: float, test: tuple[float, float] = (0.7, 0.3)
) -> dict[str, float]:
    """Validation precision/recall at the threshold, plus test ones that must never matter."""
    return {
        "val_precision": precision,
        "val_recall": recall,
        "val_n_picks": 100.0,
        "test_precision": test[0],
        "test_recall": test[1],
        "test_n_picks": 100.0,
    }


def _decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None = None,
    choice: ThresholdChoice = FEASIBLE,
):
    return decide_promotion(
        candidate, choice, rule=RULE, compare=COMPARE, champion=champion, champion_version="3"
    )


def test_first_model_feasible_on_validation_becomes_champion() -> None:
    decision = _decide(_metrics(0.65, 0.2))
    assert decision.promote and decision.role == "champion"
    assert decision.reason == (
        "meets the precision target on validation (0.6500 >= 0.60, 100 picks over 30 days) and "
        "there is no champion yet"
    )


def test_great_test_metrics_do_not_promote_a_model_infeasible_on_validation() -> None:
    decision = _decide(_metrics(0.55, 0.1, test=(0.95, 0.9)), choice=INFEASIBLE)
    assert not decision.promote and decision.role == "challenger"
    assert decision.reason == (
        "no threshold reached precision >= 0.60 with >= 20 picks over >= 20 days (at most 10 a "
        "day) on validation (best 0.5500)"
    )


def test_poor_test_metrics_do_not_block_a_model_feasible_on_validation() -> None:
    # test precision far below the target and a handful of test picks: reported, not gating
    candidate = _metrics(0.65, 0.2, test=(0.10, 0.01)) | {"test_n_picks": 2.0}
    assert _decide(candidate).promote


def test_better_on_validation_but_worse_on_test_is_promoted() -> None:
    champion = _metrics(0.64, 0.2, test=(0.90, 0.5))
    decision = _decide(_metrics(0.66, 0.2, test=(0.50, 0.1)), champion=champion)
    assert decision.promote
    assert decision.reason == "val_precision 0.6600 beats champion version 3's 0.6400"


def test_better_on_test_but_worse_on_validation_keeps_the_champion() -> None:
    champion = _metrics(0.66, 0.1, test=(0.50, 0.1))
    decision = _decide(_metrics(0.62, 0.9, test=(0.90, 0.5)), champion=champion)
    assert not decision.promote
    assert decision.reason == (
        "val_precision 0.6200 is worse than champion version 3's 0.6600; champion kept"
    )


def test_validation_recall_breaks_a_precision_tie_in_either_direction() -> None:
    assert _decide(_metrics(0.66, 0.30), champion=_metrics(0.66, 0.25)).promote
    worse = _decide(_metrics(0.66, 0.20), champion=_metrics(0.66, 0.25))
    assert not worse.promote and "val_recall 0.2000 is worse" in worse.reason


def test_a_full_validation_tie_goes_to_the_newer_model_whatever_test_says() -> None:
    decision = _decide(_metrics(0.66, 0.25, test=(0.1, 0.1)), champion=_metrics(0.66, 0.25))
    assert decision.promote and "newer model wins" in decision.reason


def test_a_metric_the_champion_lacks_is_skipped_not_guessed_and_named() -> None:
    decision = _decide(_metrics(0.66, 0.1), champion={"val_precision": 0.66})
    assert decision.promote and "champion has no val_recall" in decision.reason
    lower = _decide(_metrics(0.60, 0.9), champion={"val_recall": 0.5})
    assert lower.reason == (
        "val_recall 0.9000 beats champion version 3's 0.5000 (champion has no val_precision)"
    )


def test_a_champion_from_the_test_reading_policy_is_replaced_and_the_reason_says_why() -> None:
    # registered before promotion read validation: its logged model carries test_ metrics only
    old = {"test_precision": 0.9, "test_recall": 0.5, "test_n_picks": 300.0}
    decision = _decide(_metrics(0.61, 0.05), champion=old)
    assert decision.promote
    assert decision.reason == (
        "champion version 3 has no val_precision, val_recall to compare; newer model wins"
    )


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "reason"),
    [
        ({"val_auc": float("nan")}, {"val_auc": 0.6}, False, "val_auc is nan, not comparable"),
        ({}, {"val_auc": 0.6}, False, "the new model has no metric 'val_auc' to compare"),
        ({"val_auc": 0.55}, {"val_auc": float("nan")}, True, "has no val_auc to compare"),
    ],
)
def test_a_missing_or_nan_metric_keeps_the_champion_if_the_candidates_is_skipped_if_not(
    candidate: dict[str, float], champion: dict[str, float], promote: bool, reason: str
) -> None:
    decision = decide_promotion(candidate, FEASIBLE, RULE, ["val_auc"], champion, "1")
    assert decision.promote is promote and reason in decision.reason


def test_validation_promotion_metrics_are_the_default(
    compose_app: Callable[..., AppConfig],
) -> None:
    # the validation account at its exposure first (issue 24), then the seed's precision
    default = ["val_bt_excess_return_exposure", "val_precision"]
    assert compose_app().registry.promotion_metrics == default


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ("[test_precision]", "=['test_precision']: promotion compares validation (val_*)"),
        ("[val_auc,test_bt_sharpe]", "=['test_bt_sharpe']: promotion compares validation"),
        ("[val_sharpe]", "=['val_sharpe']: unknown metric(s)"),
    ],
)
def test_a_test_or_unknown_promotion_metric_is_a_config_error(
    override: str, why: str, compose_app: Callable[..., AppConfig]
) -> None:
    with pytest.raises(ConfigError, match=r"registry\.promotion_metrics") as err:
        compose_app(f"registry.promotion_metrics={override}")
    assert why in str(err.value)


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
    info = tracking.log_pick_model(XGBoostFitted(booster), meta, x.head(3))
    tracking.log_metrics(metrics, model_id=info.model_id)
    return info.model_uri


def _register(
    app: AppConfig, precision: float, recall: float, test: tuple[float, float] = (0.7, 0.3)
) -> tuple[str, str]:
    metrics = _metrics(precision, recall, test) | {"test_auc": 0.7}
    choice = ThresholdChoice(0.4, precision, recall, 100, 30, True, 0.6, 0.7)
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


def test_registry_keeps_an_older_better_champion_on_validation_and_names_the_challenger(
    tracking_uri: str, compose_app: Callable[..., AppConfig]
) -> None:
    # compared on precision then recall (the default reads the validation account first)
    compare = "registry.promotion_metrics=[val_precision,val_recall]"
    app = compose_app(f"mlflow.tracking_uri={tracking_uri}", compare)
    tracking.setup(tracking_uri, "promotion")
    name = app.registry.model_name
    v1, _ = _register(app, precision=0.70, recall=0.20, test=(0.50, 0.1))
    # far better on test, worse on validation: a challenger
    v2, why = _register(app, precision=0.65, recall=0.50, test=(0.95, 0.9))

    assert str(registry.alias_version(name, "champion").version) == v1
    assert str(registry.alias_version(name, "challenger").version) == v2
    assert (
        why == f"val_precision 0.6500 is worse than champion version {v1}'s 0.7000; champion kept"
    )
    version = mlflow.MlflowClient().get_model_version(name, v2)
    assert version.tags["promotion"] == "challenger"
    assert version.tags["promotion_reason"] == why
    assert version.tags["test_precision"] == "0.95"  # reported with the version all the same
    facts = ("20180102..20181231", "T+3..T+5 >= +4.0%", "Threshold 0.400", "Promotion")
    facts += ("met on validation: precision 0.6500, recall 0.5000, 100 picks",)
    facts += ("Test (reported, not used to promote): AUC 0.7000, precision 0.9500",)
    for fact in facts:
        assert fact in version.description

    # worse on test than the champion, better on validation: promoted
    v3, why3 = _register(app, precision=0.72, recall=0.10, test=(0.30, 0.05))
    assert str(registry.alias_version(name, "champion").version) == v3
    assert why3 == f"val_precision 0.7200 beats champion version {v1}'s 0.7000"
