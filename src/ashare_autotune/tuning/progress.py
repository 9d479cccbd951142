"""The study's progress: one compact line per finished trial (n/N, its value, the best so far,
pruned count, elapsed and time left), in place of Optuna's own trial lines."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import optuna

log = logging.getLogger(__name__)

TrialState = optuna.trial.TrialState


def quiet_optuna() -> None:
    """Silence Optuna's INFO lines (each trial's 400 characters of parameters): the study's
    progress lines say what matters, and the best parameters are in the run's summary."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class StudyProgress:
    """An Optuna callback logging one line per trial this process finishes.

    Counts are kept here from the study's state at the start (a resumed study counts its
    earlier trials), so a line costs no database read.

    Args:
        study: the study about to run (its finished trials so far are counted once).
        total: the trials the study should hold at the end (`tuning.n_trials`).
        metric: the trial value's name, e.g. val_auc.
        timeout: the study's time budget in seconds (None: none).
    """

    study: optuna.Study
    total: int
    metric: str
    timeout: float | None = None
    started: float = field(default_factory=time.monotonic)
    done: int = field(init=False)  # finished trials of the study (complete or pruned)
    pruned: int = field(init=False)
    ran_here: int = field(init=False, default=0)  # finished in this process (the time left)
    best: tuple[float, int] | None = field(init=False)  # (value, trial number)

    def __post_init__(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        self.done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        self.pruned = sum(t.state == TrialState.PRUNED for t in trials)
        complete = [
            (float(t.value), t.number)
            for t in trials
            if t.state == TrialState.COMPLETE and t.value is not None
        ]
        self.best = max(complete, key=lambda vn: vn[0], default=None)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Count the trial and log its line."""
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.done += 1
            self.ran_here += 1
        self.pruned += trial.state == TrialState.PRUNED
        value = trial.value if trial.state == TrialState.COMPLETE else None
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (float(value), trial.number)
        elapsed = time.monotonic() - self.started
        left = time_left(elapsed, self.ran_here, self.total - self.done, self.timeout)
        best, pruned = self.best, self.pruned
        log.info(
            progress_line(trial, self.done, self.total, self.metric, best, pruned, elapsed, left)
        )


def time_left(elapsed: float, ran: int, remaining: int, timeout: float | None) -> float | None:
    """Seconds until the study ends: the mean trial time of this process times the trials
    left, capped by the time budget; None before any trial ran here."""
    if remaining <= 0:
        return 0.0
    if ran <= 0:
        return None if timeout is None else max(timeout - elapsed, 0.0)
    left = elapsed / ran * remaining
    return left if timeout is None else min(left, max(timeout - elapsed, 0.0))


def progress_line(
    trial: optuna.trial.FrozenTrial,
    done: int,
    total: int,
    metric: str,
    best: tuple[float, int] | None,
    pruned: int,
    elapsed: float,
    left: float | None,
) -> str:
    """`trial 7/50 val_auc 0.6123 | best 0.6356 (#2) | 1 pruned | 0:42 elapsed, ~4:30 left`."""
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        outcome = f"{metric} {trial.value:.4f}"
    elif trial.state == TrialState.PRUNED:
        outcome = f"pruned at step {trial.last_step}" if trial.last_step is not None else "pruned"
    else:
        outcome = trial.state.name.lower()
    shown_best = f"best {best[0]:.4f} (#{best[1]})" if best else "no complete trial yet"
    eta = "" if left is None else f", ~{clock(left)} left"
    return (
        f"trial {done}/{total} (#{trial.number}) {outcome} | {shown_best} | {pruned} pruned | "
        f"{clock(elapsed)} elapsed{eta}"
    )


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss or m:ss."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
