"""The schema of `fetch_data` (conf/fetch_data.yaml): a downloaded source's `data` group and an
optional second source to compare its returns with."""

from __future__ import annotations

from dataclasses import dataclass, field

from ashare_autotune.config.choices import DOWNLOADED_SOURCES, DataSource, check
from ashare_autotune.config.schema import DataConfig


@dataclass
class FetchConfig:
    """conf/fetch_data.yaml: the `data` group (tushare, baostock or akshare) and `check`."""

    data: DataConfig = field(default_factory=DataConfig)
    check: str | None = None  # another downloaded source: compare daily returns with it

    def __post_init__(self) -> None:
        names = ", ".join(f"data={s}" for s in DOWNLOADED_SOURCES)
        check(
            self.data.source in DOWNLOADED_SOURCES,
            "data.source",
            str(self.data.source),
            f"fetch_data downloads from a service; use {names}",
        )
        if self.check is not None:
            ok = self.check in DOWNLOADED_SOURCES and self.check != self.data.source
            choices = ", ".join(DOWNLOADED_SOURCES)
            check(ok, "check", self.check, f"must be another of {choices}")
            self.check = DataSource(self.check)
