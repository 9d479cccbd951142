"""Hydra entry point: `python -m ashare_autotune.rolling [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_schema
from ashare_autotune.config.rolling import RollingAppConfig
from ashare_autotune.data.synthetic import data_caveat
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.rolling.job import run_rolling

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../../conf", config_name="rolling_app")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Refit on the schedule, judge the stitched record, register the latest window's model;
    returns the record's mean daily Rank IC (for sweeps)."""
    app = to_schema(cfg, RollingAppConfig)
    out = run_rolling(app, config_yaml=OmegaConf.to_yaml(cfg, resolve=True))
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
