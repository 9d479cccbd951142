"""Cache files shared by the downloaded sources: atomic parquet writes and one lock per cache.

A file is written under a temporary name and renamed, so a reader (or a later run after a crash)
never sees half of it. A cache directory is updated by one process at a time: the others wait
on its lock file, then find the days already there and make no call for them.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from ashare_autotune.errors import DataError

log = logging.getLogger(__name__)

LOCK_NAME = ".update.lock"


def write_table_atomic(
    frame: pd.DataFrame, path: Path, meta: dict[str, str] | None = None, what: str = "cache file"
) -> None:
    """Write a frame as parquet via a hidden temporary file and a rename.

    Args:
        frame: the rows to store.
        path: the final file.
        meta: text key-values kept in the file's schema (e.g. the date range fetched).
        what: the file's kind, named in the disk-full error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if meta:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in meta.items()})
        table = table.replace_schema_metadata(merged)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # no partial file left behind, whatever the failure
        if exc.errno == errno.ENOSPC:
            raise DataError(
                f"disk full while writing the {what} {path}: the files already cached are "
                "kept; free space and run the same command again to resume"
            ) from None
        raise


def read_meta(path: Path) -> dict[str, str]:
    """The text key-values stored with `write_table_atomic` (empty when the file is absent)."""
    if not path.exists():
        return {}
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k != b"pandas"}


@contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Hold the cache's lock file while updating it; a second process waits for the first.

    Args:
        root: the cache directory (created if absent).
    """
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning(
            "another process is updating the cache %s (lock file %s): waiting for it to finish",
            root,
            root / LOCK_NAME,
        )
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
