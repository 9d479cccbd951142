"""Checks of the rows a served model is asked to score, each failing in one line.

Shipped with the model (`code_paths`) and run by `PickModel.predict`, so `mlflow models serve`,
`predict`, `evaluate` and `backtest` refuse the same garbage: a missing feature column (named
first), a column that is not numeric, a column that is NaN in every row, whole numbers where the
model learned fractions (an int-truncated column), and values far from those it was trained on
(other units, e.g. x100).

The distribution checks compare the served rows with a profile of the training rows recorded
in the model's meta.json (`input_profile`, made by `profile_inputs` at training). They need a
cross-section to be meaningful, so they run only on at least `MIN_ROWS` rows (one trading day of
the market is thousands; a request scoring a few rows gets the column and dtype checks only).
The rule reads medians and quantiles (never means) and is loose on purpose, so that a market's
ordinary days, crashes included, pass, and so do market-wide features (one value for every
stock of a day, e.g. the share of stocks at limit-down: 0.79 on 2020-02-03 against a training
IQR of 0.005):
- shift: the served median lies more than `SHIFT_IQRS` training IQRs outside the training
  values' 0.1%..99.9% range (a column with a training IQR of 0: that range is the unit);
- spread: the served IQR is more than `SPREAD_RATIO` times the training 0.1%..99.9% range (an
  IQR can exceed the whole range of the data only in other units);
- whole numbers: every served value is whole, not all equal, while under `WHOLE_SHARE` of the
  training values were;
- all NaN: every served value is NaN while under `NAN_SHARE` of training values were.
Measured on the real sample (300 stocks, 192 features, profile of 2015..2019): each of the
776 days of 2020..2023 and the whole period pass.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

MIN_ROWS = 20  # rows needed before a served column's distribution is judged
SHIFT_IQRS = 10.0  # served median this many training IQRs outside the training range: refused
SPREAD_RATIO = 2.0  # served IQR this many times the training 0.1%..99.9% range: refused
WHOLE_SHARE = 0.5  # a column with fewer whole training values must not arrive as whole numbers
NAN_SHARE = 0.5  # a column with fewer NaN training values must not arrive all NaN
PROFILE_ROWS = 20_000  # training rows profiled (evenly spaced): quantiles need no more
SHOWN = 5  # column names shown in a message


class InputError(ValueError):
    """The rows given to the model cannot be scored as they are; the message is one line."""


def profile_inputs(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Per feature column of training rows: median, quartiles and NaN and whole-number shares.

    Args:
        frame: training feature rows (numeric columns; a sample of `PROFILE_ROWS` is plenty).

    Returns:
        {column: {"median", "q25", "q75", "lo", "hi", "nan_share", "whole_share"}} (lo, hi:
        the 0.1% and 99.9% quantiles), JSON-able (None for a statistic of a column with no
        value).
    """
    x = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, q25, median, q75, hi = _quantiles(x, PROFILE_QUANTILES)
    finite = np.isfinite(x)
    n_finite = finite.sum(axis=0)
    whole = (finite & (np.round(x) == x)).sum(axis=0) / np.maximum(n_finite, 1)
    nan_share = 1.0 - n_finite / max(len(x), 1)
    stats = {"median": median, "q25": q25, "q75": q75, "lo": lo, "hi": hi}
    stats["nan_share"] = nan_share
    stats["whole_share"] = whole
    return {
        str(col): {k: _json_float(v[i]) for k, v in stats.items()}
        for i, col in enumerate(frame.columns)
    }


def sample_rows(n_rows: int, n_max: int = PROFILE_ROWS) -> np.ndarray:
    """At most `n_max` evenly spaced positions in 0..n_rows-1 (all when fewer)."""
    if n_rows <= n_max:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, n_max).round().astype(np.int64))


def check_input(
    frame: pd.DataFrame,
    features: list[str],
    profile: dict[str, dict[str, float | None]] | None = None,
) -> None:
    """Raise `InputError` (one line) when `frame` cannot be scored by a model of `features`.

    Args:
        frame: the rows to score (extra columns are ignored).
        features: the model's feature columns.
        profile: the training profile (`profile_inputs`); None: columns and dtypes only.

    Raises:
        InputError: the first failed check, naming the column, the value and the rule.
    """
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(
            f"model input is missing feature column(s) {_names(missing)} ({len(missing)} of "
            f"the model's {len(features)})"
        )
    bad = [c for c in features if not _numeric(frame[c])]
    if bad:
        raise InputError(
            f"model input column {bad[0]!r} has dtype {frame[bad[0]].dtype}: feature columns "
            f"must be numbers{_more(bad)}"
        )
    if profile and len(frame) >= MIN_ROWS:  # a large frame (a year of days): a sample of rows
        _check_distribution(frame.iloc[sample_rows(len(frame))], features, profile)


def _check_distribution(
    x: pd.DataFrame, features: list[str], profile: dict[str, dict[str, float | None]]
) -> None:
    """The all-NaN, whole-number, shift and spread checks against the training profile."""
    known = [c for c in features if c in profile]
    values = x[known].to_numpy(dtype=np.float64, na_value=np.nan)
    train = {k: np.array([_nan(profile[c].get(k)) for c in known]) for k in _STATS}
    finite = np.isfinite(values)
    n_finite = finite.sum(axis=0)
    n = len(values)
    all_nan = (n_finite == 0) & (train["nan_share"] < NAN_SHARE)
    _raise_first(known, all_nan, lambda i: (
        f"is NaN in all {n} rows (NaN in {train['nan_share'][i]:.1%} of training rows)"
    ))  # fmt: skip
    low, q25, median, q75, high = _quantiles(values, SERVED_QUANTILES)
    whole = (finite & (np.round(values) == values)).sum(axis=0)
    truncated = (n_finite >= MIN_ROWS) & (whole == n_finite) & (high > low)
    _raise_first(known, truncated & (train["whole_share"] < WHOLE_SHARE), lambda i: (
        f"holds whole numbers only ({n_finite[i]} values) but {train['whole_share'][i]:.1%} of "
        "its training values were whole: truncated to integers?"
    ))  # fmt: skip
    iqr, span = train["q75"] - train["q25"], train["hi"] - train["lo"]
    scale = np.where(iqr > 0, iqr, span)  # a flag-like column: its training range
    judged = (scale > 0) & (n_finite >= MIN_ROWS)
    with np.errstate(invalid="ignore", divide="ignore"):
        beyond = np.maximum(train["lo"] - median, median - train["hi"]) / scale
        spread = (q75 - q25) / span
    _raise_first(known, judged & (beyond > SHIFT_IQRS), lambda i: (
        f"median {median[i]:.6g} is {beyond[i]:.0f} training IQRs outside the training values' "
        f"0.1%..99.9% range {train['lo'][i]:.6g}..{train['hi'][i]:.6g} (IQR {scale[i]:.6g}; "
        f"refused beyond {SHIFT_IQRS:.0f}): other units (e.g. x100)?"
    ))  # fmt: skip
    _raise_first(known, judged & (span > 0) & (spread > SPREAD_RATIO), lambda i: (
        f"interquartile range {q75[i] - q25[i]:.6g} is {spread[i]:.0f}x the training values' "
        f"0.1%..99.9% range {span[i]:.6g} (refused beyond {SPREAD_RATIO:.0f}x): other units "
        "(e.g. x100)?"
    ))  # fmt: skip


_STATS = ("median", "q25", "q75", "lo", "hi", "nan_share", "whole_share")
PROFILE_QUANTILES = (0.001, 0.25, 0.5, 0.75, 0.999)
SERVED_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _raise_first(columns: list[str], failed: np.ndarray, why: Any) -> None:
    hits = np.flatnonzero(failed)
    if len(hits):
        names = [columns[i] for i in hits]
        raise InputError(f"model input column {names[0]!r} {why(hits[0])}{_more(names)}")


def _quantiles(x: np.ndarray, levels: tuple[float, ...]) -> list[np.ndarray]:
    """Column quantiles at `levels` ignoring NaN (NaN for a column with no value)."""
    if x.size == 0:
        return [np.full(x.shape[1], np.nan) for _ in levels]
    with warnings.catch_warnings():  # an all-NaN column: NaN, said by the caller's checks
        warnings.simplefilter("ignore", RuntimeWarning)
        x = np.where(np.isfinite(x), x, np.nan)
        return list(np.nanquantile(x, list(levels), axis=0))


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:SHOWN])
    return shown + (", ..." if len(columns) > SHOWN else "")


def _more(columns: list[str]) -> str:
    extra = len(columns) - 1
    return f" ({extra} more column(s) fail this check: {_names(columns[1:])})" if extra else ""


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
