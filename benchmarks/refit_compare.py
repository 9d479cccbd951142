"""The default job's final fit: how many training rows, at which learning rate (issue 25's
2-minute refit), chosen on validation with the honest account.

Whole market, the default dataset and model (XGBoost binary, `features=full`), the best trial's
parameters of a finished study (`--study-db`, the default job's `optuna.db`). Each variant is
trained through the model seam as the job's final fit is (`jobs.pipeline_data.quantise`,
`ScoreModel.fit` early-stopping on the watched validation rows' AUC, `tuning.eval_every`) and
timed, the matrices it needs built beside it (`*/matrices`); then `benchmarks.model_compare`'s
report: validation and test AUC-free signal (daily Rank IC, top-k precision), the threshold
picks' precision, the default account after costs by calendar year against 000905.SH.

- `trial_100k`: the best trial's own fit, on the study's 100k-row sample (no refit at all);
- `rows_<n>`: a seeded sample of n training rows (`tuning.trial_rows`' sampler);
- `all`: every training row (the job's final fit before this benchmark);
- `..._lr<x>`: the learning rate raised to x (the trees' other parameters as tuned);
- `..._native`: NaN features as XGBoost's missing values (`model.missing=native`; else the
  default, `fill`).

    python -m benchmarks.refit_compare --study-db /tmp/job/optuna.db \
        --out benchmarks/results/refit_compare_whole_market.json

Choose from the validation columns; the test columns are reported, never chosen on.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from ashare_autotune.jobs.pipeline_data import quantise
from ashare_autotune.models.build import build_model
from benchmarks.common import SHARED_DATA, Phases, load, peak_rss_gb, run_facts, write_result
from benchmarks.model_compare import dataset_and_account, report
from benchmarks.signal_compare import compose_app

log = logging.getLogger("refit_compare")

VARIANTS = "trial_100k,all_lr0.1,rows_1000000,all"
TRIAL_ROWS = 100_000  # the study's sample (the README's whole-market job)


def parse(variant: str) -> tuple[int | None, float | None, str]:
    """`rows_1000000_lr0.1` -> (1000000, 0.1, "fill"); `all_native` -> (None, None, "native");
    `trial_100k` -> the study's sample."""
    rows: int | None = None
    rate: float | None = None
    missing = "native" if variant.endswith("_native") else "fill"
    for part in variant.split("_"):
        if part.startswith("lr"):
            rate = float(part[2:])
        elif part.isdigit():
            rows = int(part)
        elif part == "100k":
            rows = TRIAL_ROWS
    return rows, rate, missing


def best_params(study_db: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The best trial's parameters of the one study in `study_db`, and where they came from."""
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{study_db}")
    best = study.best_trial
    facts = {"study": study.study_name, "trial": best.number, "value": best.value}
    facts["best_iteration"] = best.user_attrs.get("best_iteration")
    return dict(best.params), facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--study-db", type=Path, required=True)
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("override", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params, source = best_params(args.study_db)
    phases = Phases()
    result: dict[str, Any] = {
        **run_facts("benchmarks.refit_compare"),
        "params": params,
        "params_from": source,
        "runs": {},
        "baselines": {},
    }
    common = [f"model.n_jobs={args.n_jobs}", "tuning.watch_rows=200000", *args.override]
    with tempfile.TemporaryDirectory(prefix="refit-compare-") as tmp:
        with phases.timed("dataset"):
            app = compose_app(args.data_dir, False, common)
            market, ds, backtest = dataset_and_account(app, Path(tmp))
        result["segments"] = ds.summary()
        for variant in args.variants.split(","):
            rows, rate, missing = parse(variant)
            tuning = dataclasses.replace(app.tuning, trial_rows=rows)
            model = build_model(dataclasses.replace(app.model, missing=missing))
            with phases.timed(f"{variant}/matrices"):
                start = time.perf_counter()
                # rows None: no sample, so `train` holds every training row (the final fit's)
                data = quantise(tuning, market, ds, model)
                m = data.matrices
                matrices_s = time.perf_counter() - start
            fit_params = params | ({} if rate is None else {"learning_rate": rate})
            with phases.timed(f"{variant}/fit"):
                start = time.perf_counter()
                fitted = model.fit(fit_params, m, app.tuning.eval_every)
                fit_s = time.perf_counter() - start
            del data, m
            gc.collect()
            scores = {s: ds.predict(s, fitted.predict, all_rows=True) for s in ("val", "test")}
            facts = {
                "rows": rows,
                "missing": missing,
                "learning_rate": fit_params["learning_rate"],
                "rounds": int(fitted.best_round),
                "early_stop_val_auc": round(float(fitted.best_score), 5),
                "matrices_s": round(matrices_s, 1),
                "fit_s": round(fit_s, 1),
                "load_after_fit": load(),
            }
            with phases.timed(f"{variant}/report"):
                facts |= report(ds, app, backtest, scores, result["baselines"])
            result["runs"][variant] = facts
            log.info("%s %s", variant, json.dumps(facts))
            if args.out:  # partial results survive an interrupted run
                args.out.write_text(json.dumps(result, indent=2) + "\n")
    result |= {
        "phases_s": phases.rounded(),
        "phase_peak_rss_gb": phases.peaks(),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "load_end": load(),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
