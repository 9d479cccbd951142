"""Typed configuration schema, registered with Hydra so that unknown keys and bad types fail."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.errors import ConfigError

DATA_SOURCES = ("synthetic", "files", "tushare", "baostock", "akshare")
# Sources downloaded through a local cache (fetch_data updates them).
DOWNLOADED_SOURCES = ("tushare", "baostock", "akshare")


@dataclass
class DataConfig:
    """Where the bars come from and which slice of them to use."""

    source: str = "synthetic"  # synthetic | files | tushare | baostock | akshare
    start: str | None = None  # YYYYMMDD, inclusive
    end: str | None = None  # YYYYMMDD, inclusive
    index_code: str = "000001.SH"
    n_stocks: int | None = None  # universe size (synthetic: stocks generated)
    ts_codes: list[str] | None = None  # explicit universe
    seed: int = 42
    # synthetic
    n_days: int = 1000
    first_date: str = "20180102"
    # files
    daily: str | None = None
    index: str | None = None
    stock_basic: str | None = None
    # universe rules (any source; stock_basic gives names and list dates)
    exclude_st: bool = False  # drop stocks whose name contains ST (*ST, ST, S*ST)
    min_list_days: int = 0  # drop each stock's bars in its first N calendar days after listing
    # tushare (the token is never a config key: TUSHARE_TOKEN or .env)
    adjust: str = "qfq"  # qfq | hfq | none
    cache_dir: str = "data_cache/tushare"
    max_retries: int = 5  # attempts per API call before giving up
    retry_wait: float = 2.0  # seconds before the first retry; doubles on each further one
    progress: bool = True  # show a progress bar while downloading days
    # tushare extras (each needs more Tushare points than daily bars)
    daily_basic: bool = False  # fetch daily_basic (turnover, valuation) as optional columns
    namechange: bool = False  # fetch namechange (point-in-time names, e.g. ST flags)


@dataclass
class FeaturesConfig:
    """Which features to build; empty means all known features."""

    names: list[str] = field(default_factory=list)


@dataclass
class LabelConfig:
    """Positive when the highest close over T+min_days..T+max_days gains >= min_return."""

    min_days: int = 3
    max_days: int = 5
    min_return: float = 0.04


@dataclass
class SplitConfig:
    """Chronological fractions of the trading calendar and the embargo between segments."""

    train: float = 0.6
    val: float = 0.2
    test: float = 0.2
    embargo: int = 5  # trading days; defaults to label.max_days in conf/split
    kind: str = "single"  # single | walk_forward
    n_windows: int = 3  # walk_forward: rolling windows; the fractions are those of one window


@dataclass
class ModelConfig:
    """Fixed XGBoost settings shared by all trials."""

    tree_method: str = "hist"
    max_bin: int = 128
    num_boost_round: int = 500
    early_stopping_rounds: int = 20
    n_jobs: int = 2
    seed: int = 42


@dataclass
class ParamSpec:
    """One dimension of the search space."""

    type: str = "float"  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None


@dataclass
class TuningConfig:
    """The Optuna study."""

    n_trials: int = 50
    timeout: float | None = None  # seconds for the whole study
    study_name: str | None = None  # None: derived from the experiment and a config hash
    storage: str | None = None  # None: optuna.db next to the MLflow SQLite DB
    seed: int = 42
    pruner: str = "median"  # none | median | hyperband
    eval_every: int = 10  # rounds between validation AUCs (early stopping, pruning look at them)
    watch_rows: int | None = 500_000  # validation rows evaluated (None: all)
    trial_rows: int | None = 1_000_000  # training rows the trials train on (None: all)
    show_progress_bar: bool = False
    space: dict[str, ParamSpec] = field(default_factory=dict)
    # all: run the study to n_trials, then threshold + register | worker: run n_trials more
    # trials in the shared study, no registration | finalize: no trials, threshold + register
    mode: str = "all"
    heartbeat_interval: int = 20  # seconds between a running trial's heartbeats
    grace_period: int = 60  # a RUNNING trial without a heartbeat this long is failed and retried
    max_retry: int = 3  # retries of one trial left stale by a killed process
    parent_wait: float = 60.0  # seconds a worker waits for the study's parent MLflow run
    sqlite_wal: bool = True  # a SQLite storage in write-ahead-log mode (`sqlite_wal`)


@dataclass
class ThresholdConfig:
    """Decision threshold: maximise recall subject to precision >= target_precision."""

    target_precision: float = 0.60
    low: float = 0.05
    high: float = 0.95
    step: float = 0.005
    min_picks: int = 20


@dataclass
class TradingConfig:
    """The trading view of the test segment."""

    top_k: int = 10  # the k highest-probability stocks of each day


@dataclass
class MlflowConfig:
    """Tracking server and experiment."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment_name: str = "ashare-autotune"
    run_name: str | None = None
    sqlite_wal: bool = True  # a SQLite tracking DB in write-ahead-log mode (`sqlite_wal`)


@dataclass
class RegistryConfig:
    """Model registry settings."""

    model_name: str = "ashare-autotune-xgb"
    register: bool = True
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    # Compared with the current champion, most important first; all higher-is-better.
    promotion_metrics: list[str] = field(default_factory=lambda: ["test_precision", "test_recall"])


@dataclass
class AppConfig:
    """The whole training configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


def register_configs() -> None:
    """Register the schema so `conf/config.yaml` can extend it (`- base_config` in defaults)."""
    ConfigStore.instance().store(name="base_config", node=AppConfig)


def to_app_config(cfg: DictConfig) -> AppConfig:
    """Convert a composed Hydra config into the typed `AppConfig` and validate it."""
    app = OmegaConf.to_object(cfg)
    if not isinstance(app, AppConfig):
        raise ConfigError("configuration does not follow the AppConfig schema")
    validate(app)
    return app


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}'={value!r}: {why}")


def validate(app: AppConfig) -> None:
    """Check cross-field rules a type cannot express; raises `ConfigError` naming the key."""
    lab, sp, th, tu = app.label, app.split, app.threshold, app.tuning
    validate_data(app.data)
    validate_label(lab)
    for key in ("train", "val", "test"):
        _check(0 < getattr(sp, key) < 1, f"split.{key}", getattr(sp, key), "must be in (0, 1)")
    total = sp.train + sp.val + sp.test
    _check(
        abs(total - 1) < 1e-6,
        "split",
        f"{sp.train}/{sp.val}/{sp.test}",
        f"train+val+test must sum to 1, got {total:g}",
    )
    _check(
        sp.embargo >= lab.max_days,
        "split.embargo",
        sp.embargo,
        f"must be >= label.max_days={lab.max_days} so no label window crosses a boundary",
    )
    _check(
        0 < th.target_precision < 1,
        "threshold.target_precision",
        th.target_precision,
        "must be in (0, 1)",
    )
    _check(
        0 <= th.low < th.high <= 1,
        "threshold.low",
        th.low,
        f"must satisfy 0 <= low < high={th.high} <= 1",
    )
    _check(
        0 < th.step < th.high - th.low + 1e-12,
        "threshold.step",
        th.step,
        "must be > 0 and no larger than high - low",
    )
    _check(th.min_picks >= 1, "threshold.min_picks", th.min_picks, "must be >= 1")
    _check(app.trading.top_k >= 1, "trading.top_k", app.trading.top_k, "must be >= 1")
    _check(
        sp.kind in {"single", "walk_forward"},
        "split.kind",
        sp.kind,
        "must be single or walk_forward",
    )
    _check(sp.n_windows >= 2, "split.n_windows", sp.n_windows, "must be >= 2")
    _check(tu.n_trials >= 1, "tuning.n_trials", tu.n_trials, "must be >= 1")
    _check(tu.timeout is None or tu.timeout > 0, "tuning.timeout", tu.timeout, "must be > 0")
    _check(
        tu.pruner in {"none", "median", "hyperband"},
        "tuning.pruner",
        tu.pruner,
        "must be one of none, median, hyperband",
    )
    _check(tu.eval_every >= 1, "tuning.eval_every", tu.eval_every, "must be >= 1")
    _check(
        tu.trial_rows is None or tu.trial_rows >= 1000,
        "tuning.trial_rows",
        tu.trial_rows,
        "must be null or >= 1000",
    )
    _check(
        tu.watch_rows is None or tu.watch_rows >= 1000,
        "tuning.watch_rows",
        tu.watch_rows,
        "must be null or >= 1000",
    )
    _check(bool(tu.space), "tuning.space", tu.space, "the search space is empty")
    _validate_resume(tu)
    for name, spec in tu.space.items():
        _validate_param(name, spec)
    _validate_promotion(app.registry)
    m = app.model
    _check(m.max_bin >= 2, "model.max_bin", m.max_bin, "must be >= 2")
    _check(m.num_boost_round >= 1, "model.num_boost_round", m.num_boost_round, "must be >= 1")
    _check(m.n_jobs >= 1, "model.n_jobs", m.n_jobs, "must be >= 1")


TUNING_MODES = ("all", "worker", "finalize")


def _validate_resume(tu: TuningConfig) -> None:
    _check(tu.mode in TUNING_MODES, "tuning.mode", tu.mode, f"must be one of {TUNING_MODES}")
    _check(
        tu.heartbeat_interval >= 1,
        "tuning.heartbeat_interval",
        tu.heartbeat_interval,
        "must be >= 1",
    )
    _check(
        tu.grace_period > tu.heartbeat_interval,
        "tuning.grace_period",
        tu.grace_period,
        f"must be > tuning.heartbeat_interval={tu.heartbeat_interval}",
    )
    _check(tu.max_retry >= 0, "tuning.max_retry", tu.max_retry, "must be >= 0")
    _check(tu.parent_wait >= 0, "tuning.parent_wait", tu.parent_wait, "must be >= 0")


PROMOTION_METRICS = tuple(
    f"{seg}_{m}" for seg in ("test", "val") for m in ("precision", "recall", "auc", "f1")
)


def _validate_promotion(reg: RegistryConfig) -> None:
    key = "registry.promotion_metrics"
    _check(bool(reg.promotion_metrics), key, reg.promotion_metrics, "needs at least one metric")
    bad = [m for m in reg.promotion_metrics if m not in PROMOTION_METRICS]
    _check(not bad, key, bad, f"unknown metric(s); choose from {list(PROMOTION_METRICS)}")
    _check(
        reg.challenger_alias != reg.champion_alias,
        "registry.challenger_alias",
        reg.challenger_alias,
        "must differ from registry.champion_alias",
    )


def validate_data(d: DataConfig) -> None:
    """Check the `data` group; raises `ConfigError` naming the key."""
    _check(
        d.source in DATA_SOURCES,
        "data.source",
        d.source,
        f"must be one of {', '.join(DATA_SOURCES)}",
    )
    for key in ("start", "end", "first_date"):
        value = getattr(d, key)
        _check(
            value is None or (len(str(value)) == 8 and str(value).isdigit()),
            f"data.{key}",
            value,
            "must be a date written YYYYMMDD",
        )
    if d.start and d.end:
        _check(d.start <= d.end, "data.start", d.start, f"is after data.end={d.end!r}")
    _check(d.n_stocks is None or d.n_stocks >= 1, "data.n_stocks", d.n_stocks, "must be >= 1")
    _check(d.n_days >= 60, "data.n_days", d.n_days, "must be >= 60 trading days")
    _check(
        d.ts_codes is None or all(str(c).strip() for c in d.ts_codes),
        "data.ts_codes",
        d.ts_codes,
        "must be a list of codes like [000001.SZ,600000.SH]",
    )
    _check(d.min_list_days >= 0, "data.min_list_days", d.min_list_days, "must be >= 0")
    _validate_tushare(d)


def _validate_tushare(d: DataConfig) -> None:
    _check(d.adjust in {"qfq", "hfq", "none"}, "data.adjust", d.adjust, "must be qfq, hfq or none")
    _check(d.max_retries >= 1, "data.max_retries", d.max_retries, "must be >= 1")
    _check(d.retry_wait >= 0, "data.retry_wait", d.retry_wait, "must be >= 0 seconds")
    _check(bool(d.cache_dir), "data.cache_dir", d.cache_dir, "must be a directory path")
    if d.source in DOWNLOADED_SOURCES:
        _check(bool(d.start), "data.start", d.start, f"is required with data={d.source}")


def validate_label(lab: LabelConfig) -> None:
    """Check the `label` group; raises `ConfigError` naming the key."""
    _check(lab.min_days >= 1, "label.min_days", lab.min_days, "must be >= 1")
    _check(
        lab.min_days <= lab.max_days,
        "label.min_days",
        lab.min_days,
        f"must be <= label.max_days={lab.max_days}",
    )
    _check(0 < lab.min_return < 1, "label.min_return", lab.min_return, "must be in (0, 1)")


def _validate_param(name: str, spec: ParamSpec) -> None:
    key = f"tuning.space.{name}"
    _check(
        spec.type in {"float", "int", "categorical"},
        f"{key}.type",
        spec.type,
        "must be float, int or categorical",
    )
    _check(
        name not in {"scale_pos_weight", "max_bin", "tree_method"},
        key,
        name,
        "is fixed by the project and may not be searched",
    )
    if spec.type == "categorical":
        _check(bool(spec.choices), f"{key}.choices", spec.choices, "needs at least one choice")
        return
    _check(
        spec.low is not None and spec.high is not None and spec.low <= spec.high,
        f"{key}.low",
        spec.low,
        f"needs low <= high (high={spec.high})",
    )
    _check(
        not spec.log or (spec.low or 0) > 0, f"{key}.low", spec.low, "must be > 0 on a log scale"
    )


def config_fingerprint(app: AppConfig, data_summary: dict[str, Any] | None = None) -> str:
    """A short hash of everything that defines the study's objective (data, label, split, space).

    Two runs with the same fingerprint optimise the same function, so they may share a study.

    Args:
        app: the configuration.
        data_summary: what was actually loaded (date range, rows), so new data is a new study.
    """
    parts: dict[str, Any] = {
        k: asdict(getattr(app, k)) for k in ("data", "features", "label", "split")
    }
    parts["loaded"] = data_summary or {}
    parts["space"] = {k: asdict(v) for k, v in app.tuning.space.items()}
    parts["model"] = asdict(app.model)
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]
