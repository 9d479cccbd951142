"""What one boosting round costs, and what the per-round extras add to it.

Measures milliseconds per round of `xgboost.train` on the study's real matrices (first n stocks of
../shared/data by code) for: OpenMP waiters spinning (libgomp's default) or sleeping
(OMP_WAIT_POLICY=PASSIVE) or spinning briefly (GOMP_SPINCOUNT=10000, which `import
ashare_autotune` sets), 1 or 2 threads, idle or beside busy processes (--hogs), with or without
XGBoost's per-round validation AUC, and with `PeriodicEvaluation` (validation AUC plus the
Optuna pruning callback against a SQLite study) every round or every 10 rounds. Each OpenMP
setting runs in its own process, since libgomp reads it once, when xgboost is loaded.

    python -m benchmarks.round_costs --n-stocks 150 --rounds 200 --hogs 2
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
    from ashare_autotune.config.schema import DataConfig, LabelConfig, SplitConfig
    from ashare_autotune.data.loader import load_market
    from ashare_autotune.modelling.dataset import build_dataset, split_off_train
    from ashare_autotune.models.xgboost.matrices import build_matrices_in_batches
    from benchmarks.common import files_data

    cfg = DataConfig(**files_data(SHARED_DATA, n_stocks))
    ds = build_dataset(load_market(cfg), None, LabelConfig(), SplitConfig())
    train, ds = split_off_train(ds)
    return build_matrices_in_batches(
        (train, np.arange(len(train))),
        (ds.frame, np.flatnonzero(ds.masks()["val"])),
        ds.feature_names,
        "label",
        128,
        n_jobs,
    )


def measure(n_stocks: int, rounds: int, quick: bool = False) -> dict[str, float]:
    """ms per round for each variant, in this process's OpenMP setting (quick: boosting only,
    2 threads, a quarter of the rounds)."""
    import optuna
    import xgboost as xgb
    from optuna_integration.xgboost import XGBoostPruningCallback

    from ashare_autotune.models.xgboost.model import OBSERVATION_KEY, PeriodicEvaluation

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[str, float] = {}
    for n_jobs in (2,) if quick else (2, 1):
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
        # (xgboost's own evals, evaluation period of PeriodicEvaluation, pruning callback?)
        variants: dict[str, tuple[list, int | None, bool]] = {
            "no eval": ([], None, False),
            "xgboost eval auc every round": ([(m.val, "val")], None, False),
            "eval auc + pruning every round": ([], 1, True),
            "eval auc + pruning every 10 rounds": ([], 10, True),
        }
        if quick:
            variants, rounds = {"no eval": variants["no eval"]}, max(rounds // 4, 10)
        for name, (evals, period, prune) in variants.items():
            callbacks = []
            if period:
                study = optuna.create_study(
                    storage=f"sqlite:///{tmp}/{period}.db",
                    direction="maximize",
                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20),
                )
                then = [XGBoostPruningCallback(study.ask(), OBSERVATION_KEY)] if prune else []
                callbacks = [PeriodicEvaluation(m.val, period, rounds, then)]
            start = time.perf_counter()
            xgb.train(params, m.train, rounds, evals=evals, callbacks=callbacks)
            out[f"{n_jobs} threads, {name}"] = round(
                (time.perf_counter() - start) / rounds * 1e3, 1
            )
    return out


# The OpenMP settings compared: libgomp's default, sleeping waiters, and what
# `import ashare_autotune` sets when the user set neither variable.
SETTINGS = {
    "libgomp default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000 (ours)": {"GOMP_SPINCOUNT": "10000"},
}


def main() -> None:
    """Run each OpenMP setting in a subprocess and print ms/round per variant; with --hogs N,
    also with N busy processes beside it (a shared, loaded machine), boosting only."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stocks", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--hogs", type=int, default=0, help="busy processes for the loaded run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for hogs in sorted({0, args.hogs}):
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            for name, extra in SETTINGS.items():
                key = f"{name}, {hogs} busy processes"
                results[key] = _run_child(args, extra, quick=hogs > 0)
                print(key, json.dumps(results[key], indent=1), flush=True)
        finally:
            for proc in busy:
                proc.kill()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _run_child(args: argparse.Namespace, extra: dict[str, str], quick: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    before = load()
    cmd = [sys.executable, "-c", _CHILD, str(args.n_stocks), str(args.rounds), str(int(quick))]
    done = subprocess.run(cmd, env=env | extra, capture_output=True, text=True, check=True)
    return {
        "ms_per_round": json.loads(done.stdout.strip().splitlines()[-1]),
        "load_before": before,
        "load_after": load(),
    }


# xgboost is imported first, so libgomp sees the environment as given (ashare_autotune would
# otherwise set GOMP_SPINCOUNT before xgboost loads).
_CHILD = (
    "import sys, json, xgboost\n"
    "from benchmarks.round_costs import measure\n"
    "print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]), bool(int(sys.argv[3])))))\n"
)


if __name__ == "__main__":
    main()
