"""Locks that let several processes start at once on the same stores (issue 20).

Creating a store: MLflow's database and Optuna's RDB storage create their tables on first use,
and two processes doing it at once collide (`table experiments already exists` on SQLite,
`duplicate key value violates unique constraint "pg_type_typname_nsp_index"` on PostgreSQL).
`creating(url)` serialises it: an OS file lock `<db>.lock` next to a SQLite file, a PostgreSQL
advisory lock on a server database. The loser waits, then finds the store ready.

Running a study: `hold_study` gives one all-in-one process a study for its whole life: an
exclusive, non-blocking OS file lock `<db>.<study_name>.lock` next to a SQLite storage, or a
PostgreSQL session advisory lock on a hash of the study name. The operating system (or the
server, when the connection closes) releases either when the process dies, so a killed run
never blocks a rerun; the killed trial is then retried through Optuna's heartbeat as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

import sqlalchemy
from filelock import FileLock, Timeout
from sqlalchemy.pool import NullPool

from ashare_autotune.errors import UserError
from ashare_autotune.sqlite_wal import sqlite_file

log = logging.getLogger(__name__)

CREATE_TIMEOUT = 600.0  # seconds a process waits for another to create or migrate a store
CREATE_KEY = "ashare-autotune: creating the stores"


def _is_postgres(url: str) -> bool:
    try:
        return sqlalchemy.engine.make_url(url).get_backend_name() == "postgresql"
    except sqlalchemy.exc.ArgumentError:
        return False


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:  # not a database URL: the storage says so later
        return url.split("@")[-1]


@contextmanager
def creating(url: str) -> Iterator[None]:
    """Hold the store-creation lock of `url` while the block creates or migrates the store.

    Args:
        url: a `sqlite:///<file>` or `postgresql://...` database URL; any other URL (an MLflow
            server, an in-memory database) needs no lock and runs the block as it is.
    """
    path = sqlite_file(url)
    if path is not None and os.path.isdir(os.path.dirname(path)):
        with _file_lock(f"{path}.lock", path):
            yield
    elif _is_postgres(url):
        with _advisory_lock(url):
            yield
    else:  # a missing directory is reported by the store itself, as before
        yield


@contextmanager
def _file_lock(lock_path: str, db_path: str) -> Iterator[None]:
    lock: FileLock | None = FileLock(lock_path, timeout=CREATE_TIMEOUT)
    try:
        lock.acquire()
    except PermissionError as exc:  # a read-only directory: the store reports what it can do
        log.warning("no creation lock for %s: %s", db_path, exc)
        lock = None
    except Timeout:
        raise UserError(
            f"{db_path}: another process has been creating this database for over "
            f"{CREATE_TIMEOUT:.0f} s (it holds {lock_path}); stop it or wait, then run again"
        ) from None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    """A blocking PostgreSQL advisory lock for creating tables; the session ends with the block."""
    engine: sqlalchemy.Engine | None = None
    conn: sqlalchemy.Connection | None = None
    try:
        engine = _server_engine(url)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(CREATE_KEY)})
    except sqlalchemy.exc.SQLAlchemyError:
        conn = None  # an unreachable server: the store's own open fails next and says so
    try:
        yield
    finally:
        if conn is not None:
            conn.close()  # the session ends: the server releases the lock
        if engine is not None:
            engine.dispose()


def _server_engine(url: str) -> sqlalchemy.Engine:
    """An engine for one lock connection; fails fast when the server does not answer."""
    return sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})


def lock_key(name: str) -> int:
    """A signed 64-bit key for a PostgreSQL advisory lock, stable across processes."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class StudyLock:
    """This process's exclusive hold on one study, until `release` (or the process ends)."""

    def __init__(self, study_name: str, where: str, release: Callable[[], None]) -> None:
        self.study_name = study_name
        self.where = where  # the lock file, or the advisory lock's database
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Give the study up (a second call does nothing)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> StudyLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def study_lock_path(db_path: str, study_name: str) -> str:
    """`<db>.<study_name>.lock`, the name made safe for a file name (and kept unique)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", study_name)[:100]
    if safe != study_name:
        safe += f"-{zlib.crc32(study_name.encode()):08x}"
    return f"{db_path}.{safe}.lock"


def hold_study(storage: str, study_name: str) -> StudyLock:
    """Take `study_name`'s lock in `storage` without waiting.

    Args:
        storage: the study's database URL (`tuning.storage`).
        study_name: the study.

    Returns:
        the held lock; release it (or leave a `with` block) when the process is done.

    Raises:
        UserError: another live process holds the study (one line naming it).
    """
    path = sqlite_file(storage)
    if path is not None and os.path.isdir(os.path.dirname(path)):
        return _hold_file(study_lock_path(path, study_name), study_name)
    if _is_postgres(storage):
        return _hold_advisory(storage, study_name)
    if path is None and not storage.startswith("sqlite"):  # in memory: this process's alone
        log.warning(
            "no study lock on %s: only SQLite and PostgreSQL storages are locked; do not start "
            "a second all-in-one run of study %r while this one runs",
            _shown(storage),
            study_name,
        )
    return StudyLock(study_name, "", lambda: None)


def study_in_use(study_name: str, where: str) -> UserError:
    """The one line a second all-in-one process on a study stops with."""
    return UserError(
        f"study {study_name!r} is being run by another process (it holds {where}); wait for it "
        "to finish, or add trials to it in parallel with tuning.mode=worker"
    )


def _hold_file(lock_path: str, study_name: str) -> StudyLock:
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise study_in_use(study_name, lock_path) from None
    return StudyLock(study_name, lock_path, lock.release)


def _hold_advisory(storage: str, study_name: str) -> StudyLock:
    # A connection of its own, outside any transaction: the lock lives as long as the session.
    engine = None
    try:
        engine = _server_engine(storage)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = conn.execute(
            sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(study_name)}
        ).scalar()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if engine is not None:
            engine.dispose()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"tuning.storage={_shown(storage)!r} cannot be opened: {first}") from None
    where = f"its advisory lock in {_shown(storage)}"
    if not got:
        conn.close()
        engine.dispose()
        raise study_in_use(study_name, where)

    def release() -> None:
        conn.close()  # the session ends: the server releases the lock
        engine.dispose()

    return StudyLock(study_name, where, release)
