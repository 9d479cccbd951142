"""Strict reading of a service's answer: named columns present, text parsed as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ashare_autotune.errors import DataError


def require_source_columns(frame: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    """Raise `DataError` naming the columns a service's answer lacks (an empty answer passes).

    Args:
        frame: the answer.
        columns: the columns the conversion reads.
        where: the call, named in the error.
    """
    if frame.empty and not len(frame.columns):
        return
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: answer lacks column(s) {missing}; found {list(frame.columns)}")


def parse_numbers(frame: pd.DataFrame, columns: tuple[str, ...], where: str) -> pd.DataFrame:
    """The given columns as float64; empty text is missing, other text is a `DataError`.

    Args:
        frame: the answer (text or numbers).
        columns: the columns to parse (absent ones are skipped).
        where: the call, named in the error.
    """
    out = pd.DataFrame(index=frame.index)
    for col in columns:
        if col not in frame.columns:
            continue
        raw = frame[col]
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        values = pd.to_numeric(raw.where(~blank), errors="coerce")
        bad = values.isna() & ~blank
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{where}: column '{col}' is not numeric, e.g. {raw.iloc[pos]!r} at row {pos}"
            )
        out[col] = values.astype(np.float64)
    return out
