"""Hydra entry point: `python -m ashare_autotune.backtest model_uri=... start=... end=...`
(a model's backtest on a window, logged as a new MLflow run)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from ashare_autotune.config.backtest_cli import BacktestCliConfig
from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_schema
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.runtime import settle_job_imports

register_configs()
# Absolute: Hydra resolves a relative config_path as a package path when the task function's
# module is imported rather than run as __main__ (e.g. by a test).
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="backtest_cli")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Backtest the model, log the run and print the statistics; returns the IR."""
    app = to_schema(cfg, BacktestCliConfig)
    # the job's modules (mlflow, the models, ~3 CPU-s) load once the configuration is checked
    from ashare_autotune.jobs.model_backtest import run_model_backtest

    settle_job_imports()
    result = run_model_backtest(app)
    print(result.table)
    print(f"logged to MLflow run {result.run_id}")
    return result.metrics["bt_information_ratio"]


if __name__ == "__main__":
    run_cli(main)
