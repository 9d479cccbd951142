"""Hydra entry point: `python -m ashare_autotune.fetch_data [data.end=YYYYMMDD]` adds the missing
trading days to the Tushare cache (the incremental update; training reads the same cache)."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_fetch_config
from ashare_autotune.config.schema import FetchConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.tushare import UpdateReport, update_cache
from ashare_autotune.data.tushare_client import TushareClient
from ashare_autotune.errors import report_user_errors, run_cli

log = logging.getLogger(__name__)


register_configs()


def run_fetch(cfg: FetchConfig, client: TushareClient | None = None) -> UpdateReport:
    """Bring the Tushare cache up to data.end (default today); returns what was done.

    Args:
        cfg: the validated configuration.
        client: the API client (default: token from TUSHARE_TOKEN or .env).
    """
    cache = TushareCache(Path(cfg.data.cache_dir).expanduser())
    return update_cache(cfg.data, client or TushareClient.from_config(cfg.data), cache)


def summary(report: UpdateReport, cache_dir: str) -> str:
    """One line for the user: the days now cached and what this run fetched."""
    days = report.available_days
    span = f"{days[0]}..{days[-1]}" if days else "nothing"
    text = (
        f"Tushare cache {cache_dir}: {len(days)} trading days {span}; "
        f"fetched {len(report.fetched)} new day(s) with {report.calls} API call(s)"
    )
    if report.unavailable:
        text += f"; not published yet: {', '.join(report.unavailable)}"
    return text


@hydra.main(version_base="1.3", config_path="../../conf", config_name="fetch_data")
@reject_unknown_keys
@report_user_errors
def main(cfg: DictConfig) -> None:
    """Download the missing trading days into the cache and print a one-line summary."""
    app = to_fetch_config(cfg)
    report = run_fetch(app)
    print(summary(report, app.data.cache_dir))


if __name__ == "__main__":
    run_cli(main)
