"""Calls to a free data service with retries and backoff; every call counted.

The service's library is reached through `connect` on the first call only, so a run that the
cache fully answers makes no call and needs no network. Failures are sorted into three kinds:
the service cannot be reached (retried, then one line saying so), the call is refused (bad
parameters: not retried) and anything else (retried, then one line naming the call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ashare_autotune.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MAX_WAIT = 60.0
UNREACHABLE, REFUSED, RECONNECT, OTHER = "unreachable", "refused", "reconnect", "other"


class ServiceError(Exception):
    """A failure the service reported (not an exception of its library), with its kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def network_kind(exc: Exception) -> str:
    """The kind of a library exception: OSError (requests' errors included) means unreachable."""
    if isinstance(exc, ServiceError):
        return exc.kind
    return UNREACHABLE if isinstance(exc, OSError | TimeoutError) else OTHER


class RetryingClient:
    """Calls one service's functions with retries; `calls` counts every attempt.

    Args:
        service: the name shown in messages, e.g. "baostock".
        connect: returns the library object (logs in where the service needs it).
        max_retries: attempts per call before a `DataError` naming the call.
        retry_wait: seconds before the first retry; doubled on each further retry (max 60 s).
        sleep: the wait function (tests pass a recorder).
        classify: exception -> UNREACHABLE | REFUSED | RECONNECT | OTHER.
    """

    def __init__(
        self,
        service: str,
        connect: Callable[[], Any],
        max_retries: int = 5,
        retry_wait: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        classify: Callable[[Exception], str] = network_kind,
    ) -> None:
        self.service = service
        self._connect = connect
        self.api: Any = None
        self.max_retries = max_retries
        self.retry_wait = retry_wait
        self.sleep = sleep
        self.classify = classify
        self.calls = 0

    def call(self, func: Callable[[Any], Any], name: str, **shown: Any) -> Any:
        """Run `func(api)` with retries.

        Args:
            func: receives the connected library object and makes one request.
            name: the library function called, named in messages.
            **shown: the call's parameters, named in messages.

        Returns:
            What `func` returned.
        """
        text = f"{name}({', '.join(f'{k}={v}' for k, v in shown.items())})"
        for attempt in range(1, self.max_retries + 1):
            self.calls += 1
            try:
                if self.api is None:
                    self.api = self._connect()
                return func(self.api)
            except (ConfigError, DataError):
                raise
            except Exception as exc:  # the network, the server or the library: sorted below
                self._give_up_or_wait(text, exc, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _give_up_or_wait(self, text: str, exc: Exception, attempt: int) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = self.classify(exc)
        if kind == REFUSED:
            raise DataError(f"{self.service} call {text} refused: {message}")
        if kind == RECONNECT:
            self.api = None  # logged out by the server: log in again on the next attempt
        if attempt >= self.max_retries:
            if kind == UNREACHABLE:
                raise DataError(
                    f"cannot reach the {self.service} service: {text} failed after {attempt} "
                    f"attempt(s) ({message}); check the network and run the same command again"
                )
            raise DataError(
                f"{self.service} call {text} failed after {attempt} attempt(s): {message}"
            )
        wait = min(self.retry_wait * 2 ** (attempt - 1), MAX_WAIT)
        log.warning(
            "%s call %s failed (%s); retry %d/%d in %.1f s",
            self.service,
            text,
            message,
            attempt,
            self.max_retries - 1,
            wait,
        )
        self.sleep(wait)
