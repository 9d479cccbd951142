"""Hydra entry point: `python -m ashare_autotune.rolling [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.hydra_job import hydra_tags, sweep_run_name
from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_schema
from ashare_autotune.config.rolling import RollingAppConfig
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.runtime import settle_job_imports

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="rolling_app")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Refit on the schedule, judge the stitched record, register the latest window's model;
    returns the record's mean daily Rank IC (for sweeps)."""
    app = to_schema(cfg, RollingAppConfig)
    # the job's modules (mlflow, the models, ~3 CPU-s) load once the configuration is checked
    from ashare_autotune.data.synthetic import data_caveat
    from ashare_autotune.jobs.rolling.job import run_rolling

    settle_job_imports()
    tags = hydra_tags()
    sweep = None
    if "hydra_sweep_dir" in tags:  # a `-m` sweep: one A/B table across its jobs
        name = sweep_run_name(HydraConfig.get().overrides.task, tags["hydra_job"])
        app.mlflow.run_name = app.mlflow.run_name or name
        sweep = (Path(tags["hydra_sweep_dir"]), name)
    yaml = OmegaConf.to_yaml(cfg, resolve=True)
    out = run_rolling(app, config_yaml=yaml, run_tags=tags, sweep=sweep)
    m = out.metrics
    log.info(
        "done: run %s, %d windows; Rank IC %.4f (t %.2f), top-k precision %.4f; record %s; "
        "model version %s",
        out.run_id, out.n_windows, m["roll_rank_ic_mean"], m["roll_rank_ic_t"],
        m["roll_topk_precision_mean"], out.record_path, out.model_version,
    )  # fmt: skip
    log.info("by year:\n%s", out.by_year.to_string(float_format=lambda v: f"{v:.4f}"))
    if not out.returns.empty:
        log.info("returns by year:\n%s", out.returns.to_string(float_format=lambda v: f"{v:+.2%}"))
    if caveat := data_caveat(app.data.source):
        log.warning(caveat)
    return float(m["roll_rank_ic_mean"])


if __name__ == "__main__":
    run_cli(main)
