"""Hydra entry point: `python -m ashare_autotune.predict [overrides]` writes the day's picks."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_predict_config
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.runtime import settle_job_imports

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="predict")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> None:
    """Score the latest (or given) trading day and write the ranked picks table."""
    app = to_predict_config(cfg)
    # the job's modules (mlflow, the models, ~3 CPU-s) load once the configuration is checked
    from ashare_autotune.data.synthetic import data_caveat
    from ashare_autotune.jobs.picks import run_predict

    settle_job_imports()
    result = run_predict(app)
    picks = result.picks
    shown = picks.loc[picks["pick"]].head(20) if picks["pick"].any() else picks.head(5)
    print(shown.drop(columns=["model_uri"]).to_string(index=False))
    print(f"{int(picks['pick'].sum())} picks on {result.trade_date} -> {result.path}")
    if caveat := data_caveat(cfg.data.source):
        print(caveat)


if __name__ == "__main__":
    run_cli(main)
