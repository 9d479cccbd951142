"""Process-level settings of the command-line entry points: the garbage collector, job-private
scratch directories (removed on exit, on SIGTERM and, after a SIGKILL, at the next start), what
a stop signal leaves behind (`on_stop`), and which process owns a run or trial (`owner`,
`owner_gone`: a SIGKILLed process's are ended at the next start)."""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

# the job-private directories alive now, removed when the process is stopped by SIGTERM
_SCRATCH: set[str] = set()
# what to finish before the process dies of SIGTERM (e.g. mark the MLflow run KILLED)
_ON_STOP: dict[int, Callable[[], None]] = {}
# whether `settle_job_imports` has run in this process
_JOB_SETTLED = False


def settle_imports() -> None:
    """Keep Python's garbage collector off the imported modules, now and at exit.

    After the imports (mlflow, xgboost, optuna, pandas, matplotlib) ~300,000 objects are alive,
    and they live as long as the process. Every full collection walks all of them: ~0.1-0.3 s
    each, ~1 s over a short job, and ~1.4 s more in the passes the interpreter makes as it exits
    (benchmarks/README.md). `gc.freeze` moves what is alive now out of the collector's sight;
    it runs once more at exit, when nothing left will be needed. Objects created later, the
    job's data included, are collected as usual. Call it once, after the imports, from an
    entry point (never from library code: a frozen cycle is never freed).
    """
    gc.freeze()
    atexit.register(gc.freeze)


def settle_job_imports() -> None:
    """`settle_imports` once more, after an entry point imported its job (mlflow, the models,
    the figures), which it does only once the configuration is checked: a bad value exits
    before they load. Only the first call in a process freezes: in a `-m` sweep the later
    jobs' modules are loaded already, and a freeze then would keep what the earlier jobs left
    for the collector (a frozen cycle is never freed)."""
    global _JOB_SETTLED
    if not _JOB_SETTLED:
        _JOB_SETTLED = True
        settle_imports()


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A job-private temporary directory `<prefix><pid>-<random>` under $TMPDIR, removed when
    the block ends (also on an exception) and on SIGTERM (`remove_scratch_on_sigterm`).

    A SIGKILLed process cannot remove its own: the directories of `prefix` whose owner process
    is gone are removed here first (`remove_orphans`); a live process's are left alone.
    """
    remove_orphans(prefix)
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-") as path:
        _SCRATCH.add(path)
        try:
            yield Path(path)
        finally:
            _SCRATCH.discard(path)


def remove_orphans(prefix: str, directory: str | None = None) -> list[Path]:
    """Remove the scratch directories `<prefix><pid>-*` of processes no longer alive.

    Args:
        prefix: the directories' name prefix (e.g. `pipeline.SCRATCH_PREFIX`).
        directory: where to look; None: $TMPDIR (`tempfile.gettempdir`).

    Returns:
        the directories removed (each is logged).
    """
    removed = []
    for path in Path(directory or tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = owner_pid(path.name, prefix)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue  # not ours to judge (no pid in its name), ours, or its owner still runs
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            log.info("removed %s, left by process %d that is no longer running", path, pid)
            removed.append(path)
    return removed


def owner_pid(name: str, prefix: str) -> int | None:
    """The owner's process id in a scratch directory's name `<prefix><pid>-<random>`, or None."""
    head = name[len(prefix) :].split("-", 1)[0]
    return int(head) if name.startswith(prefix) and head.isdigit() else None


def owner() -> tuple[str, int]:
    """(host name, process id) of this process: what a run or trial it starts records."""
    return socket.gethostname(), os.getpid()


def owner_gone(host: object, pid: object) -> bool:
    """Whether the process `pid` on `host` (as `owner` recorded them) is known to be dead: it
    ran on this host and no process has its id now. Another host's, or an unreadable record,
    is never judged dead (its runs and trials are left as they are).
    """
    if host != socket.gethostname() or not str(pid).isdigit():
        return False
    return int(pid) != os.getpid() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def on_stop(action: Callable[[], None]) -> Callable[[], None]:
    """Run `action` when the process gets SIGTERM, before it dies of it (from an entry point
    that called `remove_scratch_on_sigterm`); returns the function that cancels it."""
    key = id(action)
    _ON_STOP[key] = action
    return lambda: _ON_STOP.pop(key, None)


def remove_scratch_on_sigterm(on_interrupt: Callable[[], None] | None = None) -> None:
    """On SIGTERM (`kill`, `run_background.sh --stop`), run the `on_stop` actions, remove the
    `scratch_dir`s and die of the signal as before; on SIGINT (Ctrl-C) the same, then
    `on_interrupt` (one line for the user) and exit status 130.

    No exception is raised into the job: one raised inside XGBoost's callbacks (its data
    iterator reads the feature store) aborts the process in C++ instead of unwinding, as a
    KeyboardInterrupt did. Call once, from an entry point.

    Args:
        on_interrupt: what to tell the user on Ctrl-C; None leaves SIGINT as Python has it.
    """
    signal.signal(signal.SIGTERM, _remove_and_die)
    if on_interrupt is not None and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, lambda signum, frame: _interrupted(on_interrupt))


def clean_up_on_stop() -> None:
    """What a stop signal does before the process goes: the `on_stop` actions, then every MLflow
    run still open in this thread ended KILLED (evaluate's, backtest's: none is left RUNNING),
    then the `scratch_dir`s removed. An action that fails does not keep the others from running.
    """
    for action in [*_ON_STOP.values(), _end_open_runs]:
        with contextlib.suppress(Exception):  # stopping anyway: the rest still runs
            action()
    for path in list(_SCRATCH):
        shutil.rmtree(path, ignore_errors=True)


def _end_open_runs() -> None:
    mlflow = sys.modules.get("mlflow")  # not imported: no run to end
    while mlflow is not None and mlflow.active_run() is not None:
        mlflow.end_run("KILLED")


def _remove_and_die(signum: int, frame: FrameType | None) -> None:
    clean_up_on_stop()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _interrupted(report: Callable[[], None]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the clean-up
    clean_up_on_stop()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        report()
        sys.stderr.flush()
    os._exit(130)  # 128 + SIGINT, as a shell reports it; no unwinding through XGBoost
