"""The index an `excess` label subtracts (`label.benchmark`), from the market's data source."""

from __future__ import annotations

import pandas as pd

from ashare_autotune.config.schema import DataConfig, LabelConfig
from ashare_autotune.data.benchmark import load_benchmark
from ashare_autotune.data.market import Market


def label_benchmark(cfg: DataConfig, label: LabelConfig, market: Market) -> pd.DataFrame | None:
    """The bars (trade_date, close) of `label.benchmark` for an `excess` label, None otherwise.

    Args:
        cfg: the `data` group the market was loaded with.
        label: the label definition.
        market: the loaded market (its own index is used when it is the one named).

    Raises:
        ConfigError: naming `label.benchmark` when the data has no bar of that index.
    """
    if label.kind != "excess":
        return None
    if label.benchmark == cfg.index_code:
        return market.index
    return load_benchmark(cfg, market, label.benchmark, key="label.benchmark")
