"""User-facing errors: a mistake in input or configuration, reported in one line."""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
from collections.abc import Callable
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
    found by Hydra or OmegaConf is one `error:` line naming the key, exit status 2.

    `HYDRA_FULL_ERROR=1` set by the user keeps Hydra's full report. The modules imported by
    then stay out of the garbage collector's way (`runtime.settle_imports`).
    """
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ashare_autotune.runtime import remove_scratch_on_sigterm, settle_imports

    settle_imports()
    remove_scratch_on_sigterm()  # `kill` leaves no feature store on disk behind
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return main()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its report
    try:
        return main()
    except (HydraException, OmegaConfBaseException) as exc:
        print(f"error: {config_error_text(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        os.environ.pop("HYDRA_FULL_ERROR", None)


def config_error_text(exc: BaseException) -> str:
    """One line for a Hydra/OmegaConf error: `config key 'a.b': <what is wrong>`."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    key = getattr(cause, "full_key", None) or getattr(exc, "full_key", None)
    message = str(getattr(cause, "msg", None) or cause).strip()
    first = message.splitlines()[0] if message else type(exc).__name__
    if key:
        return f"config key '{key}': {first}"
    return " ".join(str(exc).split())


def report_disk_full(func: Callable[..., Any]) -> Callable[..., Any]:
    """A full disk (an OSError ENOSPC, SQLite's "database or disk is full") as one line, exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            where = disk_full(exc)
            if where is None:
                raise
            print(
                f"error: disk full ({where}). Finished trials are kept in the study database; "
                "free space and run the same command again to resume",
                file=sys.stderr,
            )
            sys.exit(2)

    return wrapper


def disk_full(exc: BaseException | None) -> str | None:
    """What says the disk is full in `exc` or an error it was raised from, else None."""
    for _ in range(20):
        if exc is None:
            return None
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f"{exc.strerror}: {exc.filename or 'writing a file'}"
        if "database or disk is full" in str(exc):
            return "SQLite: database or disk is full"
        exc = exc.__cause__ or exc.__context__
    return None
