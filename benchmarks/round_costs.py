"""What one boosting round costs, and what the per-round extras add to it.

Measures milliseconds per round of `xgboost.train` on the study's real matrices (first n stocks of
../shared/data by code) for: OpenMP waiters spinning (libgomp's default) or sleeping
(OMP_WAIT_POLICY=PASSIVE, which `import ashare_autotune` sets), 1 or 2 threads, with or without
the per-round validation AUC, and with the Optuna pruning callback against a SQLite study
reporting every round or every 10 rounds. Each OpenMP setting runs in its own process, since
libgomp reads it once, when xgboost is loaded.

    python -m benchmarks.round_costs --n-stocks 150 --rounds 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SHARED_DATA, load


def _matrices(n_stocks: int, n_jobs: int) -> Any:
    from ashare_autotune.config import DataConfig, LabelConfig, SplitConfig
    from ashare_autotune.data import load_market
    from ashare_autotune.dataset import build_dataset
    from ashare_autotune.tuning import build_matrices_in_batches
    from benchmarks.common import first_codes

    d = SHARED_DATA
    cfg = DataConfig(
        source="files",
        daily=str(d / "daily.parquet"),
        index=str(d / "index_daily.parquet"),
        stock_basic=str(d / "stock_basic.csv"),
        ts_codes=first_codes(d, n_stocks),
    )
    ds = build_dataset(load_market(cfg), None, LabelConfig(), SplitConfig())
    train = ds.split_off("train")
    return build_matrices_in_batches(
        (train, np.arange(len(train))),
        (ds.frame, np.flatnonzero(ds.masks()["val"])),
        ds.feature_names,
        "label",
        128,
        n_jobs,
    )


def measure(n_stocks: int, rounds: int) -> dict[str, float]:
    """ms per round for each variant, in this process's OpenMP setting."""
    import optuna
    import xgboost as xgb

    from ashare_autotune.tuning import OBSERVATION_KEY, PeriodicPruningCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[str, float] = {}
    for n_jobs in (2, 1):
        m = _matrices(n_stocks, n_jobs)
        params = {
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "tree_method": "hist",
            "max_bin": 128,
            "nthread": n_jobs,
            "max_depth": 6,
            "learning_rate": 0.05,
            "verbosity": 0,
        }
        tmp = tempfile.mkdtemp()
        variants: dict[str, tuple[list, int | None]] = {
            "no eval": ([], None),
            "eval auc": ([(m.val, "val")], None),
            "eval auc + pruning every round": ([(m.val, "val")], 1),
            "eval auc + pruning every 10 rounds": ([(m.val, "val")], 10),
        }
        for name, (evals, period) in variants.items():
            callbacks = []
            if period:
                storage = f"sqlite:///{tmp}/{period}.db"
                study = optuna.create_study(
                    storage=storage,
                    direction="maximize",
                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20),
                )
                callbacks = [PeriodicPruningCallback(study.ask(), OBSERVATION_KEY, period)]
            start = time.perf_counter()
            xgb.train(params, m.train, rounds, evals=evals, callbacks=callbacks)
            out[f"{n_jobs} threads, {name}"] = round(
                (time.perf_counter() - start) / rounds * 1e3, 1
            )
    return out


def main() -> None:
    """Run each OpenMP setting in a subprocess and print ms/round per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stocks", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for policy in ("default (spin)", "PASSIVE"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy == "PASSIVE":
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        before = load()
        cmd = [sys.executable, "-c", _CHILD, str(args.n_stocks), str(args.rounds)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[policy] = {
            "ms_per_round": json.loads(done.stdout.strip().splitlines()[-1]),
            "load_before": before,
            "load_after": load(),
        }
        print(policy, json.dumps(results[policy], indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


# xgboost is imported first, so libgomp sees the environment as given (ashare_autotune would
# otherwise set OMP_WAIT_POLICY=PASSIVE before xgboost loads).
_CHILD = (
    "import sys, json, xgboost\n"
    "from benchmarks.round_costs import measure\n"
    "print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))\n"
)


if __name__ == "__main__":
    main()
