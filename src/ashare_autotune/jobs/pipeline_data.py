"""The training job's first step (`pipeline.prepare`): the tracking store checked, the data
loaded, the dataset built, the study opened and its matrices quantised.

Memory (benchmarks/README.md, whole market with `features=full`): with a single split the
feature block goes to a job-private directory on disk by segment (`modelling.feature_store`)
and is read back in batches: the frame in memory holds only codes, dates, labels, fill flags,
closes and forward returns. Walk-forward windows keep their features in the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from mlflow.entities import DatasetInput

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.choices import Missing, check
from ashare_autotune.config.loading import config_fingerprint, objective_identity
from ashare_autotune.config.schema import AppConfig, LabelConfig, ModelConfig, TuningConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.indices import label_benchmark
from ashare_autotune.data.loader import load_market, training_data
from ashare_autotune.data.market import Market
from ashare_autotune.errors import DataError
from ashare_autotune.evaluation.backtest_window import BacktestInputs, window_inputs
from ashare_autotune.modelling.dataset import Dataset, build_dataset
from ashare_autotune.models.base import Matrices, RowOptions, ScoreModel, dataset_rows
from ashare_autotune.models.build import build_model, model_target
from ashare_autotune.store_locks import StudyLock, hold_study
from ashare_autotune.tracking import reports
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tuning import scoring
from ashare_autotune.tuning.study import (
    check_objective,
    load_existing_study,
    open_or_create_study,
    wait_for_parent,
)
from ashare_autotune.tuning.walk_forward import walk_forward_matrices

log = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
BATCH_BYTES = 1 << 28  # float32 feature bytes per batch handed to XGBoost (~0.27 GB)
MAX_BATCH_ROWS = 1 << 20  # and at most this many rows (the 18 basic features' batches)
# Validation watched as a plain DMatrix (8 bytes an entry, fastest to evaluate) up to this many
# entries; above, quantised on train's cuts (~1 byte an entry; the same predictions).
PLAIN_WATCH_ENTRIES = 1 << 25
BASE_RATE_RANGE = (0.001, 0.999)  # the training labels' share of positives, both exclusive


@dataclass
class Job:
    """The tracking store's experiment and the study a job works on."""

    experiment_id: str
    study: optuna.Study
    storage: str  # the study's database URL
    resume_run_id: str | None  # the study's parent MLflow run, when it has one
    lock: StudyLock | None = None  # this process's hold on the study (not for workers)


@dataclass
class StudyData:
    """What the study trains and validates on, and what the run records about the data."""

    model: ScoreModel  # the configured model (`model=`), which built the matrices
    matrices: Matrices  # the split's (the last window's with walk-forward)
    windows: list[Matrices]  # every walk-forward window's, oldest first; [] for a single split
    inputs: list[DatasetInput]  # train/val/test as MLflow dataset inputs
    summary: dict[str, Any]  # rows, base rate and dates of each segment (`Dataset.summary`)
    backtest: BacktestInputs | None = None  # bars from scoring.backtest_start (None: none)
    signal: Any = None  # what `scoring.trial_scorer` needs of validation (`validation_rows`)


def prepare(app: AppConfig, scratch: Path) -> tuple[Market, Dataset, StudyData, Job]:
    """Check the tracking store (before any work), load the data, build the dataset, open the
    study and quantise the study's matrices.

    Memory, in this order: the daily bars are freed once the dataset is built (the backtests
    keep them from the validation start on: the final model's validation and test accounts,
    and the trials' with `tuning.metric=bt_information_ratio`; a worker that does not score
    trials that way keeps none); with a single split the features live in `scratch` on disk.

    Args:
        app: the validated configuration.
        scratch: an empty, job-private directory the caller removes after the job (the
            features of a single split: `Dataset.store`).

    Returns:
        (the market without its bars, the dataset, the study's matrices, the experiment and
        study).
    """
    model = build_model(app.model)  # an unknown model or objective fails before any work
    check_objective_settings(app.model, app.tuning)
    experiment_id = tracking.setup(
        app.mlflow.tracking_uri, app.mlflow.experiment_name, app.mlflow.sqlite_wal
    )
    app = replace(app, data=training_data(app.data))  # the synthetic market's held-out days
    market = load_market(app.data)
    bench = label_benchmark(app.data, app.label, market)
    # an unknown backtest.benchmark fails here, before the features are built
    bt, bt_index = None, None
    if _backtests(app.backtest, app.tuning):
        bt_index = load_benchmark(app.data, market, app.backtest.benchmark)
    rules = app.universe.rules()
    ds = build_dataset(market, app.features, app.label, app.split, rules, bench, scratch)
    check_base_rate(ds, app.label)  # before any trial: no tuning can learn one class
    if bt_index is not None:
        start = scoring.backtest_start(ds)
        bt = window_inputs(app.backtest, bt_index, market, start)
    market = market.without_bars()
    job = _open_study(app, market, experiment_id)
    return market, ds, replace(quantise(app.tuning, market, ds, model), backtest=bt), job


def check_objective_settings(model: ModelConfig, tuning: TuningConfig) -> None:
    """Refuse settings a ranking or regression objective has no meaning for.

    Its early-stopping score is not an AUC (NDCG@10, minus the squared error), so the trials
    must be valued by a per-day or backtest metric (which also rules out walk-forward windows:
    they tune the windows' mean AUC, `TuningConfig`).

    Args:
        model: the `model` group (its objective).
        tuning: the `tuning` group (its metric).

    Raises:
        ConfigError: one line naming `tuning.metric`.
    """
    objective = model.objective
    if objective == "binary":
        return
    why = f"scores the model's own AUC; model.objective={objective} needs rank_ic"
    check(tuning.metric != "auc", "tuning.metric", str(tuning.metric), why)


def check_base_rate(ds: Dataset, label: LabelConfig) -> None:
    """Refuse a label that is (almost) one class on the training segment.

    Args:
        ds: the dataset (labels and the split's training rows).
        label: the `label` group, named in the error.

    Raises:
        DataError: one line naming the label keys and the base rate outside BASE_RATE_RANGE.
    """
    labels = ds.labels("train")
    if not len(labels):
        return
    rate = float(labels.mean())
    low, high = BASE_RATE_RANGE
    if low < rate < high:
        return
    start, end = ds.date_range("train")
    keys = f"label.kind={label.kind}, label.min_return={label.min_return:g}"
    raise DataError(
        f"{keys}, label.max_days={label.max_days}: {rate:.2%} of the {len(labels):,} training "
        f"rows ({start}..{end}) are positive, outside ({low:.1%}, {high:.1%}): a model cannot "
        "learn (almost) one class; change label.min_return or label.kind"
    )


def quantise(tuning: TuningConfig, market: Market, ds: Dataset, model: ScoreModel) -> StudyData:
    """Build the model's matrices of train/validation once per study (and of every walk-forward
    window, oldest first, the split's own last) and describe the segments as MLflow dataset
    inputs.

    Args:
        tuning: the `tuning` group (sample sizes and seed).
        market: the market (its source and range, for the dataset inputs).
        ds: the dataset (its features in the frame or on disk).
        model: the configured model (its group: the objective's target).
    """
    earlier = walk_forward_matrices(ds, model)  # [] for a single split
    target = model_target(model, ds.frame)  # an ensemble's: one column per member
    # the label and (but for binary) the forward return known (to every member)
    trained = np.isfinite(target).reshape(len(target), -1).all(axis=1)
    val, watch, per_day = scoring.validation_rows(ds, tuning, trained)
    train = np.flatnonzero(ds.masks()["train"] & trained)
    # walk-forward windows are each trained in full: the sample is for one large split
    trial_rows = None if ds.windows else tuning.trial_rows
    # XGBoost's matrix of all training rows is kept for the final fit when dense (model.missing
    # fill: 1 byte an entry, 1.6 GB on the whole market), quantised again when sparse (4 bytes)
    dense = model.cfg.missing == Missing.fill
    options = row_options(tuning, len(ds.feature_names), len(val), watch, trial_rows, dense)
    matrices = model.build_matrices(
        dataset_rows(ds, "train", train, target), dataset_rows(ds, "val", val, target), options
    )
    windows = [*earlier, matrices] if ds.windows else []
    inputs = reports.dataset_inputs(market, ds)
    return StudyData(model, matrices, windows, inputs, ds.summary(), signal=per_day)


def row_options(
    tuning: TuningConfig,
    n_features: int,
    n_val: int,
    watch: int | None,
    trial_rows: int | None,
    keep_train: bool = False,
) -> RowOptions:
    """How a study's rows become matrices: batches of ~`BATCH_BYTES`, the validation rows
    watched (`watch`, sampled from `n_val`), the trials' training sample (`trial_rows`; a
    sampled study holds all training rows only with `keep_train`, else `Matrices.full_train`
    builds them again for the final fit)."""
    n_watch = n_val if watch is None else min(watch, n_val)
    return RowOptions(
        batch_rows=max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // (4 * n_features))),
        watch_rows=watch,
        trial_rows=trial_rows,
        seed=tuning.seed,
        watch_quantised=n_watch * n_features > PLAIN_WATCH_ENTRIES,
        keep_train=keep_train or trial_rows is None,
    )


def _backtests(backtest: BacktestConfig, tuning: TuningConfig) -> bool:
    """Whether the job backtests: the end of training does, a worker only when its trials are
    scored by the validation backtest (it registers nothing, so it never backtests test)."""
    if not backtest.enabled:
        return False
    return tuning.mode != "worker" or tuning.metric == "bt_information_ratio"


def _open_study(app: AppConfig, market: Market, experiment_id: str) -> Job:
    """The study (created, resumed or, in finalize mode, required) and its parent run id."""
    tu = app.tuning
    name = tu.study_name or _default_study_name(app, market)
    storage = tu.storage or tracking.default_study_storage(app.mlflow.tracking_uri)
    # One all-in-one (or finalize) process per study; a second one stops here, before any run.
    lock = None if tu.mode == "worker" else hold_study(storage, name)
    try:
        if tu.mode == "finalize":
            study = load_existing_study(tu, name, storage)
            created = False
        else:
            study, created = open_or_create_study(tu, name, storage)
        # another objective's trials must not join the study (a refused run leaves it as it was)
        check_objective(study, objective_identity(app), scoring.TRIAL_METRICS)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    parent = study.user_attrs.get(PARENT_RUN_ATTR)
    if parent is None and not created and tu.mode == "worker":
        parent = wait_for_parent(study, PARENT_RUN_ATTR, tu.parent_wait)
    return Job(experiment_id, study, storage, parent, lock)


def _default_study_name(app: AppConfig, market: Market) -> str:
    """Same config and same data -> same study, so a rerun resumes rather than restarts."""
    data = market.describe()
    return f"{app.mlflow.experiment_name}-{config_fingerprint(app, data)}"
