"""Every configuration schema (Hydra structured configs), with each default and each check.

The field defaults here are the configuration's defaults: the YAML groups in `conf/` set only
what differs from them per option (e.g. `data=files`), the search space, and interpolations.
Each group checks its own fields in `__post_init__`; `AppConfig.__post_init__` holds the rules
that span groups. A bad value raises `ConfigError` naming the key.

Choice fields hold a `StrEnum` member of `config.choices`: OmegaConf sees a string (its Enum
nodes reject a value with their own message; `Enum | str` fails on a `model.space` entry), and
`__post_init__` turns it into the member or raises the `ConfigError` naming the choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.choices import (
    DOWNLOADED_SOURCES,
    Adjust,
    DataSource,
    LabelEntry,
    LabelKind,
    PicksFormat,
    Pruner,
    SplitKind,
    TuningMetric,
    TuningMode,
    check,
    check_date,
    check_window,
    choose,
)
from ashare_autotune.config.features import FeaturesConfig
from ashare_autotune.config.model import ModelConfig as ModelConfig
from ashare_autotune.config.model import ParamSpec as ParamSpec
from ashare_autotune.config.registry import RegistryConfig
from ashare_autotune.config.threshold import ThresholdConfig
from ashare_autotune.config.trading import TradingConfig
from ashare_autotune.config.universe import UniverseConfig


@dataclass
class DataConfig:
    """Where the bars come from and which slice of them to use."""

    source: str = DataSource.synthetic.value
    start: str | None = None  # YYYYMMDD, inclusive
    end: str | None = None  # YYYYMMDD, inclusive (tushare: null = today, Asia/Shanghai)
    index_code: str = "000001.SH"
    n_stocks: int | None = None  # universe size: a seeded sample (synthetic: stocks generated)
    ts_codes: list[str] | None = None  # explicit universe, e.g. [000001.SZ,600000.SH]
    seed: int = 42
    n_days: int = 1000  # synthetic: trading days generated from first_date (same market)
    first_date: str = "20180102"
    # synthetic: the last days generated that training leaves out (data.end unset), so predict
    # and evaluate find held-out days on the same market
    holdout_days: int = 120
    signal_strength: float = 1.0  # synthetic: multiplier of the weak planted effect (0: none)
    # files (Tushare-style daily bars, parquet or CSV)
    daily: str | None = None
    index: str | None = None
    stock_basic: str | None = None
    # downloaded sources (tushare, baostock, akshare; the Tushare token is never a config key)
    adjust: str = Adjust.qfq.value
    cache_dir: str = "data_cache/tushare"
    max_retries: int = 5  # attempts per API call before giving up
    retry_wait: float = 2.0  # seconds before the first retry; doubles on each further one
    progress: bool = True  # show a progress bar while downloading days
    daily_basic: bool = False  # tushare: also daily_basic (turnover, valuation) columns
    namechange: bool = False  # tushare: also namechange (point-in-time names, Market.namechange)

    def __post_init__(self) -> None:
        self.source = choose(DataSource, self.source, "data.source")
        self.adjust = choose(Adjust, self.adjust, "data.adjust")
        for key in ("start", "end", "first_date"):
            check_date(f"data.{key}", getattr(self, key))
        if self.start and self.end:
            check(
                self.start <= self.end, "data.start", self.start, f"is after data.end={self.end!r}"
            )
        n = self.n_stocks
        check(n is None or n >= 1, "data.n_stocks", n, "must be >= 1")
        check(self.n_days >= 60, "data.n_days", self.n_days, "must be >= 60 trading days")
        check(self.holdout_days >= 0, "data.holdout_days", self.holdout_days, "must be >= 0")
        check(
            self.signal_strength >= 0, "data.signal_strength", self.signal_strength, "must be >= 0"
        )
        check(
            self.ts_codes is None or all(str(c).strip() for c in self.ts_codes),
            "data.ts_codes",
            self.ts_codes,
            "must be a list of codes like [000001.SZ,600000.SH]",
        )
        check(self.max_retries >= 1, "data.max_retries", self.max_retries, "must be >= 1")
        check(self.retry_wait >= 0, "data.retry_wait", self.retry_wait, "must be >= 0 seconds")
        check(bool(self.cache_dir), "data.cache_dir", self.cache_dir, "must be a directory path")
        if self.source in DOWNLOADED_SOURCES:
            check(
                bool(self.start), "data.start", self.start, f"is required with data={self.source}"
            )


@dataclass
class LabelConfig:
    """`kind` excess (default): the forward return from the entry minus `benchmark`'s over the
    same days >= min_return; touch: max(close[T+min_days..T+max_days]) / entry - 1 >=
    min_return; barrier: that before a stop-loss (`modelling.label_designs`)."""

    min_days: int = 3
    max_days: int = 5
    min_return: float = 0.04
    entry: str = LabelEntry.next_open.value  # open[T+1] (unlabelled if it cannot fill) or close[T]
    kind: str = LabelKind.excess.value  # chosen on validation (docs/evaluation.md)
    stop_loss: float = 0.03  # barrier: a close this far below the entry first makes it 0
    benchmark: str = "000905.SH"  # excess: the index whose return is subtracted (CSI 500)

    def __post_init__(self) -> None:
        self.entry = choose(LabelEntry, self.entry, "label.entry")
        self.kind = choose(LabelKind, self.kind, "label.kind")
        check(0 < self.stop_loss < 1, "label.stop_loss", self.stop_loss, "must be in (0, 1)")
        check(self.min_days >= 1, "label.min_days", self.min_days, "must be >= 1")
        check(
            self.min_days <= self.max_days,
            "label.min_days",
            self.min_days,
            f"must be <= label.max_days={self.max_days}",
        )
        check(0 < self.min_return < 1, "label.min_return", self.min_return, "must be in (0, 1)")


@dataclass
class SplitConfig:
    """Chronological fractions of the trading calendar and the embargo between segments.

    Walk-forward: `n_windows` rolling train/val/test windows (the fractions are those of one
    window), each embargoed like the single split; consecutive test segments cover the end of
    the data. The study maximises the mean validation AUC across windows; the registered model
    is the last (most recent) window's.
    """

    train: float = 0.6
    val: float = 0.2
    test: float = 0.2
    embargo: int = 5  # trading days; conf/split sets it to ${label.max_days}
    kind: str = SplitKind.single.value
    n_windows: int = 3

    def __post_init__(self) -> None:
        self.kind = choose(SplitKind, self.kind, "split.kind")
        for key in ("train", "val", "test"):
            value = getattr(self, key)
            check(0 < value < 1, f"split.{key}", value, "must be in (0, 1)")
        total = self.train + self.val + self.test
        check(
            abs(total - 1) < 1e-6,
            "split",
            f"{self.train}/{self.val}/{self.test}",
            f"train+val+test must sum to 1, got {total:g}",
        )
        check(self.n_windows >= 2, "split.n_windows", self.n_windows, "must be >= 2")


@dataclass
class TuningConfig:
    """The Optuna study: TPE (seeded) maximising validation AUC; the space is the model's
    (`model.space`, conf/model)."""

    n_trials: int = 50
    timeout: float | None = None  # seconds for the whole study
    study_name: str | None = None  # None: <experiment>-<config fingerprint>, so a rerun resumes
    storage: str | None = None  # None: SQLite optuna.db next to the MLflow SQLite DB
    seed: int = 42
    pruner: str = Pruner.median.value
    metric: str = TuningMetric.auc.value  # the validation objective (per day, or a backtest)
    # Validation AUC every eval_every boosting rounds (and at the last); early stopping and the
    # pruner see only these evaluations.
    eval_every: int = 10
    # Those evaluations, and the trial's value, use a seeded sample of at most this many
    # validation rows (None: all).
    watch_rows: int | None = 500_000
    # When train has more rows, the trials train on a seeded sample of this many; the final
    # model is refitted on all training rows, early-stopping on validation (None: all rows).
    trial_rows: int | None = 1_000_000
    # That final fit's learning rate is at least this (None: the best trial's): a rate tuned on
    # the sample runs into model.num_boost_round on all rows (whole market: 500 rounds in 7.5
    # min against 90 in 1.6 min at 0.1, no worse on validation: benchmarks/README.md, "The
    # final fit").
    refit_learning_rate: float | None = 0.1
    show_progress_bar: bool = False
    mode: str = TuningMode.all.value
    heartbeat_interval: int = 20  # seconds between a running trial's heartbeats
    grace_period: int = 60  # a RUNNING trial without a heartbeat this long is failed and retried
    max_retry: int = 3  # retries of one trial left stale by a killed process
    parent_wait: float = 60.0  # seconds a worker waits for the study's parent MLflow run
    sqlite_wal: bool = True  # a SQLite storage in write-ahead-log mode (`sqlite_wal`)

    def __post_init__(self) -> None:
        self.pruner = choose(Pruner, self.pruner, "tuning.pruner")
        self.metric = choose(TuningMetric, self.metric, "tuning.metric")
        self.mode = choose(TuningMode, self.mode, "tuning.mode")
        check(self.n_trials >= 1, "tuning.n_trials", self.n_trials, "must be >= 1")
        t = self.timeout
        check(t is None or t > 0, "tuning.timeout", t, "must be > 0")
        check(self.eval_every >= 1, "tuning.eval_every", self.eval_every, "must be >= 1")
        rate = self.refit_learning_rate
        ok = rate is None or 0 < rate <= 1
        check(ok, "tuning.refit_learning_rate", rate, "must be null or in (0, 1]")
        for key in ("trial_rows", "watch_rows"):
            n = getattr(self, key)
            check(n is None or n >= 1000, f"tuning.{key}", n, "must be null or >= 1000")
        beat = self.heartbeat_interval
        check(beat >= 1, "tuning.heartbeat_interval", beat, "must be >= 1")
        check(
            self.grace_period > beat,
            "tuning.grace_period",
            self.grace_period,
            f"must be > tuning.heartbeat_interval={beat}",
        )
        check(self.max_retry >= 0, "tuning.max_retry", self.max_retry, "must be >= 0")
        check(self.parent_wait >= 0, "tuning.parent_wait", self.parent_wait, "must be >= 0")


@dataclass
class MlflowConfig:
    """Tracking store and experiment (conf/mlflow: MLFLOW_TRACKING_URI wins when set)."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment_name: str = "ashare-autotune"
    run_name: str | None = None
    # A SQLite tracking DB in write-ahead-log mode: ~40x cheaper commits, readers (mlflow ui)
    # do not block the job; false for a DB on a network filesystem (see sqlite_wal.py).
    sqlite_wal: bool = True
    # The run's figures (plots/, backtest/*.png and tearsheet.html, the SHAP plot): false logs
    # the same metrics, tables and records without them, in half the time (conf/debug).
    figures: bool = True


@dataclass
class AppConfig:
    """The whole training configuration (conf/config.yaml)."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)

    def __post_init__(self) -> None:
        """The rules that span groups."""
        self.backtest = self.backtest.with_label(self.label)  # horizon unset: the label's
        check(
            self.split.embargo >= self.label.max_days,
            "split.embargo",
            self.split.embargo,
            f"must be >= label.max_days={self.label.max_days} so no label window crosses a "
            "boundary",
        )
        check(bool(self.model.space), "model.space", {}, "the search space is empty")
        per_day = self.tuning.metric != "auc"
        why = "needs split.kind=single (walk-forward tunes the windows' mean AUC)"
        check(not per_day or self.split.kind == "single", "tuning.metric", self.tuning.metric, why)
        if self.tuning.metric == "bt_information_ratio":  # scored by the validation backtest
            bt = self.backtest
            why = "needs backtest.enabled=true and backtest.strategy=topk_dropout or top_k"
            ok = bt.enabled and bt.strategy != "threshold"  # no threshold is chosen in the study
            check(ok, "tuning.metric", self.tuning.metric, why)
        by_bt = [
            m for m in self.registry.promotion_metrics if m.startswith(("val_bt_", "val_roll_bt_"))
        ]
        why = (
            "needs backtest.enabled=true (the validation backtest); without it, compare e.g. "
            "registry.promotion_metrics=[val_precision,val_recall]"
        )
        check(not by_bt or self.backtest.enabled, "registry.promotion_metrics", by_bt, why)


DEFAULT_MODEL_URI = "models:/ashare-autotune@champion"


@dataclass
class PredictConfig:
    """Score one trading day with a registered model and write the ranked picks
    (conf/predict.yaml; features and threshold come from the model)."""

    model_uri: str = DEFAULT_MODEL_URI
    date: str | None = None  # YYYYMMDD; None: the latest trading day in the data
    top_k: int | None = None  # keep only the k highest probabilities in the output
    output_dir: str = "picks"
    format: str = PicksFormat.csv.value
    allow_other_data: bool = False  # score data other than the model's (tracking.data_match)
    data: DataConfig = field(default_factory=DataConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        check_date("date", self.date)
        check(self.top_k is None or self.top_k >= 1, "top_k", self.top_k, "must be >= 1")
        self.format = choose(PicksFormat, self.format, "format")


@dataclass
class EvaluateConfig:
    """Evaluate a registered model on a window of days it was not trained on
    (conf/evaluate.yaml; logged as a new MLflow run linked to the model version)."""

    model_uri: str = DEFAULT_MODEL_URI
    start: str | None = None  # YYYYMMDD; None: the first trading day after the model's data
    end: str | None = None  # YYYYMMDD; None: the last day with a fully observed label
    allow_overlap: bool = False  # allow a window inside the model's training data range
    allow_other_data: bool = False  # score data other than the model's (tracking.data_match)
    data: DataConfig = field(default_factory=DataConfig)
    label: LabelConfig | None = None  # None: the label definition stored with the model
    backtest: BacktestConfig = field(default_factory=BacktestConfig)  # on the window
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)

    def __post_init__(self) -> None:
        check_window(self.start, self.end)
