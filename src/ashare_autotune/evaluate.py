"""Hydra entry point: `python -m ashare_autotune.evaluate [overrides]` (out-of-time evaluation)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from ashare_autotune.config.loading import (
    register_configs,
    reject_unknown_keys,
    to_evaluate_config,
)
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.runtime import settle_job_imports

register_configs()
# Absolute: Hydra resolves a relative config_path as a package path when the task function's
# module is imported rather than run as __main__ (e.g. by a test).
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Evaluate the model out of time, log the run and print the table; returns precision."""
    app = to_evaluate_config(cfg)
    # the job's modules (mlflow, the models, ~3 CPU-s) load once the configuration is checked
    from ashare_autotune.jobs.out_of_time import run_evaluation

    settle_job_imports()
    result = run_evaluation(app)
    print(result.table)
    print(f"logged to MLflow run {result.run_id}")
    return result.metrics["oot_precision"]


if __name__ == "__main__":
    run_cli(main)
