"""Hydra entry point: `python -m ashare_autotune.train [overrides]` (and `-m` sweeps)."""

from __future__ import annotations

import logging
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config.hydra_job import hydra_tags, sweep_run_name
from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_app_config
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli
from ashare_autotune.runtime import settle_job_imports

log = logging.getLogger(__name__)
register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> float:
    """Train, tune, pick the threshold and register; returns test precision for sweeps."""
    app = to_app_config(cfg)
    # the job's modules (mlflow, the models, ~3 CPU-s) load once the configuration is checked
    from ashare_autotune.data.synthetic import data_caveat
    from ashare_autotune.jobs.pipeline import run_training
    from ashare_autotune.tracking.experiment import SWEEP_NAME_TAG
    from ashare_autotune.tracking.summary import Outcome, training_summary

    settle_job_imports()
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    if app.tuning.mode == "worker":
        return _work(app, config_yaml)
    tags = hydra_tags()
    if tags.get("hydra_job"):  # multirun: each job's run is named by its overrides too
        tags[SWEEP_NAME_TAG] = sweep_run_name(HydraConfig.get().overrides.task, tags["hydra_job"])
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
    alias = app.registry.champion_alias if result.champion else app.registry.challenger_alias
    outcome = Outcome(
        app.registry.model_name, result.model_version, result.promotion_reason, alias
    )
    uri = app.mlflow.tracking_uri
    log.info(
        "%s", training_summary(result.run_id, result.best_params, outcome, market_args(cfg), uri)
    )
    return result.metrics["test_precision"]


def market_args(cfg: DictConfig) -> list[str]:
    """The overrides that load this run's market in `predict` and `evaluate` (their data group
    is training's): the data keys this run set otherwise, but `data.end` (they score the days
    after it)."""
    default = hydra.compose(config_name="predict", overrides=[f"data={cfg.data.source}"]).data
    args = []
    for key, value in cfg.data.items():
        if key != "end" and value != default.get(key):
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            args.append(f"data.{key}={_override_value(shown)}")
    return args


def _override_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, one table comparing its jobs."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write `<sweep dir>/sweep_summary.md` from the jobs' runs, log it and attach it to
        each job's parent run."""
        from ashare_autotune.tracking.runs import set_tracking_uri  # mlflow: not before needed
        from ashare_autotune.tracking.sweep_report import write_sweep_table

        set_tracking_uri(config.mlflow.tracking_uri)
        write_sweep_table(config.mlflow.experiment_name, str(config.hydra.sweep.dir))


def _work(app: AppConfig, config_yaml: str) -> float:
    from ashare_autotune.jobs.pipeline import run_worker  # imported by `main` already

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
