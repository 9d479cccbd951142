"""Registry hygiene: models of other data, label, universe or debug settings never compete
for the champion alias, and registering is a compare-and-set that two processes (or threads)
cannot interleave."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError
from ashare_autotune.evaluation.threshold import ThresholdChoice
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.models.xgboost.fitted import XGBoostFitted
from ashare_autotune.tracking import registry
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tracking.promotion import data_fingerprint
from ashare_autotune.tracking.registration import register_and_promote

META: dict[str, Any] = {
    "label": {"min_days": 3, "max_days": 5, "min_return": 0.04},
    "universe": {"min_list_days": 60, "exclude_st": True},
    "data": {"source": "synthetic(seed=7)", "start": "20180102", "end": "20181231",
             "n_stocks": 40, "n_rows": 12000},
    "segments": {"train": ["20180102", "20180830"], "val": ["20180831", "20181016"],
                 "test": ["20181017", "20181224"]},
    "threshold": 0.4,
    "threshold_feasible": True,
    "target_precision": 0.6,
}  # fmt: skip
# The run_training settings of the debug preset, without its own registry name: a
# "default" run at debug size.
DEBUG_SIZE = (
    "data.n_stocks=40",
    "data.n_days=300",
    "tuning.n_trials=2",
    "tuning.eval_every=5",
    "model.n_jobs=1",
    "model.num_boost_round=40",
    "model.early_stopping_rounds=10",
    "threshold.min_picks=5",
    "label.kind=touch",
    "backtest.top_k=10",
    "backtest.n_drop=2",
    # the debug market's planted effect and precision target (conf/debug): a champion to keep
    "data.signal_strength=20",
    "threshold.target_precision=0.25",
    "mlflow.figures=false",
)


def _changed(**parts: dict[str, Any]) -> dict[str, Any]:
    return META | {k: META[k] | v for k, v in parts.items()}


@pytest.mark.parametrize(
    "other",
    [
        _changed(data={"source": "files:/data/daily.parquet"}),
        _changed(data={"end": "20190329"}),
        _changed(data={"n_stocks": 300}),
        _changed(label={"min_return": 0.05}),
        _changed(universe={"exclude_st": False}),
        _changed(segments={"val": ["20180831", "20181031"]}),
    ],
)
def test_other_data_label_universe_or_segments_is_another_fingerprint(other: dict) -> None:
    assert data_fingerprint(other) != data_fingerprint(META)


def test_the_fingerprint_ignores_what_the_model_learned() -> None:
    learned = META | {"threshold": 0.7, "features": ["a"], "params": {"eta": 0.1}}
    assert data_fingerprint(learned) == data_fingerprint(META)
    assert len(data_fingerprint(META)) == 12


def _log_model(metrics: dict[str, float]) -> str:
    """Log a tiny real PickModel with `metrics` attached to it, as the pipeline does."""
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 2)), columns=["f1", "f2"])
    label = (x["f1"] > 0).astype(int)
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=label), num_boost_round=3)
    info = tracking.log_pick_model(
        XGBoostFitted(booster), {"features": ["f1", "f2"], "threshold": 0.5}, x[:3]
    )
    tracking.log_metrics(metrics, model_id=info.model_id)
    return info.model_uri


def _candidate(precision: float) -> tuple[str, ThresholdChoice, dict[str, float]]:
    # the same validation account: precision decides
    metrics = {"val_bt_excess_return_exposure": 0.01, "val_precision": precision}
    metrics |= {"val_recall": 0.2, "val_n_picks": 100.0}
    metrics |= {"test_precision": 0.7, "test_recall": 0.3, "test_n_picks": 90.0, "test_auc": 0.7}
    with mlflow.start_run():
        uri = _log_model(metrics)
    return uri, ThresholdChoice(0.4, precision, 0.2, 100, 30, True, 0.6, 0.7), metrics


def test_a_better_model_of_other_data_is_a_challenger_and_says_why(
    tracking_uri: str, compose_app: Callable[..., AppConfig]
) -> None:
    app = compose_app(f"mlflow.tracking_uri={tracking_uri}")
    tracking.setup(tracking_uri, "hygiene")
    reg, name = app.registry, app.registry.model_name
    uri, choice, metrics = _candidate(0.65)
    v1, first = register_and_promote(reg, app.threshold, uri, choice, metrics, META)
    other = _changed(label={"min_return": 0.05})
    uri, choice, metrics = _candidate(0.90)  # far better, on another label
    v2, second = register_and_promote(reg, app.threshold, uri, choice, metrics, other)

    assert first.promote and not second.promote
    assert second.reason == (
        f"champion version {v1} was trained on other data/label/universe (data fingerprint "
        f"{data_fingerprint(META)}, this model's {data_fingerprint(other)}): not compared; "
        "champion kept"
    )
    assert str(registry.alias_version(name, "champion").version) == v1
    assert str(registry.alias_version(name, "challenger").version) == v2
    tags = mlflow.MlflowClient().get_model_version(name, v2).tags
    assert tags["data_fingerprint"] == data_fingerprint(other)


def test_registration_is_a_compare_and_set_under_the_store_lock(
    tracking_uri: str, compose_app: Callable[..., AppConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced interleaving: the worse model pauses between deciding (no champion yet) and
    registering while the better one registers. Under the lock the better one waits, then
    reads the worse as champion and beats it; without it the worse would end as champion."""
    app = compose_app(f"mlflow.tracking_uri={tracking_uri}")
    tracking.setup(tracking_uri, "hygiene")
    worse, better = _candidate(0.62), _candidate(0.80)
    versions: dict[str, str] = {}
    better_done = threading.Event()

    def register(label: str, candidate: tuple) -> None:
        uri, choice, metrics = candidate
        versions[label], _ = register_and_promote(
            app.registry, app.threshold, uri, choice, metrics, META
        )
        if label == "better":
            better_done.set()

    original = registry.register_version
    other = threading.Thread(target=register, args=("better", better))

    def paused(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            other.start()
            better_done.wait(timeout=3)  # with the lock held it cannot finish meanwhile
        return original(*args, **kwargs)

    monkeypatch.setattr(registry, "register_version", paused)
    register("worse", worse)
    other.join(timeout=60)

    name = app.registry.model_name
    assert versions == {"worse": "1", "better": "2"}
    assert str(registry.alias_version(name, "champion").version) == "2"
    tags = mlflow.MlflowClient().get_model_version(name, "2").tags
    assert tags["promotion"] == "champion"
    assert tags["promotion_reason"] == "val_precision 0.8000 beats champion version 1's 0.6200"


@pytest.mark.slow
def test_a_debug_run_and_a_label_sweep_leave_the_default_champion_in_place(
    tracking_uri: str, compose_app: Callable[..., AppConfig]
) -> None:
    default = run_training(compose_app(*DEBUG_SIZE, debug=False))
    name = compose_app(debug=False).registry.model_name
    assert default.champion, default.promotion_reason
    assert name == "ashare-autotune"

    debug = run_training(compose_app())  # debug=default: its own registered model
    assert registry.alias_version("ashare-autotune-debug", "champion") is not None
    assert debug.model_version == "1"
    sweep = [
        run_training(compose_app(*DEBUG_SIZE, f"label.min_return={r}", debug=False))
        for r in (0.03, 0.05)
    ]

    assert str(registry.alias_version(name, "champion").version) == default.model_version
    assert [s.champion for s in sweep] == [False, False]
    for job in sweep:
        assert job.promotion_reason.startswith(
            f"champion version {default.model_version} was trained on other data/label/universe"
        ) or job.promotion_reason.startswith("no threshold reached"), job.promotion_reason
    assert any("not compared" in s.promotion_reason for s in sweep)


def test_a_missing_champion_says_which_aliases_the_model_has(tracking_uri: str) -> None:
    # an honest demo model that missed the precision target is only the challenger
    tracking.setup(tracking_uri, "hygiene")
    with mlflow.start_run():
        uri = _log_model({"val_precision": 0.3})
    client = mlflow.MlflowClient()
    client.create_registered_model("demo")
    version = client.create_model_version("demo", uri)
    client.set_registered_model_alias("demo", "challenger", version.version)
    with pytest.raises(UserError) as caught:
        registry.resolve_version("models:/demo@champion")
    message = str(caught.value)
    assert "no version of demo is champion (none was promoted" in message
    assert "it has challenger (version 1): e.g. model_uri=models:/demo@challenger" in message
