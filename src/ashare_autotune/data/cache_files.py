"""Cache files shared by the downloaded sources: atomic parquet writes and one lock per cache.

A file is written under a temporary name and renamed, so a reader (or a later run after a crash)
never sees half of it. A cache directory is updated by one process at a time: the others wait
on its lock file, then find the days already there and make no call for them. A run reading the
cache holds the same lock shared, so an update waits for it (and it for an update).
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
from filelock import ReadWriteLock, Timeout

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


def _open_lock(root: Path) -> ReadWriteLock:
    """The cache's reader/writer lock (a small SQLite file: one writer or many readers)."""
    root.mkdir(parents=True, exist_ok=True)
    # One instance per use: holders in threads of one process then exclude each other too.
    return ReadWriteLock(root / LOCK_NAME, is_singleton=False)


@contextmanager
def _hold(root: Path, write: bool, waiting: str) -> Iterator[None]:
    lock = _open_lock(root)
    acquire = lock.acquire_write if write else lock.acquire_read
    try:
        try:
            acquire(timeout=0)
        except Timeout:
            log.warning(waiting, root, root / LOCK_NAME)
            acquire()
        yield
    finally:
        lock.close()  # releases the hold (if any) and the lock's connection


@contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Hold the cache's lock alone while updating it: a second updater and every reader wait.

    Args:
        root: the cache directory (created if absent).
    """
    with _hold(
        root,
        write=True,
        waiting="another process is updating the cache %s (lock file %s): waiting for it to "
        "finish",
    ):
        yield


@contextmanager
def cache_read_lock(root: Path) -> Iterator[None]:
    """Hold the cache's lock shared while reading it: other readers go on, an update waits, so a
    run never reads some files before an update and others after it.

    Args:
        root: the cache directory (created if absent).
    """
    with _hold(
        root,
        write=False,
        waiting="another process is updating the cache %s (lock file %s): waiting for it to "
        "finish before reading",
    ):
        yield
