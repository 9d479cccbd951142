"""Our whole training job (data, features, study, threshold, registration), timed by phase.

Runs `ashare_autotune.jobs.pipeline.run_training` with the real config (conf/, plus Hydra
overrides) against a fresh SQLite MLflow store and Optuna storage in a temporary directory, and
reports the wall time of each phase, the time spent inside `xgboost.train` (the boosting floor),
the fixed costs around it (MLflow set-up and trial runs, pruning, validation AUC, plots), the
time in the garbage collector, peak RSS, the best trial's validation AUC and the test AUC.

    python -m benchmarks.run_pipeline --source synthetic --n-stocks 5000 --trials 50
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import xgboost
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from optuna_integration.mlflow import MLflowCallback

from ashare_autotune.config.loading import register_configs, to_app_config
from ashare_autotune.config.schema import AppConfig, DataConfig
from ashare_autotune.jobs import pipeline, pipeline_data
from ashare_autotune.modelling import dataset
from ashare_autotune.runtime import settle_imports
from ashare_autotune.tracking import reports
from ashare_autotune.tracking import runs as tracking
from benchmarks.common import (
    ROOT,
    CollectorTime,
    Phases,
    add_data_args,
    data_overrides,
    load,
    peak_rss_gb,
)
from benchmarks.common import write_result as write_json

# pipeline-level functions whose wall time is reported as a phase
PHASES = {
    "build_dataset": "features_labels_split",
    "build_matrices_in_batches": "matrices",
    "build_matrices_from_rows": "matrices",
    "build_matrices": "matrices",
    "run_study": "study",
    "fit_best": "final_fit",
    "fit_final": "final_fit",  # before trial_rows
    "register_and_promote": "registration",
}

# (owner, attribute, phase): fixed costs the job pays besides boosting rounds
FIXED_COSTS = [
    (tracking, "setup", "mlflow_setup"),
    (reports, "dataset_inputs", "dataset_inputs"),
    (tracking, "log_inputs", "dataset_inputs"),
    (reports, "log_plots", "plots"),
    (MLflowCallback, "__call__", "trial_runs"),  # one MLflow run per trial
    (optuna.trial.Trial, "report", "pruning_reports"),  # inside boosting
    (optuna.trial.Trial, "should_prune", "pruning_checks"),  # inside boosting
    (xgboost.Booster, "eval", "validation_auc"),  # inside boosting
]


def _wrap_models(phases: Any) -> None:
    """The models' matrices ("matrices") and LightGBM's training ("boosting"), where the
    checkout has the model protocol (`models/`)."""
    try:
        import lightgbm

        from ashare_autotune.models.lightgbm.model import LightGBMModel
        from ashare_autotune.models.xgboost.model import XGBoostModel
    except ImportError:  # an older checkout, measured for comparison
        return
    for cls in (XGBoostModel, LightGBMModel):
        cls.build_matrices = phases.wrap("matrices", cls.build_matrices)
    lightgbm.train = phases.wrap("boosting", lightgbm.train)


def compose_app(overrides: list[str], workdir: Path, conf_dir: Path) -> AppConfig:
    """The config in `conf_dir` with `overrides`, MLflow and Optuna stores inside `workdir`."""
    register_configs()
    GlobalHydra.instance().clear()
    stores = [
        f"mlflow.tracking_uri=sqlite:///{workdir / 'mlflow.db'}",
        f"tuning.storage=sqlite:///{workdir / 'optuna.db'}",
    ]
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=stores + overrides)
    return to_app_config(cfg)


def instrument(phases: Phases, facts: dict[str, Any]) -> None:
    """Time the pipeline's phases and every `xgboost.train` call (trials and the final fit);
    `facts` receives the market's rows and stocks."""
    load_market = pipeline_data.load_market

    def load_and_count(cfg: DataConfig) -> Any:
        market = load_market(cfg)
        facts.update(rows=len(market.daily), stocks=market.n_stocks)
        return market

    pipeline_data.load_market = phases.wrap("data", load_and_count)
    for module in (pipeline, pipeline_data):
        for attr, name in PHASES.items():
            if hasattr(module, attr):  # older checkouts (measured for comparison) may lack one
                setattr(module, attr, phases.wrap(name, getattr(module, attr)))
    tracking.log_pick_model = phases.wrap("log_model", tracking.log_pick_model)
    _wrap_models(phases)
    dataset.build_feature_set = phases.wrap("features", dataset.build_feature_set)
    # a single split writes its features to disk instead (`Dataset.store`)
    dataset.write_feature_store = phases.wrap("features", dataset.write_feature_store)
    xgboost.train = phases.wrap("boosting", xgboost.train)
    # fixed costs: outside the study, per trial, and inside `xgboost.train` ("boosting")
    for owner, attr, name in FIXED_COSTS:
        setattr(owner, attr, phases.wrap(name, getattr(owner, attr)))


def trial_states(app: AppConfig, study_name: str) -> dict[str, int]:
    """How many trials of the study completed, were pruned or failed."""
    study = optuna.load_study(study_name=study_name, storage=app.tuning.storage)
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    return {s: states.count(s) for s in sorted(set(states))}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the job once in `workdir` and collect its measurements."""
    overrides = [f"tuning.n_trials={args.trials}", *args.override]
    app = compose_app(overrides, workdir, args.conf_dir.resolve())
    app.data = DataConfig(**(dataclasses.asdict(app.data) | data_overrides(args)))
    app.model.n_jobs = args.n_jobs
    phases, facts = Phases(), {}
    instrument(phases, facts)
    load_start, collector, start = load(), CollectorTime(), time.perf_counter()
    result = pipeline.run_training(app)
    wall = time.perf_counter() - start
    gc_in_job = collector.summary()
    seconds = phases.seconds
    boosting = seconds["boosting"]
    return {
        "job": "pipeline",
        **facts,
        "trials": result.n_trials,
        "trial_states": trial_states(app, result.study_name),
        "wall_s": round(wall, 2),
        "per_trial_s": round(seconds["study"] / max(result.n_trials, 1), 3),
        "phases_s": phases.rounded(),
        "features_rows_per_s": round(facts["rows"] / seconds["features"]),
        "boosting_share": round(boosting / wall, 3),
        "garbage_collector": gc_in_job,
        "imports_settled": not args.no_settle,
        "overhead_share": round(1 - boosting / wall, 3),
        "best_val_auc": round(result.metrics["best_trial_val_auc"], 5),
        "val_auc": round(result.metrics["val_auc"], 5),
        "test_auc": round(result.metrics["test_auc"], 5),
        "best_params": result.best_params,
        "champion": result.champion,
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "peak_rss_by_phase_gb": phases.peaks(),
        "rss_at_phase_end_gb": phases.end_gb,
        "load_start": load_start,
        "load_end": load(),
        "overrides": args.override,
    }


def main() -> None:
    """Parse options, run the job in a temporary directory, print (or write) the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(parser)
    parser.add_argument("--workdir", type=Path, help="keep the MLflow/Optuna stores here")
    parser.add_argument("--conf-dir", type=Path, default=ROOT / "conf", help="Hydra config dir")
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="skip runtime.settle_imports (to measure what it saves)",
    )
    parser.add_argument("override", nargs="*", help="Hydra overrides, e.g. tuning.pruner=none")
    args = parser.parse_args()
    if not args.no_settle:
        settle_imports()  # as the command-line entry points do (`errors.run_cli`)
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.workdir:  # kept afterwards: watch progress in its optuna.db while it runs
        args.workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(args.workdir)
        result = run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            os.chdir(tmp)  # MLflow artifacts (./mlruns) land in the temporary directory
            result = run(args, Path(tmp))
    write_json(result, args.out)


if __name__ == "__main__":
    main()
