"""Process-level settings of the command-line entry points."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

# the job-private directories alive now, removed when the process is stopped by SIGTERM
_SCRATCH: set[str] = set()


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


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A job-private temporary directory, removed when the block ends (also on an exception)
    and when `remove_scratch_on_sigterm` is set up and the process gets SIGTERM."""
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        _SCRATCH.add(path)
        try:
            yield Path(path)
        finally:
            _SCRATCH.discard(path)


def remove_scratch_on_sigterm() -> None:
    """On SIGTERM (`kill`, `run_background.sh --stop`), remove the `scratch_dir`s and die of
    the signal as before. No exception is raised into the job: one raised inside XGBoost's
    callbacks aborts the process in C++ instead of unwinding. Call once, from an entry point."""
    signal.signal(signal.SIGTERM, _remove_and_die)


def _remove_and_die(signum: int, frame: FrameType | None) -> None:
    for path in list(_SCRATCH):
        shutil.rmtree(path, ignore_errors=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
