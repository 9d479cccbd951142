"""The project's SQLite stores (MLflow's DB, Optuna's storage) in write-ahead-log mode.

In SQLite's default rollback-journal mode every commit creates, syncs and deletes a journal
file and syncs the database: ~1.1 ms a commit here, and a 150-stock job commits ~2,200 times
(trial parameters, pruning reports, one MLflow run per trial). In WAL mode with
`synchronous=NORMAL` a commit appends to `<db>-wal` and syncs only at checkpoints: ~0.03 ms
(benchmarks/README.md). A commit survives the process crashing; after a power cut or an
operating-system crash the last commits may be lost, but the database is never corrupted
(https://www.sqlite.org/wal.html). Readers such as `mlflow ui` no longer block the job's
writes. WAL needs shared memory, so it does not suit a database on a network filesystem
(`mlflow.sqlite_wal=false`, `tuning.sqlite_wal=false`).
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import weakref
from contextlib import closing
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Engine

from ashare_autotune.errors import UserError

log = logging.getLogger(__name__)

_DATABASES: set[str] = set()  # real paths of the files this process puts in WAL mode
# engines seen connecting, and whether they open one of _DATABASES (disposed of at exit)
_ENGINES: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def sqlite_file(url: str) -> str | None:
    """The real path of the database file of a `sqlite:///...` URL; None for other URLs
    (a server database, an in-memory SQLite database)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.realpath(parsed.database)


def enable(url: str) -> None:
    """Open every later connection of this process to the SQLite file of `url` in WAL mode
    with `synchronous=NORMAL`, and close them at exit (`release_all`). Other URLs: nothing.

    WAL mode is stored in the file, so other processes opening it later use it too.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if not _DATABASES:
        sqlalchemy.event.listen(Engine, "connect", _on_connect)
        sqlalchemy.event.listen(Engine, "engine_connect", _on_engine_connect)
        atexit.register(release_all)
    _DATABASES.add(path)


def _on_engine_connect(connection: sqlalchemy.Connection) -> None:
    engine = connection.engine
    if engine not in _ENGINES:
        _ENGINES[engine] = sqlite_file(engine.url.render_as_string()) in _DATABASES


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    if row is None or not row[2] or os.path.realpath(row[2]) not in _DATABASES:
        return
    try:
        mode = dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.OperationalError as exc:  # another process holds a lock: stay as it is
        log.warning("%s stays in its journal mode: %s", row[2], exc)
        return
    if mode == "wal":  # NORMAL is only as safe as FULL in WAL mode
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def checkpoint(path: str) -> None:
    """Copy what the write-ahead log holds into the database file and empty the log, so that
    the file alone has every commit (e.g. to copy it while the process still runs)."""
    if not os.path.exists(f"{path}-wal"):
        return
    with closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def release_all() -> None:
    """Close the pooled connections to the databases put in WAL mode (runs at exit).

    The last connection to close copies the log into the database file and deletes
    `<db>-wal` and `<db>-shm`; a log still held open elsewhere is at least checkpointed. The
    engines stay usable: they open new connections when asked.
    """
    for engine, ours in list(_ENGINES.items()):
        if ours:
            engine.dispose()
    for path in sorted(_DATABASES):
        try:
            checkpoint(path)
        except sqlite3.Error as exc:
            log.warning("could not checkpoint %s: %s", path, exc)


def check_writable(url: str, key: str) -> None:
    """Refuse, before anything is written, a SQLite store that this process may only read.

    SQLite opens a file it may not write read-only and fails at the first write ("attempt to
    write a readonly database"), deep inside MLflow or Optuna and after their own tracebacks.
    A store that another process is writing now is not refused here. Other URLs: nothing.

    Args:
        url: the store's URL (`sqlite:///...`).
        key: the config key it came from (named in the error).

    Raises:
        UserError: one line naming the key and the file.
    """
    path = sqlite_file(url)
    if path is None or not os.path.exists(path):
        return
    try:
        with closing(sqlite3.connect(path, timeout=0)) as con:
            con.execute("BEGIN IMMEDIATE")
            # a write (rolled back): in WAL mode the lock alone is taken in the -shm file
            con.execute("CREATE TABLE main.ashare_autotune_write_check (x)")
            con.rollback()
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            return  # e.g. locked by a writer: the store itself is fine
        name = os.path.basename(path)
        raise UserError(
            f"config key '{key}': the SQLite store {path} can only be read ({exc}); make the "
            f"file and its folder writable (WAL mode keeps {name}-wal and {name}-shm beside "
            "it) or give another store"
        ) from None
