"""Trials a dead process left RUNNING: each trial records its process (host, pid); a trial cut
by a stop signal is failed and re-queued before the process goes (`owned`), and one whose
process was SIGKILLed is failed and re-queued when the next process opens the study
(`fail_orphan_trials`), without waiting for its heartbeat to go stale."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import optuna

from ashare_autotune.runtime import on_stop, owner, owner_gone

log = logging.getLogger(__name__)

OWNER_ATTR = "ashare_autotune:owner"  # a trial's system attr: [host, pid] of its process


class RetryStaleTrial:
    """Optuna's `RetryHeartbeatStaleTrialCallback` (re-queue a failed trial's parameters, up to
    `max_retry` times), the copy not inheriting the dead process as its owner."""

    def __init__(self, max_retry: int | None) -> None:
        self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Re-queue `trial`'s parameters as a WAITING trial."""
        trial = copy.copy(trial)
        trial.system_attrs = {k: v for k, v in trial.system_attrs.items() if k != OWNER_ATTR}
        self._retry(study, trial)


Objective = Callable[[optuna.Trial], float]


def owned(objective: Objective) -> Objective:
    """`objective`, recording this process as each trial's owner; a stop signal (SIGTERM,
    Ctrl-C) during the trial fails it and re-queues its parameters before the process goes."""

    def run(trial: optuna.Trial) -> float:
        trial.storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, list(owner()))
        # from a signal handler: past the storage's cache, whose lock the interrupted code
        # may hold (waiting for it there would hang the process)
        cancel = on_stop(lambda: _fail_and_retry(trial.study, trial._trial_id, uncached=True))
        try:
            return objective(trial)
        finally:
            cancel()

    return run


def fail_orphan_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials of `study` whose process is dead (`runtime.owner_gone`) and
    re-queue them (the storage's stale-trial callback, `RetryStaleTrial`).

    Returns:
        the numbers of the trials failed (each is logged).
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    failed = []
    for trial in running:
        host, pid = (trial.system_attrs.get(OWNER_ATTR) or [None, None])[:2]
        if owner_gone(host, pid) and _fail_and_retry(study, trial._trial_id):
            log.warning(
                "trial %d of study %s was left RUNNING by process %s on %s, which is no longer "
                "running: failed, and its parameters queued again",
                trial.number,
                study.study_name,
                pid,
                host,
            )
            failed.append(trial.number)
    return failed


def _fail_and_retry(study: optuna.Study, trial_id: int, uncached: bool = False) -> bool:
    """Fail a RUNNING trial and re-queue it; False when it had already ended. `uncached`: write
    through the database storage under Optuna's cache (`_CachedStorage._backend`), whose
    non-reentrant lock a signal may have interrupted its holder in."""
    storage = study._storage
    if uncached and hasattr(storage, "_backend"):
        storage = storage._backend
        study = copy.copy(study)  # its re-queued copy written the same way
        study._storage = storage
    try:
        if not storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:  # it ended meanwhile (another process)
        return False
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if retry is not None:
        retry(study, copy.deepcopy(storage.get_trial(trial_id)))
    return True
