"""Hydra entry point: `python -m ashare_autotune.fetch_data [data=tushare|baostock|akshare]
[data.end=YYYYMMDD] [check=<other source>]` adds the missing days to the source's cache (the
incremental update; training reads the same cache) and, with `check`, compares the two sources'
daily returns over their common stock-days."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import hydra
from hydra import compose
from omegaconf import DictConfig

from ashare_autotune.config.fetch import FetchConfig
from ashare_autotune.config.loading import register_configs, reject_unknown_keys, to_fetch_config
from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.cache_files import cache_lock
from ashare_autotune.data.compare import compare_returns
from ashare_autotune.data.free_sources import update_free_source
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.per_stock import PerStockReport
from ashare_autotune.data.tushare import UpdateReport, update_cache
from ashare_autotune.data.tushare_client import TushareClient
from ashare_autotune.errors import report_io_faults, report_user_errors, run_cli

log = logging.getLogger(__name__)
# What `check` copies from the fetched source so both describe the same stocks and days.
SHARED_KEYS = ("start", "end", "index_code", "n_stocks", "ts_codes", "seed", "adjust", "progress")


register_configs()


def run_fetch(
    cfg: FetchConfig, client: TushareClient | None = None
) -> UpdateReport | PerStockReport:
    """Bring the source's cache up to data.end (default today) under its lock.

    Args:
        cfg: the validated configuration.
        client: the Tushare client (default: token from TUSHARE_TOKEN or .env).

    Returns:
        What the update did.
    """
    if cfg.data.source != "tushare":
        return update_free_source(cfg.data)
    cache = TushareCache(Path(cfg.data.cache_dir).expanduser())
    with cache_lock(cache.root):
        return update_cache(cfg.data, client or TushareClient.from_config(cfg.data), cache)


def summary(report: UpdateReport | PerStockReport, cache_dir: str) -> str:
    """One line for the user: the days now cached and what this run fetched."""
    if isinstance(report, PerStockReport):
        days = report.days
        span = f"{days[0]}..{days[-1]}" if days else "nothing"
        return (
            f"{report.source} cache {cache_dir}: {len(days)} trading days {span}, "
            f"{len(report.codes)} stocks; fetched {len(report.fetched)} stock(s) with "
            f"{report.calls} call(s)"
        )
    days = report.available_days
    span = f"{days[0]}..{days[-1]}" if days else "nothing"
    text = (
        f"Tushare cache {cache_dir}: {len(days)} trading days {span}; "
        f"fetched {len(report.fetched)} new day(s) with {report.calls} API call(s)"
    )
    if report.unavailable:
        text += f"; not published yet: {', '.join(report.unavailable)}"
    return text


def check_config(data: DataConfig, other: DataConfig) -> DataConfig:
    """The other source's `data` group (its own cache and options) over the same stocks/days."""
    return replace(other, **{k: getattr(data, k) for k in SHARED_KEYS})


def run_check(data: DataConfig, other: DataConfig) -> list[str]:
    """Load both sources (updating their caches) and compare their daily returns.

    Returns:
        The report lines.
    """
    a, b = load_market(data), load_market(other)
    return compare_returns(a.daily, b.daily, data.source, other.source).lines()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="fetch_data")
@reject_unknown_keys
@report_io_faults
@report_user_errors
def main(cfg: DictConfig) -> None:
    """Download the missing days into the cache and print a one-line summary."""
    app = to_fetch_config(cfg)
    report = run_fetch(app)
    print(summary(report, app.data.cache_dir))
    if app.check:
        other = to_fetch_config(compose("fetch_data", overrides=[f"data={app.check}"])).data
        for line in run_check(app.data, check_config(app.data, other)):
            print(line)


if __name__ == "__main__":
    run_cli(main)
