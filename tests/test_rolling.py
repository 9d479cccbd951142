"""The rolling retrain: the schedule's spans, its bad settings, and (end to end on the tiny
synthetic market) no score from a model that saw its day, the stitched record, the resume."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ashare_autotune.config.loading import register_configs, to_schema
from ashare_autotune.config.rolling import RollingAppConfig, RollingConfig
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market, training_data
from ashare_autotune.errors import ConfigError, UserError
from ashare_autotune.jobs.rolling import job as rolling_job
from ashare_autotune.jobs.rolling import window
from ashare_autotune.jobs.rolling.ab import ab_row, update_ab
from ashare_autotune.jobs.rolling.job import run_rolling
from ashare_autotune.jobs.rolling.report import RollingOutcome
from ashare_autotune.jobs.rolling.state import holding
from ashare_autotune.jobs.rolling.window import SEGMENT, rows_in, score_rows, window_matrices
from ashare_autotune.modelling.dataset import span_dataset
from ashare_autotune.modelling.labels import trading_calendar
from ashare_autotune.modelling.rolling_schedule import rolling_windows
from ashare_autotune.modelling.targets import make_target
from ashare_autotune.models.base import Matrices
from ashare_autotune.models.ensemble.fitted import EnsembleFitted
from ashare_autotune.tracking import backtest_log, registry
from tests.conftest import CONF_DIR, fresh_store, run_entry_point

CALENDAR = pd.bdate_range("2015-01-05", "2020-12-31")  # trading days: weekdays here
EMBARGO = 5


def compose_rolling(*overrides: str) -> RollingAppConfig:
    """conf/rolling_app.yaml with the debug presets (tiny market, monthly rolling.debug)."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("rolling_app", overrides=["debug=default", "rolling=debug", *overrides])
    return to_schema(cfg, RollingAppConfig)


def schedule(**keys: object) -> list:
    cfg = RollingConfig(**{"start": "20180701", "end": "20200331", **keys})
    return rolling_windows(CALENDAR, 0, len(CALENDAR) - 1, cfg, EMBARGO)


def dates(span: tuple[int, int]) -> tuple[pd.Timestamp, pd.Timestamp]:
    return CALENDAR[span[0]], CALENDAR[span[1] - 1]


def test_quarterly_expanding_windows_score_each_quarter_after_embargoed_train_and_val() -> None:
    windows = schedule(val_days=60)
    assert len(windows) == 7  # 2018Q3 .. 2020Q1
    starts = [dates(w.score)[0] for w in windows]
    assert starts[0] == pd.Timestamp("2018-07-02")  # the first trading day of the quarter
    assert [d.month for d in starts] == [7, 10, 1, 4, 7, 10, 1]
    assert dates(windows[-1].score)[1] == pd.Timestamp("2020-03-31")
    for w, nxt in zip(windows, windows[1:], strict=False):
        assert w.score[1] == nxt.score[0]  # contiguous: every day scored once
    for w in windows:
        assert w.train[0] == 0  # expanding: from the first labelled day
        assert w.val == (w.score[0] - EMBARGO - 60, w.score[0] - EMBARGO)
        assert w.train[1] == w.val[0] - EMBARGO
        assert w.tune_round == 0


def test_a_sliding_window_starts_train_years_before_its_step() -> None:
    windows = schedule(window="sliding", train_years=2, val_days=60)
    for w in windows:
        first_scored = dates(w.score)[0]
        since = first_scored - pd.DateOffset(years=2)
        assert dates(w.train)[0] >= since
        assert CALENDAR[w.train[0] - 1] < since  # the first trading day on or after it
        assert w.train[1] == w.val[0] - EMBARGO


def test_retune_every_two_windows_numbers_the_tuning_rounds() -> None:
    assert [w.tune_round for w in schedule(retune_every=2)] == [0, 0, 1, 1, 2, 2, 3]


def test_monthly_steps() -> None:
    windows = schedule(step="month", end="20181231")
    assert [dates(w.score)[0].month for w in windows] == [7, 8, 9, 10, 11, 12]


def test_a_start_without_enough_training_data_names_rolling_start() -> None:
    with pytest.raises(ConfigError, match=r"^config key 'rolling.start'='20150301': window 1"):
        schedule(start="20150301")


def test_a_span_outside_the_data_names_rolling_start() -> None:
    with pytest.raises(ConfigError, match=r"^config key 'rolling.start'='20220101': no candidate"):
        schedule(start="20220101", end="20221231")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["rolling.step=week"],
            "config key 'rolling.step'='week': must be month, quarter, half or year",
        ),
        (
            ["rolling.start=20190101", "rolling.end=20180101"],
            "config key 'rolling.start'='20190101': is after rolling.end='20180101'",
        ),
        (
            ["rolling.window=sliding", "rolling.train_years=0.5"],
            "config key 'rolling.train_years'=0.5: a sliding window shorter than one year",
        ),
        (
            ["label.max_days=20", "label.min_days=3"],
            "config key 'rolling.step'='month': holds fewer trading days than the label horizon "
            "label.max_days=20",
        ),
        (
            ["rolling.window=rolling"],
            "config key 'rolling.window'='rolling': must be expanding or sliding",
        ),
        (
            ["rolling.start=20180231"],
            "config key 'rolling.start'='20180231': is not a calendar date",
        ),
        (["rolling.fit_rows=10"], "config key 'rolling.fit_rows'=10: must be >= 1000"),
        (
            ["model=ensemble", "model.picks=filter_then_rank"],
            "config key 'model.picks'='filter_then_rank': is not applied by the rolling job",
        ),
        (
            ["registry.promotion_metrics=[val_bt_excess_return_exposure]"],
            "config key 'registry.promotion_metrics'=['val_bt_excess_return_exposure']: a "
            "rolling model logs no validation account or signal of its own",
        ),
    ],
)
def test_bad_rolling_settings_are_one_line_errors_naming_the_key(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        compose_rolling(*overrides)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_rolling_model_is_promoted_on_the_stitched_record_before_its_step() -> None:
    app = compose_rolling()
    assert app.registry.promotion_metrics == [
        "val_roll_bt_excess_return_exposure",
        "val_precision",
    ]


def test_a_second_run_on_a_held_state_directory_stops_in_one_line(tmp_path: Path) -> None:
    with holding(tmp_path / "run"):
        with pytest.raises(UserError) as err, holding(tmp_path / "run"):
            pass
        message = str(err.value)
        assert message.startswith(f"rolling.state_dir: {tmp_path / 'run'} is being run by another")
        assert "\n" not in message
        with holding(tmp_path / "other"):  # another directory is free
            pass
    with holding(tmp_path / "run"):  # released when the first run ends
        pass


class MatrixRows:
    """A model that only records the training rows a window's matrices were built from."""

    def build_matrices(self, train, val, options):  # noqa: ANN001, ANN201
        self.train_rows = train.rows
        return Matrices(train=None, val=None)


def test_rolling_fit_rows_trains_a_window_on_a_seeded_sample_of_its_own_rows(
    tmp_path: Path,
) -> None:
    app = compose_rolling("features=basic", "rolling.fit_rows=1000")
    market = load_market(training_data(app.data))
    bench = label_benchmark(app.data, app.label, market)
    ds = span_dataset(market, app.features, app.label, app.universe.rules(), bench, tmp_path)
    day = ds.frame["day"].to_numpy()
    w = rolling_windows(
        ds.calendar, int(day.min()), int(day.max()), app.rolling, app.label.max_days
    )[0]
    target = make_target(ds.frame, app.model.objective)
    trained = rows_in(ds, w.train, np.isfinite(target))
    assert len(trained) > 1000
    model = MatrixRows()
    segment = ds.masks(all_rows=True)[SEGMENT]
    for _ in range(2):  # the same sample every time: seeded
        window_matrices(app, ds, model, target, w.train, w, False, app.rolling.fit_rows)
        frame_rows = np.flatnonzero(segment)[model.train_rows]
        assert len(frame_rows) == 1000
        assert set(frame_rows) <= set(trained)  # the window's own training rows only
    assert np.array_equal(frame_rows, np.sort(frame_rows))
    window_matrices(app, ds, model, target, w.train, w, False, None)
    assert len(model.train_rows) == len(trained)  # unset: every training row


class Column:
    """A member that scores a row by one of its features."""

    best_round = 1

    def __init__(self, j: int) -> None:
        self.j = j

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(x)[:, self.j]


def test_an_ensemble_in_a_rolling_window_is_ranked_within_each_day_not_each_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = compose_rolling("features=basic")
    market = load_market(training_data(app.data))
    bench = label_benchmark(app.data, app.label, market)
    ds = span_dataset(market, app.features, app.label, app.universe.rules(), bench, tmp_path)
    rows = np.arange(500, 900)  # days cut across by batches of 37 rows
    ensemble = EnsembleFitted({"a": Column(0), "b": Column(1)})
    monkeypatch.setattr(window, "PREDICT_ROWS", 37)
    days = ds.frame["trade_date"].to_numpy()[rows]
    whole = ensemble.predict(ds.features(SEGMENT, rows), days)  # every row at once
    assert np.allclose(score_rows(ds, rows, ensemble), whole, equal_nan=True)


# --- end to end: the tiny synthetic market, three monthly windows -------------------------


class Fits:
    """Counts the windows fitted (`rolling.job.fit_window`)."""

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.real = rolling_job.fit_window

    def __call__(self, app, ds, model, data, params, w):  # noqa: ANN001, ANN204
        self.windows.append(w.k)
        return self.real(app, ds, model, data, params, w)


@pytest.fixture(scope="module")
def killed_then_resumed(
    _migrated_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RollingOutcome, list[int], list[int], RollingAppConfig]]:
    """A run stopped after its first window, then run again to the end (in this process)."""
    directory = tmp_path_factory.mktemp("rolling")
    uri = fresh_store(_migrated_db, directory)
    app = compose_rolling(
        "features=basic", "backtest.baselines=[blend]", f"mlflow.tracking_uri={uri}"
    )
    cwd = Path.cwd()
    os.chdir(directory)
    first, second = Fits(), Fits()
    try:
        with pytest.MonkeyPatch.context() as mp:
            # quantstats' tear sheet takes most of a run this small (test_backtest_wiring has it)
            mp.setattr(backtest_log, "write_tearsheet", lambda *a, **k: a[2].write_text("<html>"))
            mp.setattr(rolling_job, "fit_window", first)
            with pytest.raises(KeyboardInterrupt):
                run_rolling(app, stop_after=1)
            while mlflow.active_run():
                mlflow.end_run("KILLED")
            mp.setattr(rolling_job, "fit_window", second)
            outcome = run_rolling(app)
        yield outcome, first.windows, second.windows, app
    finally:
        os.chdir(cwd)
        while mlflow.active_run():
            mlflow.end_run()


@pytest.mark.slow
def test_a_killed_run_resumes_without_refitting_its_finished_windows(killed_then_resumed) -> None:  # noqa: ANN001
    outcome, first, second, _ = killed_then_resumed
    assert first == [1]
    assert second == [2, 3]
    assert outcome.n_windows == 3


@pytest.mark.slow
def test_a_finished_run_run_again_refits_and_registers_nothing(killed_then_resumed) -> None:  # noqa: ANN001
    outcome, _, _, app = killed_then_resumed
    again = Fits()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backtest_log, "write_tearsheet", lambda *a, **k: a[2].write_text("<html>"))
        mp.setattr(rolling_job, "fit_window", again)
        rerun = run_rolling(app)
    assert again.windows == []
    assert rerun.run_id == outcome.run_id
    assert rerun.model_version == outcome.model_version
    versions = mlflow.MlflowClient().search_model_versions(f"name='{app.registry.model_name}'")
    assert len(versions) == 1


@pytest.mark.slow
def test_no_score_comes_from_a_model_that_saw_its_day(killed_then_resumed) -> None:  # noqa: ANN001
    outcome, _, _, app = killed_then_resumed
    record = pd.read_parquet(outcome.record_path)
    assert set(record["window"]) == {1, 2, 3}
    # the trading calendar of the run's market: the label of the last day trained on looks
    # max_days ahead, and still ends before the scored day
    market = load_market(training_data(app.data))
    calendar = trading_calendar(market.daily, market.index)
    fit_end = pd.to_datetime(record["fit_end"], format="%Y%m%d")
    assert (fit_end < record["trade_date"]).all()
    gap = calendar.searchsorted(record["trade_date"]) - calendar.searchsorted(fit_end)
    assert (gap > app.label.max_days).all()
    assert calendar.isin(fit_end).sum() == 3  # each window's fit end is a trading day
    # each window scores only its own step, after the one before
    spans = record.groupby("window")["trade_date"].agg(["min", "max"])
    assert (spans["min"].iloc[1:].to_numpy() > spans["max"].iloc[:-1].to_numpy()).all()


@pytest.mark.slow
def test_the_stitched_record_is_the_windows_predictions_end_to_end(killed_then_resumed) -> None:  # noqa: ANN001
    outcome, _, _, _ = killed_then_resumed
    record = pd.read_parquet(outcome.record_path)
    directory = outcome.record_path.parent.parent
    parts = [pd.read_parquet(directory / f"w{k:03d}.parquet") for k in (1, 2, 3)]
    pd.testing.assert_frame_equal(record, pd.concat(parts, ignore_index=True))
    assert not record.duplicated(["ts_code", "trade_date"]).any()
    logged = mlflow.artifacts.download_artifacts(
        run_id=outcome.run_id, artifact_path="predictions/rolling.parquet"
    )
    pd.testing.assert_frame_equal(pd.read_parquet(logged), record)


@pytest.mark.slow
def test_the_record_is_judged_logged_and_its_latest_model_registered(killed_then_resumed) -> None:  # noqa: ANN001
    outcome, _, _, app = killed_then_resumed
    client = mlflow.MlflowClient()
    run = client.get_run(outcome.run_id)
    assert run.data.metrics["roll_rank_ic_mean"] == pytest.approx(
        outcome.metrics["roll_rank_ic_mean"]
    )
    assert "roll_bt_annual_return" in run.data.metrics  # the account
    assert "roll_baseline_blend_bt_annual_return" in run.data.metrics  # beside a baseline
    # the first window's model scoring the whole span, never refitted: the model trained once
    assert {"once_rank_ic_mean", "once_bt_annual_return"} <= set(run.data.metrics)
    assert "trained once" in outcome.returns.columns
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{outcome.run_id}'"
    )
    window_runs = [c for c in children if "window" in c.data.params]
    assert sorted(int(c.data.params["window"]) for c in window_runs) == [1, 2, 3]
    for c in window_runs:
        assert {"fit_start", "fit_end", "score_start"} <= set(c.data.tags)
        assert "val_auc" in c.data.metrics and "rounds" in c.data.metrics
    assert list(outcome.by_year.index) == ["2018", "total"]
    version = client.get_model_version(app.registry.model_name, outcome.model_version)
    assert version.tags["roll_rank_ic_mean"] == str(round(outcome.metrics["roll_rank_ic_mean"], 4))
    assert version.tags["rolling_window"] == "3"
    # promotion can compare it: it logged every metric the rolling default compares, the
    # record's before its own step
    logged = registry.version_metrics(version)
    assert set(app.registry.promotion_metrics) <= set(logged)
    assert logged["val_roll_bt_excess_return_exposure"] == pytest.approx(
        outcome.metrics["val_roll_bt_excess_return_exposure"]
    )


def test_the_ab_table_holds_one_row_per_sweep_job_and_a_rerun_replaces_its_row(
    tmp_path: Path,
) -> None:
    days = pd.bdate_range("2020-01-01", periods=300)
    by_year = pd.DataFrame(
        {"rank_ic_mean": [0.05, 0.02, 0.035]},
        index=pd.Index(["2020", "2021", "total"], name="year"),
    )
    for job, ic in (("model=xgboost", 0.04), ("model=lightgbm", 0.03), ("model=xgboost", 0.06)):
        metrics = {"roll_rank_ic_mean": ic, "roll_bt_annual_return": 0.1}
        returns = pd.Series(np.full(len(days), ic / 100), index=days)
        files = update_ab(tmp_path, ab_row(job, metrics, by_year), returns)
    table = pd.read_csv(files["rolling_ab.csv"], index_col="job")
    assert list(table.index) == ["model=lightgbm", "model=xgboost"]
    assert table.loc["model=xgboost", "rank_ic"] == 0.06  # the rerun's row
    assert table.loc["model=lightgbm", "rank_ic_2021"] == 0.02
    assert "| model=xgboost | 0.0600 |" in files["rolling_ab.md"].read_text()
    curves = pd.read_parquet(tmp_path / "rolling_ab_returns.parquet")
    assert list(curves.columns) == ["model=lightgbm", "model=xgboost"]
    assert files["rolling_ab.png"].stat().st_size > 0


@pytest.mark.slow
def test_the_command_reports_a_bad_step_in_one_line_and_exits_2(
    tmp_path: Path, tracking_uri: str
) -> None:
    done = run_entry_point("rolling", tmp_path, tracking_uri, "debug=default", "rolling.step=week")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: config key 'rolling.step'='week': must be month, quarter, half or year"
    ]
    assert not (tmp_path / "rolling_state").exists()
