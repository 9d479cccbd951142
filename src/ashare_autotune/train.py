"""Hydra entry point: `python -m ashare_autotune.train [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import errno
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.schema import AppConfig, register_configs, to_app_config
from ashare_autotune.errors import report_user_errors, run_cli
from ashare_autotune.pipeline import run_training, run_worker

log = logging.getLogger(__name__)
register_configs()


def report_disk_full(func: Callable[..., float]) -> Callable[..., float]:
    """A full disk (an OSError ENOSPC, SQLite's "database or disk is full") as one line, exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> float:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            where = disk_full(exc)
            if where is None:
                raise
            print(
                f"error: disk full ({where}). Finished trials are kept in the study database; "
                "free space and run the same command again to resume",
                file=sys.stderr,
            )
            sys.exit(2)

    return wrapper


def disk_full(exc: BaseException | None) -> str | None:
    """What says the disk is full in `exc` or an error it was raised from, else None."""
    for _ in range(20):
        if exc is None:
            return None
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f"{exc.strerror}: {exc.filename or 'writing a file'}"
        if "database or disk is full" in str(exc):
            return "SQLite: database or disk is full"
        exc = exc.__cause__ or exc.__context__
    return None


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@report_disk_full
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


def hydra_tags() -> dict[str, str]:
    """The command-line overrides of this job (and its number in a `-m` sweep), as run tags."""
    hc = HydraConfig.get()
    tags = {"hydra_overrides": " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        tags["hydra_job"] = str(hc.job.num)
        tags["hydra_sweep_dir"] = str(hc.sweep.dir)
    return tags


def sweep_run_name(overrides: list[str], job: str) -> str:
    """A readable parent-run name for a sweep job: its overrides, without where it logs to."""
    shown = [o for o in overrides if not o.lstrip("+~").startswith(("mlflow.", "hydra."))]
    return " ".join(shown) or f"job {job}"


if __name__ == "__main__":
    run_cli(main)
