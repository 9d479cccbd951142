"""Hydra entry point behind `python -m ashare_autotune.evaluate [overrides]`.

`ashare_autotune.evaluate` stays a pure metrics module; its `__main__` block calls `main` here.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from ashare_autotune.errors import report_user_errors
from ashare_autotune.inference_config import register_inference_configs, to_evaluate_config
from ashare_autotune.out_of_time import run_evaluation

register_inference_configs()
# Absolute: Hydra resolves a relative config_path as a package path when the task function's
# module is imported rather than run as __main__ (as here, behind ashare_autotune.evaluate).
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Evaluate the model out of time, log the run and print the table; returns precision."""
    result = run_evaluation(to_evaluate_config(cfg))
    print(result.table)
    print(f"logged to MLflow run {result.run_id}")
    return result.metrics["oot_precision"]
