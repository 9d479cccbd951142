"""The bad-input cases of a served model for the README's table (`test_validation`): input that
`predict` / `evaluate` / `backtest` / `mlflow models serve` refuse in one line, built as the
entry points see it (a `LoadedModel` and a loaded market)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.synthetic import make_synthetic_market
from ashare_autotune.errors import UserError
from ashare_autotune.tracking.data_match import check_same_data
from ashare_autotune.tracking.input_checks import profile_inputs
from ashare_autotune.tracking.loaded_model import LoadedModel

# ret: -0.10..0.10 (IQR 0.1), vol: 1..3 (IQR 1; whole at 1, 2, 3 only) on training rows.
TRAIN = pd.DataFrame({"ret": np.linspace(-0.1, 0.1, 101), "vol": np.linspace(1, 3, 101)})
N_ROWS = 41

SERVED_CASE_IDS = [
    "model-other-data",
    "model-other-market",
    "model-input-missing-column",
    "model-input-not-numeric",
    "model-input-all-nan",
    "model-input-int-truncated",
    "model-input-other-units",
]


def _model(trained_on: dict) -> LoadedModel:
    meta = {"features": ["ret", "vol"], "threshold": 0.5, "data": trained_on}
    meta["input_profile"] = profile_inputs(TRAIN)
    name = "ashare-autotune"
    return LoadedModel(f"models:/{name}/1", None, meta, name, "1", None, None)


def _rows(**columns: object) -> pd.DataFrame:
    base = {"ret": np.linspace(-0.1, 0.1, N_ROWS), "vol": np.linspace(1.01, 2.99, N_ROWS)}
    return pd.DataFrame(base | columns)


def _error(action: Callable[[], object]) -> str:
    try:
        action()
    except UserError as exc:
        return str(exc)
    raise AssertionError("no error raised")


def _other_data(tmp: Path) -> str:
    """A model of the synthetic market asked to score files of bars (the same days)."""
    synthetic = make_synthetic_market(n_stocks=4, n_days=30, seed=11)
    daily = synthetic.daily.assign(
        ts_code=synthetic.daily["ts_code"].astype(str),
        trade_date=synthetic.daily["trade_date"].dt.strftime("%Y%m%d"),
    )
    daily.to_csv(tmp / "bars.csv", index=False)
    index = synthetic.index.assign(trade_date=synthetic.index["trade_date"].dt.strftime("%Y%m%d"))
    index.to_csv(tmp / "index.csv", index=False)
    files = DataConfig(source="files", daily=str(tmp / "bars.csv"), index=str(tmp / "index.csv"))
    model = _model(synthetic.describe())
    return _error(lambda: check_same_data(model.meta, load_market(files), model.display, False))


def _other_market() -> str:
    """A model of 4 synthetic stocks asked to score 8 of the same seed: another market."""
    model = _model(make_synthetic_market(n_stocks=4, n_days=30, seed=11).describe())
    other = make_synthetic_market(n_stocks=8, n_days=30, seed=11)
    return _error(lambda: check_same_data(model.meta, other, model.display, False))


def served_inputs() -> dict[str, pd.DataFrame]:
    """Case id -> the rows a model of `TRAIN` is asked to score, for the model-input cases."""
    return {
        "model-input-missing-column": _rows().drop(columns=["vol"]),
        "model-input-not-numeric": _rows(ret=["0.1"] * N_ROWS).astype({"ret": object}),
        "model-input-all-nan": _rows(ret=np.nan),
        "model-input-int-truncated": _rows(vol=np.floor(np.linspace(1.01, 2.99, N_ROWS))),
        "model-input-other-units": _rows(vol=np.linspace(101, 299, N_ROWS)),
    }


def served_cases(tmp: Path) -> dict[str, Callable[[], str]]:
    """Case id -> the one line the user sees (in the order of `SERVED_CASE_IDS`)."""
    model = _model({})
    scored = {
        case: (lambda rows=rows: _error(lambda: model.predict(rows)))
        for case, rows in served_inputs().items()
    }
    cases = {"model-other-data": lambda: _other_data(tmp), "model-other-market": _other_market}
    return cases | scored
