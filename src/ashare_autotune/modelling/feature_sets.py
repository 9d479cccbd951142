"""The model's features by named set (`features` group): basic, alpha158, ashare, full, plus
per-day cross-sectional ranks, built into one float32 block for the rows the job uses.

Memory (whole market, `features=full`: 198 columns): alpha158 depends on each stock's own rows
only, so it runs on chunks of whole stocks and only the kept rows of each chunk are written to
the block; basic, ashare and the ranks compare the stocks of a day, so they run on the whole
panel (18 and 16 columns). A rank is taken over every stock of the day, not only the kept
rows: which rows are kept (a label's horizon, a fillable entry) depends on later bars.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from ashare_autotune.config.features import FeaturesConfig
from ashare_autotune.data.market import Market
from ashare_autotune.errors import ConfigError
from ashare_autotune.modelling import alpha158, ashare_features, features
from ashare_autotune.modelling.limits import limit_flags

RANK_SUFFIX = "_csrank"
SET_ORDER = ("basic", "alpha158", "ashare")  # `full` is all of them, in this order
CHUNK_ROWS = 125_000  # alpha158 rows per chunk of whole stocks (~0.3 GB of working arrays)

FeatureSpec = FeaturesConfig | Sequence[str] | None


def set_names(daily: pd.DataFrame) -> dict[str, list[str]]:
    """Every feature of each set for this data (ashare's daily_basic ones only when present)."""
    return {
        "basic": list(features.FEATURES),
        "alpha158": list(alpha158.ALPHA158),
        "ashare": ashare_features.ashare_feature_names(daily),
    }


def feature_names(spec: FeatureSpec, daily: pd.DataFrame) -> list[str]:
    """The model's feature columns, in order: the sets' features (or `names` among them), then
    the `<name>_csrank` columns (of any set's features).

    Args:
        spec: the `features` group; a list of column names (a model's own, checked); None:
            basic.
        daily: the bars (their columns decide the daily_basic features).

    Raises:
        ConfigError: naming `features.names` or `features.cs_rank` for an unknown feature.
    """
    by_set = set_names(daily)
    known = [n for s in SET_ORDER for n in by_set[s]]
    if not isinstance(spec, FeaturesConfig):
        names = list(spec or by_set["basic"])
        bases = [n.removesuffix(RANK_SUFFIX) for n in names if n.endswith(RANK_SUFFIX)]
        _check_known([n for n in names if not n.endswith(RANK_SUFFIX)], known, "features.names")
        _check_known(bases, known, "features.names")
        return names
    chosen = SET_ORDER if "full" in spec.sets else [s for s in SET_ORDER if s in spec.sets]
    available = [n for s in chosen for n in by_set[s]]
    _check_known(spec.names, available, "features.names")
    _check_known(spec.cs_rank, known, "features.cs_rank")  # a rank of any set's feature
    names = [n for n in available if n in set(spec.names)] if spec.names else available
    return names + [f"{n}{RANK_SUFFIX}" for n in spec.cs_rank]


def build_feature_set(
    market: Market,
    flags: pd.DataFrame | None,
    spec: FeatureSpec,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """The features of a config (or named columns) for the chosen rows of the market.

    Args:
        market: bars sorted by (ts_code, trade_date), index and stock_basic.
        flags: `limits.limit_flags(daily, stock_basic)` (computed here when the ashare set
            needs it and None is given).
        spec: the `features` group, or the feature columns (e.g. a model's), or None: basic.
        rows: boolean mask of the rows to return (default all); every row still feeds the
            rolling windows, the day's cross-sections and the ranks.

    Returns:
        ts_code, trade_date and one float32 column per feature (`feature_names`), in the
        order of `market.daily`'s kept rows, with a fresh 0..n-1 index.
    """
    daily = market.daily
    names = feature_names(spec, daily)
    keep = np.ones(len(daily), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    block = np.empty((len(names), int(keep.sum())), dtype=np.float32)
    for start, chunk in feature_chunks(market, flags, spec, keep):
        block[:, start : start + len(chunk)] = chunk.T
    out = pd.DataFrame(block.T, columns=names, copy=False)  # one float32 block, no copy
    for pos, key in enumerate(features.KEYS):
        out.insert(pos, key, daily[key].array[keep])  # .array keeps ts_code categorical
    return out


def feature_chunks(
    market: Market,
    flags: pd.DataFrame | None,
    spec: FeatureSpec,
    rows: np.ndarray | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[tuple[int, np.ndarray]]:
    """The features of the chosen rows, a chunk of whole stocks at a time: the one feature
    computation behind `build_feature_set` and the on-disk `feature_store`.

    Args:
        market: bars sorted by (ts_code, trade_date), index and stock_basic.
        flags: `limits.limit_flags` (computed here when needed and None is given).
        spec: the `features` group, the feature columns, or None (basic).
        rows: boolean mask of the rows to return (default all).
        chunk_rows: about this many panel rows per chunk (alpha158's working arrays).

    Yields:
        (position of the chunk's first row among the kept rows, row-major float32 block of
        its kept rows x `feature_names`), in the order of `market.daily`.
    """
    daily = market.daily
    names = feature_names(spec, daily)
    keep = np.ones(len(daily), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    panel = _panel_columns(market, flags, names, keep)
    # a ranked alpha158 column was already computed on the whole panel for its rank
    alpha = [n for n in set_names(daily)["alpha158"] if n in set(names) and n not in panel]
    offset = np.r_[0, np.cumsum(keep)]  # kept rows before each row: where a chunk starts
    for span in _stock_chunks(daily, chunk_rows):
        lo, hi = int(offset[span.start]), int(offset[span.stop])
        if hi == lo:
            continue
        part = alpha158.alpha158_features(daily.iloc[span], alpha) if alpha else None
        block = np.empty((hi - lo, len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            if name in panel:
                block[:, j] = panel[name][lo:hi]
            else:  # alpha158, of this chunk's stocks
                block[:, j] = part[name].to_numpy()[keep[span]]
        del part
        yield lo, block


def _panel_columns(
    market: Market, flags: pd.DataFrame | None, names: list[str], keep: np.ndarray
) -> dict[str, np.ndarray]:
    """The kept rows of the features that compare the stocks of a day (basic, ashare, the
    ranks), computed on the whole panel; alpha158's only where a rank needs them."""
    daily = market.daily
    by_set = set_names(daily)
    bases = [n.removesuffix(RANK_SUFFIX) for n in names if n.endswith(RANK_SUFFIX)]
    panel_sets = set(by_set["basic"]) | set(by_set["ashare"])
    wanted = {n for n in names if n in panel_sets} | set(bases)
    whole: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for name, values in _whole_panel(market, flags, wanted):
        if name in bases:
            whole[name] = values
        if name in names:
            out[name] = values[keep]
    if bases:
        ranked = pd.DataFrame(whole, copy=False)
        ranks = ashare_features.cross_sectional_ranks(ranked, bases, daily["trade_date"])
        for base in bases:
            out[base + RANK_SUFFIX] = ranks[base + RANK_SUFFIX].to_numpy()[keep]
    return out


def _whole_panel(
    market: Market, flags: pd.DataFrame | None, wanted: set[str]
) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 values over every row of the panel) for the wanted columns.

    The A-share set first: its working arrays (~1.8 GB on the whole market) then sit on the
    bars alone, not on the basic set's kept columns too (4.1 GB peak the other way round)."""
    daily = market.daily
    by_set = set_names(daily)
    ashare = [n for n in by_set["ashare"] if n in wanted]
    if ashare:
        if flags is None:
            flags = limit_flags(daily, market.stock_basic)
        frame = ashare_features.ashare_features(daily, flags, market.stock_basic)
        yield from ((n, frame[n].to_numpy()) for n in ashare)
        del frame
    basic = [n for n in by_set["basic"] if n in wanted]
    if basic:
        frame = features.build_features(daily, market.index, market.stock_basic, basic)
        yield from ((n, frame[n].to_numpy()) for n in basic)
        del frame
    alpha = [n for n in by_set["alpha158"] if n in wanted]  # ranked alpha158 columns only
    if alpha:
        parts = [alpha158.alpha158_features(daily.iloc[s], alpha) for s in _stock_chunks(daily)]
        frame = pd.concat(parts, ignore_index=True)
        yield from ((n, frame[n].to_numpy()) for n in alpha)
        del frame, parts


def _stock_chunks(daily: pd.DataFrame, size: int = CHUNK_ROWS) -> list[slice]:
    """Row ranges of whole stocks, each about `size` rows or more (a stock is never split)."""
    codes = daily["ts_code"].cat.codes.to_numpy()
    n = len(codes)
    starts = np.r_[np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]), n]
    # the first stock start at or after each multiple of `size`
    cuts = np.unique(starts[np.searchsorted(starts, np.arange(size, n, size))])
    edges = np.unique(np.r_[0, cuts, n])
    return [slice(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _check_known(names: list[str], known: list[str], key: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        shown = known if len(known) <= 40 else [*known[:40], "..."]
        raise ConfigError(f"config key '{key}': unknown feature(s) {unknown}; known: {shown}")
