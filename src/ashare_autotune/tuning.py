"""Optuna search over XGBoost hyperparameters, maximising validation AUC."""

from __future__ import annotations

import dataclasses
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

from ashare_autotune import sqlite_wal
from ashare_autotune.config import ModelConfig, ParamSpec, TuningConfig
from ashare_autotune.errors import UserError

log = logging.getLogger(__name__)

# Validation is evaluated as `EVAL_NAME` with `EVAL_METRIC`; XGBoost logs it as "val-auc".
EVAL_NAME, EVAL_METRIC = "val", "auc"
OBSERVATION_KEY = f"{EVAL_NAME}-{EVAL_METRIC}"
FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# a frame and the positions of one segment's rows in it
Segment = tuple[pd.DataFrame, np.ndarray]


@dataclass
class Matrices:
    """Training and validation matrices, built once per study and shared by every trial."""

    train: xgb.QuantileDMatrix
    # The validation rows evaluated every `eval_every` rounds (early stopping, pruning, the
    # trial's value). `build_matrices_in_batches` makes it a plain DMatrix of all of them, or
    # of a seeded sample when there are many: AUC over millions of rows every round cost
    # several times more than the round itself, and XGBoost predicts new trees faster on raw
    # features than on quantised bins, with the same predictions (benchmarks/README.md).
    val: xgb.DMatrix
    # A sample of the training rows the trials train on when train is large; None: all of it.
    # The final model is refitted on all of `train` (`fit_best`).
    trial_train: xgb.QuantileDMatrix | None = None


def build_matrices(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_val: pd.DataFrame,
    y_val: np.ndarray,
    max_bin: int,
    n_jobs: int,
) -> Matrices:
    """Quantise train once (max_bin must equal the booster's) and validation on train's cuts.

    For the walk-forward windows, all alive during the study: quantised, validation takes half
    the memory of a plain DMatrix, for evaluations ~30% slower (same predictions).
    """
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
    trial_rows: int | None = None,
    seed: int = 0,
) -> Matrices:
    """Like `build_matrices`, from a panel's rows in batches instead of copies of the segments,
    with validation as a plain DMatrix of the rows evaluated.

    Args:
        train: the frame holding the training rows and their positions in it.
        val: the frame holding the validation rows and their positions in it.
        columns: the feature columns, in model order.
        label: the label column.
        max_bin: histogram bins (must equal the booster's).
        n_jobs: threads.
        batch_rows: rows per batch.
        watch_rows: when validation has more rows, `val` holds a seeded sample of this many.
        trial_rows: when train has more rows, also build `trial_train` from a seeded sample
            of this many of them.
        seed: seed of the samples.
    """

    def sample(rows: np.ndarray, n: int | None) -> np.ndarray:
        """A seeded sample of `n` of `rows`, in order; all of them when there are not more."""
        if n is None or len(rows) <= n:
            return rows
        return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))

    def quantise(seg: Segment, ref: xgb.QuantileDMatrix | None) -> xgb.QuantileDMatrix:
        frame, rows = seg
        y = frame[label].to_numpy()[rows]
        batches = RowBatches(frame, columns, rows, y, batch_rows)
        return xgb.QuantileDMatrix(batches, ref=ref, max_bin=max_bin, nthread=n_jobs)

    dtrain = quantise(train, None)
    frame, rows = val[0], sample(val[1], watch_rows)
    x_val = frame.iloc[rows, [frame.columns.get_loc(c) for c in columns]]
    dval = xgb.DMatrix(x_val, frame[label].to_numpy()[rows], nthread=n_jobs)
    trial_sample = sample(train[1], trial_rows)
    sampled = len(trial_sample) < len(train[1])
    return Matrices(
        train=dtrain,
        val=dval,
        trial_train=quantise((train[0], trial_sample), dtrain) if sampled else None,
    )


def base_params(model: ModelConfig) -> dict[str, Any]:
    """XGBoost parameters fixed for every trial (no scale_pos_weight, by design)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": EVAL_METRIC,
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
    eval_every: int = 1,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> xgb.Booster:
    """Train on `matrices.trial_train` (all of `matrices.train` when it is None), early-stopping
    on the AUC of `matrices.val` (`booster.best_iteration`, `booster.best_score`).

    Args:
        params: booster parameters.
        matrices: the study's matrices.
        model: rounds and early-stopping patience (in boosting rounds).
        eval_every: evaluate validation every this many rounds (and at the last round);
            early stopping and `callbacks` see only these evaluations.
        callbacks: callbacks acting on the evaluations, e.g. Optuna's pruning callback.
    """
    stop = xgb.callback.EarlyStopping(
        rounds=-(-model.early_stopping_rounds // eval_every),  # in evaluations
        metric_name=EVAL_METRIC,
        data_name=EVAL_NAME,
        maximize=True,
    )
    evaluate = PeriodicEvaluation(
        matrices.val,
        eval_every,
        model.num_boost_round,
        [stop, *callbacks],
    )
    return xgb.train(
        params,
        matrices.train if matrices.trial_train is None else matrices.trial_train,
        num_boost_round=model.num_boost_round,
        callbacks=[evaluate],
        verbose_eval=False,
    )


class PeriodicEvaluation(xgb.callback.TrainingCallback):
    """Evaluate a matrix every `period` boosting rounds and only then run `then` on the result.

    `xgboost.train` evaluates its `evals` after every round; on a small universe that cost more
    than the round itself (benchmarks/README.md). This evaluates on rounds period-1, 2*period-1,
    ... and the last, appends the scores to the evaluation log as `xgboost.train` would, and
    hands that log to `then` (XGBoost's `EarlyStopping`, Optuna's pruning callback) on those
    rounds only. With period 1 it is what `xgboost.train(evals=[(dmatrix, "val")])` does.
    """

    def __init__(
        self,
        dmatrix: xgb.DMatrix,
        period: int,
        num_rounds: int,
        then: Sequence[xgb.callback.TrainingCallback],
    ) -> None:
        self._dmatrix, self._period, self._num_rounds = dmatrix, period, num_rounds
        self._then = list(then)
        super().__init__()

    def before_training(self, model: Any) -> Any:
        """Let `then` set up (XGBoost's early stopping notes the starting round)."""
        for callback in self._then:
            model = callback.before_training(model)
        return model

    def after_training(self, model: Any) -> Any:
        """Let `then` finish."""
        for callback in self._then:
            model = callback.after_training(model)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """On an evaluation round, log the scores and return whether any of `then` stops."""
        if (epoch + 1) % self._period and epoch + 1 != self._num_rounds:
            return False
        result = model.eval(self._dmatrix, EVAL_NAME, epoch)  # "[epoch]\tval-auc:0.61..."
        for item in result.split("\t")[1:]:
            key, value = item.rsplit(":", 1)
            metric = key.split("-", 1)[1]
            evals_log.setdefault(EVAL_NAME, {}).setdefault(metric, []).append(float(value))
        stops = [callback.after_iteration(model, epoch, evals_log) for callback in self._then]
        return any(stops)


def make_objective(
    matrices: Matrices, model: ModelConfig, space: dict[str, ParamSpec], eval_every: int = 1
) -> Callable[[optuna.Trial], float]:
    """An objective that trains with early stopping on validation and returns its best AUC
    (on `matrices.val`, a sample when validation is large: scoring every trial on all of a
    whole-market validation segment cost ~0.8 s a trial, benchmarks/README.md).

    Args:
        matrices: the study's training and validation matrices.
        model: fixed booster settings.
        space: the search space.
        eval_every: evaluate validation (early stopping, pruning) every this many rounds.
    """

    def objective(trial: optuna.Trial) -> float:
        params = base_params(model) | suggest_params(trial, space)
        pruning = XGBoostPruningCallback(trial, OBSERVATION_KEY)
        booster = train_early_stopping(params, matrices, model, eval_every, [pruning])
        trial.set_user_attr("best_iteration", int(booster.best_iteration))
        return float(booster.best_score)

    return objective


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The configured pruner: none, median or hyperband."""
    if name == "median":
        return SnapshotPruner(optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=20)
    return optuna.pruners.NopPruner()


class SnapshotPruner(optuna.pruners.BasePruner):
    """A median (percentile) pruner that reads the study's completed trials once per trial.

    `PercentilePruner.prune` reads every completed trial, and the running one, from the storage
    at every check: on SQLite ~5 ms a check, ~1.3 s of a 150-stock job (benchmarks/README.md).
    This hands it the completed trials as they were at the trial's first check. In one process
    no trial completes while another runs, so every decision is the same. A worker sharing the
    study with others sees the trials they complete meanwhile from its next trial on.
    """

    def __init__(self, pruner: optuna.pruners.PercentilePruner) -> None:
        self._pruner = pruner
        # (study name, trial number) of the trial checked last, and its snapshot
        self._snapshot: tuple[tuple[str, int], CompletedTrials] | None = None

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """The wrapped pruner's decision, on this trial's snapshot of the completed trials."""
        key = (study.study_name, trial.number)
        if self._snapshot is None or self._snapshot[0] != key:
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            self._snapshot = (key, CompletedTrials(study.direction, complete))
        return self._pruner.prune(self._snapshot[1], trial)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CompletedTrials:
    """What a percentile pruner reads of a study: its direction and its completed trials."""

    direction: optuna.study.StudyDirection
    trials: list[optuna.trial.FrozenTrial]

    def get_trials(
        self, deepcopy: bool = True, states: tuple[optuna.trial.TrialState, ...] | None = None
    ) -> list[optuna.trial.FrozenTrial]:
        """The completed trials (the only ones held)."""
        if states != (optuna.trial.TrialState.COMPLETE,):
            raise ValueError(f"only the completed trials are held, not {states}")
        return self.trials


def open_study(cfg: TuningConfig, study_name: str, storage: str) -> optuna.Study:
    """Create the study, or load it when it exists (a rerun continues where it stopped)."""
    return open_or_create_study(cfg, study_name, storage)[0]


def make_storage(cfg: TuningConfig, url: str) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial left RUNNING by a killed process is failed after
    `cfg.grace_period` seconds and re-queued with the same parameters (up to `cfg.max_retry`).

    Raises `UserError` naming `tuning.storage` when the database cannot be opened.
    """
    if cfg.sqlite_wal:
        sqlite_wal.enable(url)
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


def fit_best(
    matrices: Matrices, model: ModelConfig, study: optuna.Study, eval_every: int
) -> xgb.Booster:
    """The final model: the best trial's parameters refitted on all training rows.

    When the trials trained on all of them, for the best trial's number of rounds. When they
    trained on a sample (`Matrices.trial_train`), the best number of rounds on all rows is not
    the sample's: the refit early-stops on validation as a trial does and is cut at its best
    round.
    """
    if matrices.trial_train is None:
        return fit_final(matrices, model, study.best_params, best_rounds(study))
    full = dataclasses.replace(matrices, trial_train=None)
    params = base_params(model) | study.best_params
    booster = train_early_stopping(params, full, model, eval_every)
    log.info(
        "trials trained on %d of %d training rows; the final model, on all of them, stopped "
        "at %d rounds (validation AUC %.4f)",
        matrices.trial_train.num_row(),
        matrices.train.num_row(),
        booster.best_iteration + 1,
        booster.best_score,
    )
    return booster[: booster.best_iteration + 1]


def make_walk_forward_objective(
    windows: Sequence[Matrices],
    model: ModelConfig,
    space: dict[str, ParamSpec],
    eval_every: int = 1,
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
            booster = train_early_stopping(params, matrices, model, eval_every)
            aucs.append(float(booster.best_score))
            trial.set_user_attr(f"val_w{k}_auc", aucs[-1])
            trial.set_user_attr(f"best_iteration_w{k}", int(booster.best_iteration))
        trial.set_user_attr("best_iteration", int(booster.best_iteration))  # the last window's
        return float(np.mean(aucs))

    return objective


def window_rounds(study: optuna.Study, k: int) -> int:
    """Boosting rounds of the best trial in walk-forward window `k` (from 1)."""
    return int(study.best_trial.user_attrs.get(f"best_iteration_w{k}", 0)) + 1
