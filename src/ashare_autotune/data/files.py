"""Load Tushare-style daily bars from parquet or CSV files (one file or a directory)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.schema import (
    FILE_COLUMN,
    check_index_covers,
    log_suspensions,
    normalize_basic,
    normalize_daily,
    normalize_index,
)
from ashare_autotune.errors import ConfigError, DataError

SUFFIXES = (".parquet", ".pq", ".csv")
CODE_NAME = re.compile(r"\d{6}\.(SH|SZ|BJ)", re.IGNORECASE)


def read_table(path: str | Path, key: str) -> pd.DataFrame:
    """Read a parquet/CSV file, or every such file in a directory, as one frame.

    Args:
        path: a file or a directory.
        key: the config key the path came from (named in errors).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"config key '{key}': file not found: {p}")
    if not p.is_dir():
        return _with_rows(_read_one(p), f"{p} (a header only)", key)
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES)
    if not files:
        raise DataError(f"config key '{key}': no .parquet or .csv files in directory {p}")
    return _with_rows(_read_directory(files), f"any file of directory {p}", key)


def _with_rows(frame: pd.DataFrame, where: str, key: str) -> pd.DataFrame:
    """`frame`, unless it has no row: a header-only file is a one-line `DataError`."""
    if frame.empty:
        raise DataError(f"config key '{key}': no rows in {where}")
    return frame


def _read_directory(files: list[Path]) -> pd.DataFrame:
    """One frame from per-stock files, each row tagged with its file (named in errors).

    A file without a ts_code column takes it from its name (e.g. 000001.SZ.csv).
    """
    frames = []
    for f in files:
        frame = _read_one(f)
        if "ts_code" not in frame.columns and CODE_NAME.fullmatch(f.stem):
            frame.insert(0, "ts_code", f.stem.upper())
        frames.append(frame)
    columns = set().union(*(fr.columns for fr in frames))
    for f, frame in zip(files, frames, strict=True):
        lacking = sorted(columns - set(frame.columns))
        if lacking:
            raise DataError(
                f"{f}: missing column(s) {lacking} that other files in {f.parent} have"
            )
    out = pd.concat(frames, ignore_index=True)
    sizes = [len(fr) for fr in frames]
    out[FILE_COLUMN] = pd.Categorical.from_codes(
        np.repeat(np.arange(len(files)), sizes), categories=[str(f) for f in files]
    )
    return out


def _read_one(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(
                path, dtype={"ts_code": str, "trade_date": str, "symbol": str, "list_date": str}
            )
    except Exception as exc:  # the reader's own message is the useful part
        raise DataError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .parquet or .csv")


def load_files(cfg: DataConfig) -> Market:
    """Load daily bars, the index and optional stock_basic from the configured paths."""
    if not cfg.daily:
        raise ConfigError("config key 'data.daily' is required with data=files")
    if not cfg.index:
        raise ConfigError("config key 'data.index' is required with data=files")
    daily = normalize_daily(read_table(cfg.daily, "data.daily"), str(cfg.daily))
    index = normalize_index(read_table(cfg.index, "data.index"), str(cfg.index), cfg.index_code)
    basic_raw = read_table(cfg.stock_basic, "data.stock_basic") if cfg.stock_basic else None
    basic = normalize_basic(basic_raw, daily["ts_code"], str(cfg.stock_basic))
    check_index_covers(daily, index, str(cfg.index))
    log_suspensions(daily, index, str(cfg.daily))
    return Market(daily, index, basic, source=f"files:{cfg.daily}")
