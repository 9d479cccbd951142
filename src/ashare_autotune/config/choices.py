"""The choice fields' Enums and the checks the schemas' `__post_init__` run.

A choice field is a string to Hydra and a `StrEnum` member once its schema's `__post_init__`
ran `choose`, so a wrong value is the project's one-line `ConfigError` naming the key and the
choices, like every other bad value. A `StrEnum` member equals, prints and serialises as its
string, so logged params and the study fingerprint read as before.
"""

from __future__ import annotations

import calendar
from enum import StrEnum
from typing import Any, TypeVar

from ashare_autotune.errors import ConfigError

E = TypeVar("E", bound=StrEnum)

# Fixed by the project: the threshold step handles the class balance, the matrices the bins.
FIXED_PARAMS = ("scale_pos_weight", "is_unbalance", "max_bin", "tree_method", "objective")
# What `registry.promotion_metrics` may compare (all higher-is-better): validation metrics
# only, because choosing the champion is a choice and nothing is chosen on test. Each is logged
# for every run (`evaluation.metrics.classification_metrics`, `evaluation.signal`).
PROMOTION_METRICS = tuple(f"val_{m}" for m in ("precision", "recall", "auc", "f1"))
PROMOTION_METRICS += ("val_rank_ic_mean", "val_topk_precision_mean")
# the validation backtest after costs (`backtest.enabled=true`)
PROMOTION_METRICS += ("val_bt_information_ratio", "val_bt_excess_return", "val_bt_sharpe")
# ... and against the benchmark held at the account's own exposure (cash cannot flatter them)
PROMOTION_METRICS += ("val_bt_excess_return_exposure", "val_bt_information_ratio_exposure")
# a rolling retrain's stitched record before the promoted model's own step (`rolling.report`)
PROMOTION_METRICS += tuple(
    f"val_roll_{m}"
    for m in ("rank_ic_mean", "topk_precision_mean", "pick_precision", "bt_excess_return_exposure")
)


class DataSource(StrEnum):
    """Where the bars come from."""

    synthetic = "synthetic"
    files = "files"
    tushare = "tushare"
    baostock = "baostock"
    akshare = "akshare"


# Sources downloaded through a local cache (fetch_data updates them).
DOWNLOADED_SOURCES = (DataSource.tushare, DataSource.baostock, DataSource.akshare)


class Adjust(StrEnum):
    """Tushare price adjustment: forward (to data.end), backward, or raw prices."""

    qfq = "qfq"
    hfq = "hfq"
    none = "none"


class PicksRule(StrEnum):
    """How an ensemble's picks are made (`model.picks`): by its day-rank blend, or filtered by
    its classifier's probability at the threshold and ordered by its ranker."""

    blend = "blend"
    filter_then_rank = "filter_then_rank"


class Missing(StrEnum):
    """How XGBoost sees a missing (NaN) feature (`model.missing`): as `MISSING_FILL`, below
    every value (a dense matrix), or as missing (XGBoost's learned default direction)."""

    fill = "fill"
    native = "native"


class TargetNorm(StrEnum):
    """A regression target's per-day normalisation (`model.target_norm`)."""

    none = "none"
    rank = "rank"
    zscore = "zscore"


class LabelEntry(StrEnum):
    """The price a signal of day T buys at: T+1's open (tradable) or T's close."""

    next_open = "next_open"
    close = "close"


class SplitKind(StrEnum):
    """One chronological split, or rolling walk-forward windows."""

    single = "single"
    walk_forward = "walk_forward"


class Pruner(StrEnum):
    """Optuna pruner of unpromising trials."""

    none = "none"
    median = "median"
    hyperband = "hyperband"


class TuningMode(StrEnum):
    """all: run the study, then threshold + register; worker: more trials in a shared study,
    no registration; finalize: no trials, threshold + register from the study's best."""

    all = "all"
    worker = "worker"
    finalize = "finalize"


class ParamType(StrEnum):
    """How one search-space dimension is sampled."""

    float = "float"
    int = "int"
    categorical = "categorical"


class LabelKind(StrEnum):
    """The label design (`modelling.label_designs`): max close reaches the gain, the gain comes
    before the stop-loss, or the gain over the benchmark index."""

    touch = "touch"
    barrier = "barrier"
    excess = "excess"


class FeatureSet(StrEnum):
    """A named feature set (`modelling.feature_sets`); full is every other set."""

    basic = "basic"
    alpha158 = "alpha158"
    ashare = "ashare"
    full = "full"


class TuningMetric(StrEnum):
    """The study's objective on validation: AUC, per-day top-k precision / Rank IC over the
    day's candidates averaged over days, or the validation backtest's information ratio."""

    auc = "auc"
    topk_precision = "topk_precision"
    rank_ic = "rank_ic"
    bt_information_ratio = "bt_information_ratio"


class PicksFormat(StrEnum):
    """The file format of the daily picks."""

    csv = "csv"
    parquet = "parquet"


def check(ok: bool, key: str, value: Any, why: str) -> None:
    """Raise `ConfigError` "config key '<key>'=<value>: <why>" unless `ok`."""
    if not ok:
        raise ConfigError(f"config key '{key}'={value!r}: {why}")


def choose(enum: type[E], value: Any, key: str) -> E:
    """`value` as a member of `enum`; a `ConfigError` naming the key and the choices if none."""
    names = [m.value for m in enum]
    check(str(value) in names, key, str(value), f"must be {', '.join(names[:-1])} or {names[-1]}")
    return enum(str(value))


def check_date(key: str, value: str | None) -> None:
    """None, or a calendar date written YYYYMMDD (20180230 is refused: February has no 30th)."""
    ok = value is None or (len(str(value)) == 8 and str(value).isdigit())
    check(ok, key, value, "must be a date written YYYYMMDD")
    if value is not None:
        year, month, day = int(str(value)[:4]), int(str(value)[4:6]), int(str(value)[6:])
        check(1 <= month <= 12, key, value, f"is not a calendar date: there is no month {month}")
        days = calendar.monthrange(max(year, 1), month)[1]
        why = f"is not a calendar date: {year:04d}-{month:02d} has {days} days"
        check(1 <= day <= days, key, value, why)


def check_window(start: str | None, end: str | None) -> None:
    """`start` and `end` are None or YYYYMMDD dates, and `start` is not after `end`."""
    check_date("start", start)
    check_date("end", end)
    if start and end:
        check(start <= end, "start", start, f"is after end={end!r}")
