"""User-facing errors: a mistake in input or configuration, reported in one line."""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


class UserError(Exception):
    """A problem the user can fix (bad config, bad file, missing token); no traceback shown."""


class ConfigError(UserError):
    """A configuration value is invalid; the message names the key."""


class DataError(UserError):
    """Input data is unusable; the message names the file, column and an example row."""


def report_user_errors(func: F) -> F:
    """Turn a `UserError` raised by an entry point into one `error:` line on stderr, exit status
    2; the run's log files (Hydra's `<job>.log`) record it too, the console log does not (it
    would show the same mistake twice)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            _log_to_files(str(exc))
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _log_to_files(message: str) -> None:
    """Log `message` as an ERROR of this module to the file handlers it reaches, only."""
    if not log.isEnabledFor(logging.ERROR):
        return
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (message,), None)
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)
        logger = logger.parent if logger.propagate else None


def run_cli(main: Callable[[], Any]) -> Any:
    """Run a Hydra app so that a configuration mistake (unknown key, wrong type, missing value)
    found by Hydra or OmegaConf is one `error:` line naming the key, exit status 2; so is an
    unwritable file or store, and Ctrl-C is one line, exit status 130 (`report_io_faults`).

    `HYDRA_FULL_ERROR=1` set by the user keeps Hydra's full report. The modules imported by
    then stay out of the garbage collector's way (`runtime.settle_imports`).
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ashare_autotune.runtime import remove_scratch_on_sigterm, settle_imports

    settle_imports()
    # `kill` and Ctrl-C leave no feature store on disk behind and the MLflow run KILLED
    remove_scratch_on_sigterm(on_interrupt=report_interrupt)
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return main()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its report
    try:
        return report_io_faults(main)()  # also Hydra's own writes (its output folder)
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {config_error_text(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


def config_error_text(exc: BaseException) -> str:
    """One line for a Hydra/OmegaConf error: `config key 'a.b': <what is wrong>`; an option a
    config group lacks (`model=foo`): `config key 'model'='foo': ...` and the group's options."""
    missing = getattr(exc, "missing_cfg_file", None)
    if missing and "/" in missing and getattr(exc, "options", None):
        group, name = missing.rsplit("/", 1)
        options = ", ".join(exc.options)  # type: ignore[attr-defined]
        return (
            f"config key '{group}'={name!r}: no such option in conf/{group}/ (it has: {options})"
        )
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    key = getattr(cause, "full_key", None) or getattr(exc, "full_key", None)
    message = str(getattr(cause, "msg", None) or cause).strip()
    first = message.splitlines()[0] if message else type(exc).__name__
    if key:
        return f"config key '{key}': {first}"
    return " ".join(str(exc).split())


INTERRUPTED = (
    "interrupted (Ctrl-C): the run in progress is marked KILLED; finished trials are kept in the "
    "study database, the same command resumes"
)
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def report_io_faults(func: Callable[..., Any]) -> Callable[..., Any]:
    """A full disk, a read-only file system or store, or a file the process may not write, as
    one `error:` line (`io_fault`), exit 2; Ctrl-C as one line, exit 130 (128 + SIGINT)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            report_interrupt()
            sys.exit(130)
        except Exception as exc:
            message = io_fault(exc)
            if message is None:
                raise
            _log_to_files(message)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def report_interrupt() -> None:
    """Tell the user, in one line (and the run's log files), that Ctrl-C stopped the job."""
    _log_to_files(INTERRUPTED)
    print(f"error: {INTERRUPTED}", file=sys.stderr)


report_disk_full = report_io_faults  # the name it had when it knew a full disk only


def io_fault(exc: BaseException | None) -> str | None:
    """The one line for a full disk or an unwritable file or store behind `exc`, else None."""
    if where := disk_full(exc):
        return (
            f"disk full ({where}). Finished trials are kept in the study database; "
            "free space and run the same command again to resume"
        )
    if where := unwritable(exc):
        return (
            f"cannot {where}; make it writable or point the setting that names it "
            "(mlflow.tracking_uri, tuning.storage, data.cache_dir, hydra.run.dir) elsewhere, "
            "then run the same command again"
        )
    return None


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc` and the errors it was raised from or while handling (at most 20)."""
    for _ in range(20):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


def disk_full(exc: BaseException | None) -> str | None:
    """What says the disk is full in `exc` or an error it was raised from, else None."""
    for err in _chain(exc):
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return f"{err.strerror}: {err.filename or 'writing a file'}"
        if "database or disk is full" in str(err):
            return "SQLite: database or disk is full"
    return None


def unwritable(exc: BaseException | None) -> str | None:
    """What may not be written in `exc` or an error behind it: an OSError EROFS (read-only file
    system; not a `PermissionError`), EACCES or EPERM, or SQLite's read-only database; else
    None.

    Args:
        exc: the error an entry point ended with.

    Returns:
        "write <file>: <strerror> (errno 30)" ("read or write" for EACCES and EPERM, which
        reading may raise too), or "write a SQLite store (...)", or None.
    """
    for err in _chain(exc):
        if isinstance(err, OSError) and err.errno in UNWRITABLE:
            verb = "write" if err.errno == errno.EROFS else "read or write"
            what = err.filename or "a file"
            return f"{verb} {what}: {err.strerror or os.strerror(err.errno)} (errno {err.errno})"
        if "attempt to write a readonly database" in str(err):
            return (
                "write a SQLite store (mlflow.tracking_uri or tuning.storage): attempt to write a "
                "readonly database (its folder must be writable too: WAL mode writes "
                "<file>-wal and <file>-shm beside it)"
            )
    return None
