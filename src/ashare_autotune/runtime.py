"""Process-level settings of the command-line entry points."""

from __future__ import annotations

import atexit
import gc


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
