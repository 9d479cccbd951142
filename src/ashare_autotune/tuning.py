"""Optuna search over XGBoost hyperparameters, maximising validation AUC."""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sqlalchemy
import xgboost as xgb
from optuna_integration.xgboost import XGBoostPruningCallback
from sklearn.metrics import roc_auc_score

from ashare_autotune.config import ModelConfig, ParamSpec, TuningConfig
from ashare_autotune.errors import UserError

log = logging.getLogger(__name__)

OBSERVATION_KEY = "val-auc"
FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# a frame and the positions of one segment's rows in it
Segment = tuple[pd.DataFrame, np.ndarray]


@dataclass
class Matrices:
    """Training and validation matrices, built once per study and shared by every trial."""

    train: xgb.QuantileDMatrix
    val: xgb.QuantileDMatrix
    # A sample of the validation rows watched every round (early stopping, pruning) when the
    # validation segment is large; None: watch all of it. Computing AUC over millions of rows
    # every round cost several times more than the boosting round itself (benchmarks/README.md).
    watch: xgb.QuantileDMatrix | None = None


def build_matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    max_bin: int,
    n_jobs: int,
) -> Matrices:
    """Quantise train once (max_bin must equal the booster's) and validation on train's cuts."""
    dtrain = xgb.QuantileDMatrix(x_train, y_train, max_bin=max_bin, nthread=n_jobs)
    dval = xgb.QuantileDMatrix(x_val, y_val, ref=dtrain, max_bin=max_bin, nthread=n_jobs)
    return Matrices(train=dtrain, val=dval)


class RowBatches(xgb.DataIter):
    """Rows of a frame's feature columns, a batch at a time, for a `QuantileDMatrix`.

    XGBoost quantises the batches as they come, so a segment of a large panel becomes a matrix
    without first being copied out of the panel in full (0.4 GB at whole-market scale).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        columns: list[str],
        rows: np.ndarray,
        label: np.ndarray,
        batch_rows: int,
    ) -> None:
        self._frame, self._columns = frame, [frame.columns.get_loc(c) for c in columns]
        self._rows, self._label, self._batch_rows = rows, label, batch_rows
        self._at = 0
        super().__init__()

    def next(self, input_data: Callable[..., None]) -> bool:
        """Hand XGBoost the next batch; False when every row was given."""
        if self._at >= len(self._rows):
            return False
        batch = slice(self._at, self._at + self._batch_rows)
        input_data(
            data=self._frame.iloc[self._rows[batch], self._columns], label=self._label[batch]
        )
        self._at += self._batch_rows
        return True

    def reset(self) -> None:
        """Start again from the first row (XGBoost reads the batches twice)."""
        self._at = 0


def build_matrices_in_batches(
    train: Segment,
    val: Segment,
    columns: list[str],
    label: str,
    max_bin: int,
    n_jobs: int,
    batch_rows: int = 1 << 20,
    watch_rows: int | None = None,
    seed: int = 0,
) -> Matrices:
    """Like `build_matrices`, from a panel's rows in batches instead of copies of the segments.

    Args:
        train: the frame holding the training rows and their positions in it.
        val: the frame holding the validation rows and their positions in it.
        columns: the feature columns, in model order.
        label: the label column.
        max_bin: histogram bins (must equal the booster's).
        n_jobs: threads.
        batch_rows: rows per batch.
        watch_rows: when validation has more rows, also build `watch` from a seeded sample
            of this many of them.
        seed: seed of that sample.
    """

    def quantise(seg: Segment, ref: xgb.QuantileDMatrix | None) -> xgb.QuantileDMatrix:
        frame, rows = seg
        y = frame[label].to_numpy()[rows]
        batches = RowBatches(frame, columns, rows, y, batch_rows)
        return xgb.QuantileDMatrix(batches, ref=ref, max_bin=max_bin, nthread=n_jobs)

    dtrain = quantise(train, None)
    watch = None
    if watch_rows is not None and len(val[1]) > watch_rows:
        sample = np.random.default_rng(seed).choice(val[1], watch_rows, replace=False)
        watch = quantise((val[0], np.sort(sample)), dtrain)
    return Matrices(train=dtrain, val=quantise(val, dtrain), watch=watch)


def base_params(model: ModelConfig) -> dict[str, Any]:
    """XGBoost parameters fixed for every trial (no scale_pos_weight, by design)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": model.tree_method,
        "max_bin": model.max_bin,
        "nthread": model.n_jobs,
        "seed": model.seed,
        "verbosity": 0,
    }


def suggest_params(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Sample one point of the configured search space."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec.choices or []))
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return params


def train_early_stopping(
    params: dict[str, Any],
    matrices: Matrices,
    model: ModelConfig,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> xgb.Booster:
    """Train on `matrices.train`, early-stopping on validation AUC (`booster.best_score`): on
    `matrices.watch` when the study watches a sample of validation, else on all of it."""
    return xgb.train(
        params,
        matrices.train,
        num_boost_round=model.num_boost_round,
        evals=[(matrices.val if matrices.watch is None else matrices.watch, "val")],
        early_stopping_rounds=model.early_stopping_rounds,
        callbacks=list(callbacks),
        verbose_eval=False,
    )


class PeriodicPruningCallback(XGBoostPruningCallback):
    """optuna-integration's pruning callback, consulted every `period` boosting rounds.

    Each report is a write to the study's storage and each pruning check reads it; with a
    SQLite study that cost more per round than boosting a small universe (benchmarks/README.md).
    """

    def __init__(self, trial: optuna.Trial, observation_key: str, period: int) -> None:
        super().__init__(trial, observation_key)
        self._period = period

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """Report (and maybe prune) on rounds period-1, 2*period-1, ...; else do nothing."""
        if (epoch + 1) % self._period:
            return False
        return super().after_iteration(model, epoch, evals_log)


def make_objective(
    matrices: Matrices, model: ModelConfig, space: dict[str, ParamSpec], prune_every: int = 1
) -> Callable[[optuna.Trial], float]:
    """An objective that trains with early stopping on validation and returns its best AUC.

    Args:
        matrices: the study's training and validation matrices.
        model: fixed booster settings.
        space: the search space.
        prune_every: report to the pruner every this many boosting rounds.
    """

    def objective(trial: optuna.Trial) -> float:
        params = base_params(model) | suggest_params(trial, space)
        pruning = PeriodicPruningCallback(trial, OBSERVATION_KEY, prune_every)
        booster = train_early_stopping(params, matrices, model, [pruning])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        if matrices.watch is not None:
            trial.set_user_attr("watch_auc", float(booster.best_score))
        return best_validation_auc(booster, matrices)

    return objective


def best_validation_auc(booster: xgb.Booster, matrices: Matrices) -> float:
    """Validation AUC at the best iteration: over all validation rows, also when early
    stopping watched only a sample of them."""
    if matrices.watch is None:
        return float(booster.best_score)
    return validation_auc(booster, matrices.val)


def validation_auc(booster: xgb.Booster, dval: xgb.DMatrix) -> float:
    """AUC over all of `dval` of the booster up to its best iteration."""
    proba = booster.predict(dval, iteration_range=(0, booster.best_iteration + 1))
    return float(roc_auc_score(dval.get_label(), proba))


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The configured pruner: none, median or hyperband."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=20)
    return optuna.pruners.NopPruner()


def open_study(cfg: TuningConfig, study_name: str, storage: str) -> optuna.Study:
    """Create the study, or load it when it exists (a rerun continues where it stopped)."""
    return open_or_create_study(cfg, study_name, storage)[0]


def make_storage(cfg: TuningConfig, url: str) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial left RUNNING by a killed process is failed after
    `cfg.grace_period` seconds and re-queued with the same parameters (up to `cfg.max_retry`).

    Raises `UserError` naming `tuning.storage` when the database cannot be opened.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retry)
        for attempt in range(SCHEMA_RACE_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=_engine_kwargs(url),
                    heartbeat_interval=cfg.heartbeat_interval,
                    grace_period=cfg.grace_period,
                    heartbeat_stale_trial_callback=retry,
                )
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
                # Workers starting together on an empty database race to create Optuna's
                # tables: the loser sees "already exists" and simply tries again.
                if attempt == SCHEMA_RACE_ATTEMPTS - 1:
                    raise _storage_error(url, exc) from None
                time.sleep(0.5 + attempt)
            except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as exc:
                raise _storage_error(url, exc) from None
    raise AssertionError("unreachable")


SCHEMA_RACE_ATTEMPTS = 5


def _storage_error(url: str, exc: BaseException) -> UserError:
    return UserError(f"tuning.storage={redact_uri(url)!r} cannot be opened: {_first_line(exc)}")


def _engine_kwargs(url: str) -> dict[str, Any]:
    # Fail fast when a database server is unreachable instead of hanging on connect.
    if url.startswith(("postgresql", "mysql")):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def redact_uri(uri: str) -> str:
    """Drop a password from a database URI before it is shown or logged."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def open_or_create_study(
    cfg: TuningConfig, study_name: str, storage: str
) -> tuple[optuna.Study, bool]:
    """Open the study in `storage`, creating it when absent.

    Returns:
        (the study, True when this call created it): of several workers starting together,
        exactly one creates the study (the database enforces the unique name).
    """
    rdb = make_storage(cfg, storage)
    kwargs: dict[str, Any] = {
        "study_name": study_name,
        "storage": rdb,
        "sampler": optuna.samplers.TPESampler(seed=cfg.seed),
        "pruner": make_pruner(cfg.pruner),
    }
    try:
        study, created = optuna.create_study(direction="maximize", **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(**kwargs), False
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(cfg, len(study.trials)))
    return study, created


def sampler_seed(cfg: TuningConfig, n_existing: int) -> int:
    """The sampler's seed for a process joining a study that already holds `n_existing` trials.

    Reseeding with `cfg.seed` alone would make a resumed (or a second) process repeat the
    first process's random start-up points; offsetting by the trials so far keeps a resumed
    run reproducible, and workers also mix in their host and process id so that two workers
    joining at the same moment do not sample the same points.
    """
    if cfg.mode != "worker":
        return cfg.seed + n_existing
    worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())
    return (cfg.seed + n_existing + worker) % 2**32


def load_existing_study(cfg: TuningConfig, study_name: str, storage: str) -> optuna.Study:
    """Load a study that must exist (finalize mode); `UserError` when it does not."""
    rdb = make_storage(cfg, storage)
    try:
        return optuna.load_study(study_name=study_name, storage=rdb, pruner=make_pruner("none"))
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(rdb)]
        raise UserError(
            f"tuning.mode=finalize: no study {study_name!r} in tuning.storage="
            f"{redact_uri(storage)!r} (studies there: {names or 'none'}); run the workers first"
        ) from None


def finished_trials(study: optuna.Study) -> int:
    """Trials that ran to the end (complete or pruned): failed ones do not count."""
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    cfg: TuningConfig,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> optuna.Study:
    """Run trials until the study holds `cfg.n_trials` finished trials (or the timeout)."""
    remaining = cfg.n_trials - finished_trials(study)
    if remaining <= 0:
        log.info(
            "study %s already has %d finished trials; none to run",
            study.study_name,
            finished_trials(study),
        )
        return study
    log.info("study %s: running %d trial(s)", study.study_name, remaining)
    with storage_errors_reported(study):
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=cfg.timeout,
            callbacks=list(callbacks),
            show_progress_bar=cfg.show_progress_bar,
        )
    return study


@contextmanager
def storage_errors_reported(study: optuna.Study) -> Iterator[None]:
    """Turn a lost study database (server down, disk full) into a one-line `UserError`."""
    try:
        yield
    except Exception as exc:
        cause = _storage_cause(exc)
        if cause is None:
            raise
        raise UserError(
            f"a database stopped working during study {study.study_name!r}: "
            f"{_first_line(cause)}. Finished trials are kept in the study; fix the database and "
            "run the same command again to resume"
        ) from exc


def _storage_cause(exc: BaseException | None) -> BaseException | None:
    """The database error behind `exc` (Optuna may raise another error while handling it)."""
    chain: list[BaseException] = []
    while exc is not None and len(chain) < 20:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for kind in (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError):
        found = next((e for e in chain if isinstance(e, kind)), None)
        if found is not None:
            return found
    return None


def run_more_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    cfg: TuningConfig,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
) -> int:
    """Run `cfg.n_trials` more trials (a worker's share of a shared study); returns how many
    finished in this call (fewer only when `cfg.timeout` ran out)."""
    ran: list[int] = []

    def count(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state in FINISHED_STATES:
            ran.append(trial.number)

    log.info("study %s: worker running %d trial(s)", study.study_name, cfg.n_trials)
    with storage_errors_reported(study):
        study.optimize(
            objective,
            n_trials=cfg.n_trials,
            timeout=cfg.timeout,
            callbacks=[*callbacks, count],
            show_progress_bar=cfg.show_progress_bar,
        )
    return len(ran)


def best_rounds(study: optuna.Study) -> int:
    """Boosting rounds of the best trial (its early-stopping best iteration + 1)."""
    return int(study.best_trial.user_attrs.get("best_iteration", 0)) + 1


def fit_final(
    matrices: Matrices, model: ModelConfig, params: dict[str, Any], rounds: int
) -> xgb.Booster:
    """Refit the best trial's parameters on train for its best number of rounds."""
    return xgb.train(
        base_params(model) | params, matrices.train, num_boost_round=rounds, verbose_eval=False
    )


def make_walk_forward_objective(
    windows: Sequence[Matrices], model: ModelConfig, space: dict[str, ParamSpec]
) -> Callable[[optuna.Trial], float]:
    """An objective returning the mean best validation AUC over walk-forward windows.

    Each window early-stops on its own validation set; its AUC and best iteration are kept as
    trial user attributes `val_w<k>_auc` / `best_iteration_w<k>` (k from 1). No pruning: the
    windows' learning curves would be reported on the same steps.
    """

    def objective(trial: optuna.Trial) -> float:
        params = base_params(model) | suggest_params(trial, space)
        aucs = []
        for k, matrices in enumerate(windows, start=1):
            booster = train_early_stopping(params, matrices, model)
            aucs.append(best_validation_auc(booster, matrices))
            trial.set_user_attr(f"val_w{k}_auc", aucs[-1])
            trial.set_user_attr(f"best_iteration_w{k}", int(booster.best_iteration))
        trial.set_user_attr("best_iteration", int(booster.best_iteration))  # the last window's
        return float(np.mean(aucs))

    return objective


def window_rounds(study: optuna.Study, k: int) -> int:
    """Boosting rounds of the best trial in walk-forward window `k` (from 1)."""
    return int(study.best_trial.user_attrs.get(f"best_iteration_w{k}", 0)) + 1
