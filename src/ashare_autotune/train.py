"""Hydra entry point: `python -m ashare_autotune.train [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.hydra_job import hydra_tags, sweep_run_name
from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_app_config
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.synthetic import data_caveat
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.pipeline import run_training, run_worker

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Train, tune, pick the threshold and register; returns test precision for sweeps."""
    app = to_app_config(cfg)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    if app.tuning.mode == "worker":
        return _work(app, config_yaml)
    tags = hydra_tags()
    if tags.get("hydra_job") and not app.mlflow.run_name:  # multirun: name jobs by overrides
        app.mlflow.run_name = sweep_run_name(HydraConfig.get().overrides.task, tags["hydra_job"])
    result = run_training(app, config_yaml=config_yaml, run_tags=tags)
    verdict = ("champion: " if result.champion else "not champion: ") + result.promotion_reason
    log.info(
        "done: run %s, %d trials, model version %s (%s); test precision %.4f recall %.4f AUC %.4f",
        result.run_id,
        result.n_trials,
        result.model_version,
        verdict,
        result.metrics["test_precision"],
        result.metrics["test_recall"],
        result.metrics["test_auc"],
    )
    if caveat := data_caveat(app.data.source):
        log.warning(caveat)
    return result.metrics["test_precision"]


def _work(app: AppConfig, config_yaml: str) -> float:
    done = run_worker(app, config_yaml=config_yaml)
    log.info(
        "worker done: %d trial(s) run here; study %s now holds %d finished trial(s) (run %s)",
        done.n_trials_run,
        done.study_name,
        done.n_trials_total,
        done.run_id,
    )
    return float(done.n_trials_run)


if __name__ == "__main__":
    run_cli(main)
