"""predict / evaluate / backtest score only the data a model was trained on: another source,
data ending before the model's, or another market under the same source name is refused in
one line naming both and the override key; `allow_other_data=true` scores it with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError
from ashare_autotune.jobs.picks import run_predict
from ashare_autotune.tracking.data_match import check_same_data
from tests.conftest import TrainedModel
from tests.test_predict import _predict_config


def _market(closes: dict[str, list[float]], source: str = "synthetic(seed=7)") -> Market:
    """Bars of 20181228 and 20181231 for each stock: its two closes."""
    days = pd.to_datetime(["20181228", "20181231"])
    rows = [(c, d, v) for c, pair in closes.items() for d, v in zip(days, pair, strict=True)]
    daily = pd.DataFrame(rows, columns=["ts_code", "trade_date", "close"])
    return Market(daily, pd.DataFrame(), pd.DataFrame(), source)


TRAINED = _market({"A": [9.0, 10.0], "B": [11.0, 12.0], "C": [13.0, 14.0]})
META = {"data": TRAINED.describe()}
WHO = "m v1"
TAIL = (
    ": m v1 was trained on synthetic(seed=7) 20181228..20181231; load that data (data=..., "
    "experiment=...) or set allow_other_data=true to score this data anyway"
)


def test_the_market_describes_its_last_day() -> None:
    assert META["data"] == {
        "source": "synthetic(seed=7)",
        "start": "20181228",
        "end": "20181231",
        "n_stocks": 3,
        "n_rows": 6,
        "end_n_stocks": 3,
        "end_close_median": 12.0,
    }


def test_the_same_market_and_a_close_moved_by_a_later_dividend_pass() -> None:
    check_same_data(META, TRAINED, WHO, allow=False)
    adjusted = _market({"A": [9.0, 10.0], "B": [11.0, 12.5], "C": [13.0, 14.0]})  # +4%
    check_same_data(META, adjusted, WHO, allow=False)


@pytest.mark.parametrize(
    ("market", "problem"),
    [
        (
            _market({"A": [1.0, 2.0]}, source="files:data/daily.parquet"),
            "the loaded data is files:data/daily.parquet 20181228..20181231",
        ),
        (
            Market(TRAINED.daily.iloc[:1], pd.DataFrame(), pd.DataFrame(), "synthetic(seed=7)"),
            "the loaded data synthetic(seed=7) ends on 20181228, before the model's data ends "
            "(older data)",
        ),
        (
            _market({"A": [9.0, 30.0], "B": [11.0, 31.0], "C": [13.0, 32.0]}),
            "the loaded synthetic(seed=7) is another market: on 20181231 it has 3 stocks with a "
            "median close of 31.00, the model's data had 3 and 12.00",
        ),
        (
            _market({k: [9.0, 12.0] for k in "ABCD"}),
            "the loaded synthetic(seed=7) is another market: on 20181231 it has 4 stocks with a "
            "median close of 12.00, the model's data had 3 and 12.00",
        ),
    ],
)
def test_other_data_is_refused_in_one_line(market: Market, problem: str) -> None:
    with pytest.raises(DataError) as err:
        check_same_data(META, market, WHO, allow=False)
    assert str(err.value) == problem + TAIL


def test_the_override_scores_other_data_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    other = _market({"A": [1.0, 2.0]}, source="files:data/daily.parquet")
    with caplog.at_level(logging.WARNING):
        check_same_data(META, other, WHO, allow=True)
    assert "(allow_other_data=true: going on)" in caplog.text


def test_a_model_from_before_the_last_day_was_recorded_is_checked_on_source_and_span() -> None:
    old = {"data": {k: META["data"][k] for k in ("source", "start", "end", "n_stocks")}}
    check_same_data(old, _market({"A": [9.0, 30.0]}), WHO, allow=False)


def test_predict_refuses_another_synthetic_market_unless_allowed(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match=r"^the loaded data is synthetic\(seed=8\) .*: "):
        run_predict(_predict_config(trained_model, tmp_path, "data.seed=8"))
    with pytest.raises(
        DataError, match=r"another market: on 20181231 it has \d+ stocks .*had \d+ and"
    ):
        run_predict(_predict_config(trained_model, tmp_path, "data.n_stocks=300"))
    assert not list(tmp_path.glob("**/*.csv"))
    allowed = _predict_config(trained_model, tmp_path, "data.seed=8", "allow_other_data=true")
    assert run_predict(allowed).path.exists()  # scored, with a warning
