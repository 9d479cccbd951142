"""User-facing errors: a mistake in input or configuration, reported in one line."""

from __future__ import annotations

import functools
import logging
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
    """Turn a `UserError` raised by an entry point into a one-line message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            log.error("%s", exc)
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
