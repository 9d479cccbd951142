"""Hydra entry point: `python -m ashare_autotune.train [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config import register_configs, to_app_config
from ashare_autotune.errors import report_user_errors, run_cli
from ashare_autotune.pipeline import run_training

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Train, tune, pick the threshold and register; returns test precision for sweeps."""
    app = to_app_config(cfg)
    result = run_training(app, config_yaml=OmegaConf.to_yaml(cfg, resolve=True))
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
    return result.metrics["test_precision"]


if __name__ == "__main__":
    run_cli(main)
