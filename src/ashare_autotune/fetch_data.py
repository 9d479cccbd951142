"""Hydra entry point: `python -m ashare_autotune.fetch_data [data=tushare|baostock|akshare]
[data.end=YYYYMMDD] [check=<other source>]` adds the missing days to the source's cache (the
incremental update; training reads the same cache) and, with `check`, compares the two sources'
daily returns over their common stock-days."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ashare_autotune.config import DOWNLOADED_SOURCES, DataConfig, validate_data
from ashare_autotune.data.cache import cache_lock
from ashare_autotune.data.per_stock import PerStockReport
from ashare_autotune.data.tushare import TushareCache, TushareClient, UpdateReport, update_cache
from ashare_autotune.errors import ConfigError, report_user_errors, run_cli

log = logging.getLogger(__name__)
# What `check` copies from the fetched source so both describe the same stocks and days.
SHARED_KEYS = ("start", "end", "index_code", "n_stocks", "ts_codes", "seed", "adjust", "progress")


@dataclass
class FetchConfig:
    """conf/fetch_data.yaml: the `data` group and an optional source to check it against."""

    data: DataConfig = field(default_factory=DataConfig)
    check: str | None = None  # tushare | baostock | akshare: compare returns with this source


ConfigStore.instance().store(name="fetch_schema", node=FetchConfig)


def to_fetch_config(cfg: DictConfig) -> FetchConfig:
    """Convert and validate a composed conf/fetch_data.yaml."""
    out = OmegaConf.to_object(cfg)
    if not isinstance(out, FetchConfig):
        raise ConfigError("configuration does not follow the FetchConfig schema")
    validate_data(out.data)
    choices = ", ".join(f"data={s}" for s in DOWNLOADED_SOURCES)
    if out.data.source not in DOWNLOADED_SOURCES:
        raise ConfigError(
            f"config key 'data.source'={out.data.source!r}: fetch_data downloads from a "
            f"service; use {choices}"
        )
    if out.check is not None and (
        out.check not in DOWNLOADED_SOURCES or out.check == out.data.source
    ):
        raise ConfigError(
            f"config key 'check'={out.check!r}: must be another of {', '.join(DOWNLOADED_SOURCES)}"
        )
    return out


def run_fetch(
    cfg: FetchConfig, client: TushareClient | None = None
) -> UpdateReport | PerStockReport:
    """Bring the source's cache up to data.end (default today) under its lock.

    Args:
        cfg: the validated configuration.
        client: the Tushare client (default: token from TUSHARE_TOKEN or .env).
    """
    if cfg.data.source != "tushare":
        from ashare_autotune.data.free_sources import update_free_source

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
    from ashare_autotune.data.compare import compare_returns
    from ashare_autotune.data.market import load_market

    a, b = load_market(data), load_market(other)
    return compare_returns(a.daily, b.daily, data.source, other.source).lines()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="fetch_data")
@report_user_errors
def main(cfg: DictConfig) -> None:
    """Download the missing days into the cache and print a one-line summary."""
    app = to_fetch_config(cfg)
    report = run_fetch(app)
    print(summary(report, app.data.cache_dir))
    if app.check:
        from hydra import compose

        other = to_fetch_config(compose("fetch_data", overrides=[f"data={app.check}"])).data
        for line in run_check(app.data, check_config(app.data, other)):
            print(line)


if __name__ == "__main__":
    run_cli(main)
