"""The served model checks its input and says in one line what is wrong: a missing column
(named first), a column that is not numeric, NaN in every row, an int-truncated column, values
in other units; it never refuses the rows of the market it was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import mlflow.tracking._tracking_service.utils as tracking_utils
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel, scoring_server

from ashare_autotune.data.loader import load_market
from ashare_autotune.errors import DataError
from ashare_autotune.modelling.feature_sets import build_feature_set
from ashare_autotune.tracking.input_checks import (
    InputError,
    check_input,
    profile_inputs,
    sample_rows,
)
from ashare_autotune.tracking.loaded_model import load_model
from ashare_autotune.tracking.runs import log_pick_model
from tests.conftest import TrainedModel
from tests.served_model_cases import SERVED_CASE_IDS, served_cases, served_inputs
from tests.toy_model.model import ToyFitted

FEATURES = ["ret", "vol"]
# ret: -0.10..0.10 step 0.002 (median 0, quartiles -0.05/0.05: IQR 0.1, 1 whole value of 101);
# vol: 1..3 step 0.02 (median 2, quartiles 1.5/2.5: IQR 1, whole at 1, 2, 3: 3 of 101).
TRAIN = pd.DataFrame({"ret": np.linspace(-0.1, 0.1, 101), "vol": np.linspace(1, 3, 101)})
PROFILE = profile_inputs(TRAIN)


def _served(n: int = 41, **columns: np.ndarray) -> pd.DataFrame:
    """`n` ordinary rows like the training ones (ret -0.1..0.1, vol 1..3), some replaced."""
    base = {"ret": np.linspace(-0.1, 0.1, n), "vol": np.linspace(1.01, 2.99, n)}
    return pd.DataFrame(base | columns)


def _refusal(frame: pd.DataFrame) -> str:
    with pytest.raises(InputError) as err:
        check_input(frame, FEATURES, PROFILE)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_the_profile_records_training_quartiles_and_shares() -> None:
    assert PROFILE["vol"] == pytest.approx(
        {"median": 2.0, "q25": 1.5, "q75": 2.5, "lo": 1.002, "hi": 2.998}
        | {"nan_share": 0.0, "whole_share": 3 / 101}
    )
    assert PROFILE["ret"]["q75"] - PROFILE["ret"]["q25"] == pytest.approx(0.1)


def test_ordinary_rows_a_crash_day_and_a_few_odd_rows_pass() -> None:
    check_input(_served(), FEATURES, PROFILE)
    check_input(_served(ret=np.linspace(-0.6, 0.0, 41)), FEATURES, PROFILE)  # 3 IQRs down
    # a market-wide column: one value for every stock of a day, far from its training median
    check_input(_served(ret=np.full(41, 0.9)), FEATURES, PROFILE)
    check_input(_served(vol=np.full(41, 3.0)), FEATURES, PROFILE)  # whole, but one value
    check_input(_served(n=5, vol=np.full(5, 250.0)), FEATURES, PROFILE)  # too few to judge
    check_input(_served(vol=np.full(41, 250.0)), FEATURES, None)  # a model without a profile


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            _served().drop(columns=["vol", "ret"]).assign(other=1.0),
            "model input is missing feature column(s) 'ret', 'vol' (2 of the model's 2)",
        ),
        (
            _served(vol=np.linspace(101, 299, 41)),  # x100
            "model input column 'vol' median 200 is 197 training IQRs outside the training "
            "values' 0.1%..99.9% range 1.002..2.998 (IQR 1; refused beyond 10): other units "
            "(e.g. x100)?",
        ),
        (
            _served(ret=np.linspace(-10, 10, 41)),  # x100 of a column centred on 0
            "model input column 'ret' interquartile range 10 is 50x the training values' "
            "0.1%..99.9% range 0.1996 (refused beyond 2x): other units (e.g. x100)?",
        ),
        (
            _served(vol=np.floor(np.linspace(1.01, 2.99, 41))),
            "model input column 'vol' holds whole numbers only (41 values) but 3.0% of its "
            "training values were whole: truncated to integers?",
        ),
        (
            _served(ret=np.full(41, np.nan)),
            "model input column 'ret' is NaN in all 41 rows (NaN in 0.0% of training rows)",
        ),
        (
            _served(ret=np.full(41, np.nan), vol=np.full(41, np.nan)),
            "model input column 'ret' is NaN in all 41 rows (NaN in 0.0% of training rows) "
            "(1 more column(s) fail this check: 'vol')",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(frame: pd.DataFrame, message: str) -> None:
    assert _refusal(frame) == message


def test_a_column_of_text_is_refused_before_any_number_is_read() -> None:
    frame = _served().assign(ret=["0.1"] * 41)
    assert _refusal(frame) == (
        f"model input column 'ret' has dtype {frame['ret'].dtype}: feature columns must be numbers"
    )


def test_a_year_of_a_large_market_is_judged_on_evenly_spaced_rows() -> None:
    assert list(sample_rows(5, 3)) == [0, 2, 4]
    assert list(sample_rows(3, 5)) == [0, 1, 2]


@pytest.mark.slow
def test_the_model_never_refuses_the_market_it_was_trained_on(
    trained_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every day of validation, test and the later days, and each segment as a whole, pass;
    the same rows with one column x100 are refused by `LoadedModel.predict` in one line."""
    # the shared model's own store, whatever tracking URI an earlier test set (the registry
    # follows it); restored after the test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_model.tracking_uri)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", trained_model.tracking_uri)
    model = load_model(trained_model.model_uri)
    market = load_market(_data_config(trained_model))
    features = build_feature_set(market, None, model.features)
    start = pd.Timestamp(model.meta["segments"]["val"][0])
    later = features.loc[features["trade_date"] >= start]
    profile = model.meta["input_profile"]
    for _, day in later.groupby("trade_date"):
        check_input(day, model.features, profile)
    check_input(later, model.features, profile)

    day = later.loc[later["trade_date"] == later["trade_date"].max()].copy()
    column = max(model.features, key=lambda c: abs(profile[c]["median"] or 0.0))
    day[column] *= 100
    with pytest.raises(DataError, match=rf"^{model.display}: model input column '{column}' "):
        model.predict(day)


def _data_config(trained: TrainedModel):  # noqa: ANN202 - the predict schema's data group
    from tests.test_predict import _predict_config

    return _predict_config(trained, trained.root / "unused").data


@pytest.fixture
def served_toy(tracking_uri: str) -> PyFuncModel:
    """A logged PickModel of `served_model_cases.TRAIN` (a logistic toy), loaded as MLflow's
    scoring server loads it."""
    fitted = ToyFitted(np.zeros(2), np.ones(2), np.ones(2), 0.0)
    meta = {"features": FEATURES, "threshold": 0.5, "input_profile": profile_inputs(TRAIN)}
    with mlflow.start_run(experiment_id="0"):
        info = log_pick_model(fitted, meta, TRAIN.head())
    return mlflow.pyfunc.load_model(info.model_uri)


def _serve(model: PyFuncModel, rows: pd.DataFrame) -> tuple[int, str]:
    """(HTTP status, body) of `mlflow models serve`'s answer to a JSON request of `rows`: its
    request handler (`scoring_server.invocations`) run in-process."""
    body = json.dumps({"dataframe_split": rows.to_dict(orient="split")})
    schema = model.metadata.get_input_schema()
    try:
        answer = scoring_server.invocations(body, "application/json", model, schema)
    except MlflowException as exc:  # what the server turns into its error response
        return exc.get_http_status_code(), exc.serialize_as_json()
    return answer.status, answer.response


@pytest.mark.parametrize("case", [c for c in SERVED_CASE_IDS if c.startswith("model-input")])
def test_the_served_model_answers_bad_rows_with_the_reason_first(
    case: str, served_toy: PyFuncModel, tmp_path: Path
) -> None:
    """The reason in one line is the whole message: no echo of the rows, no schema dump (a
    missing column used to be named at the end of MLflow's own message of kilobytes)."""
    rows = served_inputs()[case]
    status, body = _serve(served_toy, rows)
    if case == "model-input-not-numeric":  # JSON text of numbers: the signature converts it
        assert status == 200 and len(json.loads(body)["predictions"]) == len(rows)
        return
    expected = served_cases(tmp_path)[case]().removeprefix("ashare-autotune v1: ")
    assert status == 400 and json.loads(body)["message"] == expected


def test_the_served_model_scores_rows_with_every_column(served_toy: PyFuncModel) -> None:
    status, body = _serve(served_toy, TRAIN.iloc[::10].reset_index(drop=True))
    assert status == 200
    probability = [p["probability"] for p in json.loads(body)["predictions"]]
    expected = ToyFitted(np.zeros(2), np.ones(2), np.ones(2), 0.0).predict(TRAIN.iloc[::10])
    np.testing.assert_allclose(probability, expected)
