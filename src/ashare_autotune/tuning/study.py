"""The Optuna study: pruner, storage (heartbeats, retries), opening or resuming, running trials."""

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

import optuna
import sqlalchemy

from ashare_autotune import sqlite_wal, store_locks
from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.errors import UserError
from ashare_autotune.tuning.progress import StudyProgress, quiet_optuna
from ashare_autotune.tuning.scoring import TRIAL_METRICS
from ashare_autotune.tuning.trial_owners import RetryStaleTrial, fail_orphan_trials, owned

log = logging.getLogger(__name__)

FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


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
    sqlite_wal.check_writable(url, "tuning.storage")
    if cfg.sqlite_wal:
        sqlite_wal.enable(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryStaleTrial(cfg.max_retry)
        for attempt in range(SCHEMA_RACE_ATTEMPTS):
            try:
                with store_locks.creating(url):  # one process at a time creates the tables
                    return optuna.storages.RDBStorage(
                        url,
                        engine_kwargs=_engine_kwargs(url),
                        heartbeat_interval=cfg.heartbeat_interval,
                        grace_period=cfg.grace_period,
                        heartbeat_stale_trial_callback=retry,
                    )
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
                # Workers starting together on an empty database race to create Optuna's
                # tables (`creating` serialises it; this is for a lock that could not be had):
                # the loser sees "already exists" and simply tries again.
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
    quiet_optuna()
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
    fail_orphan_trials(study)  # a SIGKILLed process's trial: failed and queued again now
    return study, created


OBJECTIVE_ATTR = "objective"  # the settings its trials were scored with (`objective_identity`)
LEGACY_OBJECTIVE_ATTR = "objective_metric"  # what studies made before it recorded


def check_objective(
    study: optuna.Study, objective: dict[str, Any], trial_metrics: dict[str, str]
) -> None:
    """Record on a study what its trials are scored by; refuse a run that scores them otherwise.

    Trials of another objective (e.g. Rank IC joining an AUC study) would be compared with the
    study's as if they measured the same thing: the best trial and the registered model would
    be wrong without a word.

    Args:
        study: the study opened for this run.
        objective: the run's `config.loading.objective_identity` ({"tuning.metric": ..., ...}).
        trial_metrics: tuning.metric -> its trial metric name (`scoring.TRIAL_METRICS`), to
            read studies made before the objective was recorded (they kept the metric name).

    Raises:
        UserError: one line naming the first changed key, the study's value and this run's.
    """
    recorded = study.user_attrs.get(OBJECTIVE_ATTR)
    if recorded is None:
        legacy = study.user_attrs.get(LEGACY_OBJECTIVE_ATTR)
        metric = next((m for m, name in trial_metrics.items() if name == legacy), None)
        if metric is not None and metric != objective["tuning.metric"]:
            raise _objective_error(study, "tuning.metric", metric, objective["tuning.metric"])
        study.set_user_attr(OBJECTIVE_ATTR, objective)
        return
    for key in sorted(set(objective) | set(recorded)):
        if recorded.get(key) != objective.get(key):
            raise _objective_error(study, key, recorded.get(key), objective.get(key))


def _objective_error(study: optuna.Study, key: str, theirs: Any, ours: Any) -> UserError:
    return UserError(
        f"study {study.study_name!r} holds trials scored with {key}={theirs}; this run has "
        f"{key}={ours}: trials of another objective cannot join it (rerun with {key}={theirs} "
        "to continue it, or give another tuning.study_name to start a study for this one)"
    )


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
    progress = StudyProgress(study, cfg.n_trials, TRIAL_METRICS[cfg.metric], cfg.timeout)
    with storage_errors_reported(study):
        study.optimize(
            owned(objective),
            n_trials=remaining,
            timeout=cfg.timeout,
            callbacks=[*callbacks, progress],
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
    # n/N of this worker's share: the study's total grows with every worker
    total = finished_trials(study) + cfg.n_trials
    progress = StudyProgress(study, total, TRIAL_METRICS[cfg.metric], cfg.timeout)
    with storage_errors_reported(study):
        study.optimize(
            owned(objective),
            n_trials=cfg.n_trials,
            timeout=cfg.timeout,
            callbacks=[*callbacks, count, progress],
            show_progress_bar=cfg.show_progress_bar,
        )
    return len(ran)


def wait_for_parent(study: optuna.Study, attr: str, timeout: float) -> str | None:
    """Wait for the worker that created the study to record its parent run id (`attr`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parent = study.user_attrs.get(attr)
        if parent:
            return parent
        time.sleep(0.5)
    log.warning("study %s has no parent run after %.0f s: starting one", study.study_name, timeout)
    return None
