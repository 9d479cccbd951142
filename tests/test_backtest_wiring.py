"""The backtest where users look: at the end of training on the test segment (test_bt_*), in
every `evaluate` run on its window (oot_bt_*), and standalone (`python -m
ashare_autotune.backtest`, bt_*), each with the same report under `backtest/`; bad input is one
line naming the key."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.loading import register_configs, to_schema
from ashare_autotune.config.schema import AppConfig, DataConfig, EvaluateConfig
from ashare_autotune.data.benchmark import SYNTHETIC_INDEX_CODES, load_benchmark
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.evaluation.backtest_window import backtest_bars
from ashare_autotune.evaluation.baseline_compare import LOGGED_METRICS
from ashare_autotune.jobs import pipeline_data
from ashare_autotune.jobs.model_backtest import run_model_backtest
from ashare_autotune.jobs.out_of_time import run_evaluation
from ashare_autotune.modelling.limits import limit_flags, st_days
from ashare_autotune.tracking import registry
from tests.conftest import CONF_DIR, TrainedModel, cli_env, run_entry_point
from tests.test_out_of_time import _evaluate_config

STATS = (
    "annual_return",
    "benchmark_annual_return",
    "excess_return",
    "information_ratio",
    "sharpe",
    "max_drawdown",
    "turnover",
    "win_rate",
    "mean_holding_days",
    "trades",
    "total_costs",
    "final_equity",
    "invested_mean",
    "beta",
    "alpha",
    "excess_return_exposure",
    "information_ratio_exposure",
)
REPORT_FILES = ("equity.png", "drawdown.png", "monthly_returns.png", "tearsheet.html")


def _artifact(tracking_uri: str, run_id: str, name: str) -> Path:
    mlflow.set_tracking_uri(tracking_uri)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name))


def _check_report(tracking_uri: str, run_id: str, prefix: str) -> pd.DataFrame:
    """The run's <prefix>bt_* metrics are finite and agree with its trades and daily files."""
    metrics = mlflow.MlflowClient(tracking_uri).get_run(run_id).data.metrics
    for stat in STATS:
        assert math.isfinite(metrics[f"{prefix}bt_{stat}"]), stat
    for name in REPORT_FILES:
        assert _artifact(tracking_uri, run_id, f"backtest/{name}").stat().st_size > 1000, name
    assert "<html" in _artifact(tracking_uri, run_id, "backtest/tearsheet.html").read_text()[:500]
    trades = pd.read_parquet(_artifact(tracking_uri, run_id, "backtest/trades.parquet"))
    daily = pd.read_parquet(_artifact(tracking_uri, run_id, "backtest/daily.parquet"))
    assert metrics[f"{prefix}bt_trades"] == len(trades) > 0
    assert metrics[f"{prefix}bt_final_equity"] == pytest.approx(daily["equity"].iloc[-1])
    assert metrics[f"{prefix}bt_total_costs"] == pytest.approx(daily["costs"].sum())
    # the model beside the one-line baselines: metrics, table, plot and the verdict
    everything = pd.read_csv(_artifact(tracking_uri, run_id, "backtest/baselines_all.csv"))
    everything = everything.set_index("name")
    for name in ("reversal_20", "volatility_20", "amount_20", "blend"):
        assert math.isfinite(metrics[f"{prefix}baseline_{name}_bt_excess_return_exposure"])
        # a baseline logs its row of the table; its every statistic is in baselines_all.csv
        stem = f"{prefix}baseline_{name}_"
        logged = {k.removeprefix(stem) for k in metrics if k.startswith(stem)}
        account = {m for m in LOGGED_METRICS if m.startswith("bt_")}  # (`backtest`: no labels)
        assert account <= logged <= set(LOGGED_METRICS)
        assert math.isfinite(everything.loc[name, "bt_total_costs"])
    assert {f"bt_{stat}" for stat in STATS} <= set(everything.columns)
    assert everything.loc["model", "bt_trades"] == metrics[f"{prefix}bt_trades"]
    table = pd.read_csv(_artifact(tracking_uri, run_id, "backtest/baselines.csv"))
    assert table["name"].tolist() == [
        "model",
        "reversal_20",
        "volatility_20",
        "amount_20",
        "blend",
    ]
    assert _artifact(tracking_uri, run_id, "backtest/baselines.png").stat().st_size > 1000
    summary = _artifact(tracking_uri, run_id, "backtest/summary.md").read_text()
    caveat, verdict = summary.split("\n\n", 1)  # every report on synthetic data says so first
    assert caveat == "synthetic market: not evidence of an edge"
    assert verdict.startswith(("model beats all baselines", "model does not beat"))
    return daily


def test_training_backtests_the_test_segment_and_logs_the_report(
    trained_model: TrainedModel,
) -> None:
    run_id = trained_model.result.run_id
    daily = _check_report(trained_model.tracking_uri, run_id, "test_")
    run = mlflow.MlflowClient(trained_model.tracking_uri).get_run(run_id)
    # the account starts the market day after the test segment's first signal day (T+1, the
    # first day an order fills; the synthetic market trades on business days)
    first_fill = pd.Timestamp(run.data.tags["split_test_start"]) + pd.offsets.BDay(1)
    assert daily["trade_date"].min() == first_fill
    assert run.data.params["backtest.max_days"] == run.data.params["label.max_days"]
    # the registered version reports them (promotion never reads test: registry.promotion_metrics)
    version = registry.alias_version("ashare-autotune-debug", "champion")
    assert "test_bt_information_ratio" in registry.version_metrics(version)


def test_training_also_backtests_validation_so_promotion_can_read_the_account(
    trained_model: TrainedModel,
) -> None:
    run = mlflow.MlflowClient(trained_model.tracking_uri).get_run(trained_model.result.run_id)
    metrics = run.data.metrics
    assert metrics["val_bt_trades"] > 0
    assert math.isfinite(metrics["val_bt_information_ratio"])
    # its own account, not the test one's: another window, other trades
    assert metrics["val_bt_final_equity"] != metrics["test_bt_final_equity"]
    version = registry.alias_version("ashare-autotune-debug", "champion")
    assert "val_bt_information_ratio" in registry.version_metrics(version)


def test_promotion_by_the_validation_backtest_needs_the_backtest(
    compose_app: Callable[..., AppConfig],
) -> None:
    app = compose_app("registry.promotion_metrics=[val_bt_information_ratio,val_precision]")
    assert app.registry.promotion_metrics[0] == "val_bt_information_ratio"
    with pytest.raises(ConfigError, match="registry.promotion_metrics.*backtest.enabled=true"):
        compose_app(
            "registry.promotion_metrics=[val_bt_information_ratio]", "backtest.enabled=false"
        )


def test_evaluate_backtests_its_window_with_the_models_label(trained_model: TrainedModel) -> None:
    cfg = _evaluate_config(trained_model)
    assert cfg.backtest.max_days is None  # no label group composed: the model's label is used
    result = run_evaluation(cfg)
    daily = _check_report(trained_model.tracking_uri, result.run_id, "oot_")
    assert daily["trade_date"].min() == pd.Timestamp(result.start) + pd.offsets.BDay(1)
    assert "bt_information_ratio" in result.table


@pytest.mark.slow
def test_the_backtest_entry_point_reports_a_registered_model(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ashare_autotune.backtest",
            "model_uri=models:/ashare-autotune-debug@champion",
            "start=20190102",
            "end=20190131",
            "backtest.top_k=3",
            "backtest.n_drop=1",
            *trained_model.data_overrides,
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        cwd=tmp_path,
        env=cli_env(trained_model.tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1].split()[-1]
    daily = _check_report(trained_model.tracking_uri, run_id, "")
    assert f"{daily['trade_date'].min():%Y-%m-%d}" == "2019-01-03"  # signals from 01-02
    run = mlflow.MlflowClient(trained_model.tracking_uri).get_run(run_id)
    assert run.data.tags["run_kind"] == "backtest"
    assert run.data.tags["model_version"] == trained_model.result.model_version
    assert run.data.params["backtest.top_k"] == "3"
    assert "| information_ratio |" in done.stdout


@pytest.mark.slow
def test_the_backtest_runs_on_a_logged_model_uri_too(trained_model: TrainedModel) -> None:
    register_configs()
    cfg = _compose_cli(
        f"model_uri={trained_model.result.model_uri}",
        f"mlflow.tracking_uri={trained_model.tracking_uri}",
        "start=20190102",
        "end=20190115",
        "backtest.top_k=10",
        "backtest.n_drop=2",
        *trained_model.data_overrides,
    )
    result = run_model_backtest(cfg)
    assert result.start == "20190102" and result.metrics["bt_trades"] > 0


def _compose_cli(*overrides: str):  # noqa: ANN202 - the CLI schema
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ashare_autotune.config.backtest_cli import BacktestCliConfig

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("backtest_cli", overrides=list(overrides))
    return to_schema(cfg, BacktestCliConfig)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["backtest.benchmark=399999.SZ"], "'backtest.benchmark'='399999.SZ'"),
        (["start=20300101", "end=20300131"], "'start'='20300101'"),
        (["backtest.commission=-0.001"], "'backtest.commission'=-0.001"),
        (["backtest.stamp_duty_after=-1"], "'backtest.stamp_duty_after'=-1"),
        (["backtest.top_k=0"], "'backtest.top_k'=0"),
    ],
)
def test_bad_backtest_input_is_one_line_naming_the_key(
    overrides: list[str], key: str, tmp_path: Path, tracking_uri: str
) -> None:
    done = run_entry_point(
        "backtest", tmp_path, tracking_uri, "data.n_stocks=5", "data.n_days=80", *overrides
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config key ") and key in lines[0]


def test_training_refuses_an_unknown_benchmark_before_building_features(
    compose_app: Callable[..., AppConfig],
    tracking_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = compose_app("backtest.benchmark=000852.SH", f"mlflow.tracking_uri={tracking_uri}")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was built before the benchmark was checked")

    monkeypatch.setattr(pipeline_data, "build_dataset", never)
    with pytest.raises(ConfigError, match="'backtest.benchmark'='000852.SH': not an index of"):
        pipeline_data.prepare(app, tmp_path)


@pytest.mark.parametrize(("metric", "keeps"), [("auc", False), ("bt_information_ratio", True)])
def test_a_worker_keeps_backtest_bars_only_to_score_trials_by_a_validation_backtest(
    compose_app: Callable[..., AppConfig],
    tracking_uri: str,
    tmp_path: Path,
    metric: str,
    keeps: bool,
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    app = compose_app(
        f"mlflow.tracking_uri={tracking_uri}",
        "tuning.mode=worker",
        f"tuning.storage={storage}",
        f"tuning.metric={metric}",
    )
    _, ds, data, _ = pipeline_data.prepare(app, tmp_path)
    assert (data.backtest is not None) is keeps
    if data.backtest is not None:  # from the validation segment on, for the trials' backtests
        first = pd.to_datetime(data.backtest.bars["trade_date"]).min()
        assert first.strftime("%Y%m%d") == ds.date_range("val")[0]


def test_the_strategy_horizon_follows_the_label_group(
    compose_app: Callable[..., AppConfig],
) -> None:
    app = compose_app("label.max_days=7", "split.embargo=7", "label.min_return=0.06")
    assert (app.backtest.min_days, app.backtest.max_days) == (app.label.min_days, 7)
    assert app.backtest.min_return == 0.06
    assert compose_app("backtest.max_days=4").backtest.max_days == 4  # an explicit value wins


def test_evaluate_fills_the_horizon_from_the_label_in_use() -> None:
    cfg = EvaluateConfig()
    assert cfg.backtest.min_days is None
    with pytest.raises(ConfigError, match="'backtest.min_days'=None: is not set"):
        cfg.backtest.check_complete()
    from ashare_autotune.config.schema import LabelConfig

    filled = cfg.backtest.with_label(LabelConfig(min_days=2, max_days=6, min_return=0.05))
    assert (filled.min_days, filled.max_days, filled.min_return) == (2, 6, 0.05)


def test_synthetic_data_serves_its_index_for_the_usual_benchmark_codes(
    small_market: Market,
) -> None:
    for code in SYNTHETIC_INDEX_CODES:
        bench = load_benchmark(DataConfig(), small_market, code)
        assert (bench["ts_code"] == code).all()
        np.testing.assert_array_equal(bench["close"], small_market.index["close"])


def test_files_benchmark_is_selected_by_code_from_the_index_file(
    shared_data: Path, small_market: Market
) -> None:
    cfg = DataConfig(
        source="files", daily="unused", index=str(shared_data / "index_daily.parquet")
    )
    bench = load_benchmark(cfg, small_market, "000905.SH")
    raw = pd.read_parquet(shared_data / "index_daily.parquet")
    raw = raw.loc[raw["ts_code"] == "000905.SH"]
    assert len(bench) == len(raw) and (bench["ts_code"] == "000905.SH").all()
    assert bench["trade_date"].is_monotonic_increasing
    with pytest.raises(ConfigError, match=r"'backtest.benchmark'='000906.SH'.*000300.SH"):
        load_benchmark(cfg, small_market, "000906.SH")


def test_an_index_file_without_codes_is_only_data_index_code(
    tmp_path: Path, small_market: Market
) -> None:
    path = tmp_path / "index.csv"
    index = small_market.index.assign(
        trade_date=small_market.index["trade_date"].dt.strftime("%Y%m%d")
    )
    index.to_csv(path, index=False)
    cfg = DataConfig(source="files", daily="unused", index=str(path), index_code="000300.SH")
    assert (load_benchmark(cfg, small_market, "000300.SH")["ts_code"] == "000300.SH").all()
    with pytest.raises(ConfigError, match="'backtest.benchmark'='000905.SH'"):
        load_benchmark(cfg, small_market, "000905.SH")


def test_window_bars_carry_the_flags_of_the_full_panel(shared_data: Path) -> None:
    # flags computed on the window's rows only equal the full panel's (IPOs inside it too),
    # ST names (here the stock_basic snapshot: no namechange) at their ST limits in both
    market = load_market(
        DataConfig(
            source="files",
            daily=str(shared_data / "daily.parquet"),
            index=str(shared_data / "index_daily.parquet"),
            stock_basic=str(shared_data / "stock_basic.csv"),
        )
    )
    daily, basic = market.daily, market.stock_basic
    bars = backtest_bars(daily, basic, "20210104")
    full = limit_flags(daily, basic, st_days(daily, basic))
    inside = (daily["trade_date"] >= pd.Timestamp("2021-01-04")).to_numpy()
    assert len(bars) == inside.sum()
    for name in ("open_limit_up", "one_price_down"):
        assert bars[name].sum() > 10, name
        np.testing.assert_array_equal(bars[name].to_numpy(), full[name].to_numpy()[inside])
