"""The Tushare pro API client: the token (TUSHARE_TOKEN or `.env`, kept inside the pro API
object), paging, and retries with backoff that tell a rejected token from a passing failure."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TOKEN_ENV = "TUSHARE_TOKEN"
HOW_TO_SET_TOKEN = (
    f"set the {TOKEN_ENV} environment variable or put {TOKEN_ENV}=<your token> in .env "
    "(see .env.example); your token is at https://tushare.pro/user/token"
)
# Rows asked per call; Tushare caps rows per call by API and account (5000-8000).
PAGE_SIZE = {"daily": 5000, "adj_factor": 5000, "index_daily": 5000, "stock_basic": 5000}
DAILY_FIELDS = ("open", "high", "low", "close", "pre_close", "change", "pct_chg", "vol", "amount")
PRICE_COLUMNS = ("open", "high", "low", "close", "pre_close")
BASIC_FIELDS = "ts_code,symbol,name,area,industry,list_date,list_status,delist_date"
MAX_WAIT = 60.0
# Tushare limits calls per minute ("每分钟最多访问..."): wait for the window to pass.
RATE_LIMIT_WAIT = 20.0


def resolve_token(env_file: Path = Path(".env")) -> str:
    """The Tushare token from TUSHARE_TOKEN, else from `.env`; a missing one is a ConfigError.

    Args:
        env_file: the dotenv file read when the variable is not set.

    Returns:
        The token (never log it).
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token and env_file.is_file():
        from dotenv import dotenv_values

        token = (dotenv_values(env_file).get(TOKEN_ENV) or "").strip()
    if not token:
        raise ConfigError(f"no Tushare token: {HOW_TO_SET_TOKEN}")
    return token


def connect_pro(token: str) -> Any:
    """The `tushare` package's pro API object (the token stays inside it, nothing on disk)."""
    import tushare

    # pro_api(token) keeps the token in memory; ts.set_token would write it to ~/tk.csv.
    return tushare.pro_api(token=token)


def _classify(message: str) -> str:
    """Which kind of failure a Tushare error message describes: limit, permission, token, other."""
    lowered = message.lower()
    if any(s in message for s in ("每分钟", "每小时", "最多访问", "频率")) or "rate" in lowered:
        return "limit"
    if "没有访问该接口的权限" in message or "积分" in message:
        return "permission"
    if "token" in lowered:
        return "token"
    return "other"


class TushareClient:
    """Calls pro API endpoints with pagination and retries; counts every call made.

    Args:
        connect: returns the pro API object; called on the first request only, so a run the
            cache fully answers needs neither a token nor the network.
        max_retries: attempts per call before a `DataError` naming the call.
        retry_wait: seconds before the first retry; doubled on each further retry (max 60 s).
        sleep: the wait function (tests pass a recorder).
        page_size: rows asked per call (default: `PAGE_SIZE` per endpoint).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        max_retries: int = 5,
        retry_wait: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int | None = None,
    ) -> None:
        self._connect = connect
        self._pro: Any = None
        self.max_retries = max_retries
        self.retry_wait = retry_wait
        self.sleep = sleep
        self.page_size = page_size
        self.calls = 0

    @classmethod
    def from_config(cls, cfg: DataConfig) -> TushareClient:
        """A client whose token comes from TUSHARE_TOKEN or `.env` when first needed."""
        return cls(
            lambda: connect_pro(resolve_token()),
            max_retries=cfg.max_retries,
            retry_wait=cfg.retry_wait,
        )

    def fetch(self, api: str, **params: Any) -> pd.DataFrame:
        """All rows of one endpoint call, page by page (`limit`/`offset`).

        Args:
            api: endpoint name, e.g. "daily".
            **params: the endpoint's parameters, e.g. trade_date="20230316".
        """
        limit = self.page_size or PAGE_SIZE.get(api, 5000)
        pages, offset = [], 0
        while True:
            page = self._call(api, limit=limit, offset=offset, **params)
            if len(page):
                pages.append(page)
            offset += len(page)
            # A short page is the last one, unless it is a round number: then the server's cap
            # (smaller than `limit` on some accounts) may have cut it, so ask for more.
            if len(page) == 0 or (len(page) < limit and len(page) % 1000):
                break
        return pd.concat(pages, ignore_index=True) if pages else pd.DataFrame()

    def _call(self, api: str, **params: Any) -> pd.DataFrame:
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("limit", "offset"))
        for attempt in range(1, self.max_retries + 1):
            self.calls += 1
            try:
                if self._pro is None:
                    self._pro = self._connect()
                out = getattr(self._pro, api)(**params)
            except (ConfigError, DataError):
                raise
            except Exception as exc:  # the network, the server or a rate limit: retried
                self._give_up_or_wait(api, shown, exc, attempt)
            else:
                return out if isinstance(out, pd.DataFrame) else pd.DataFrame()
        raise AssertionError("unreachable")  # pragma: no cover

    def _give_up_or_wait(self, api: str, shown: str, exc: Exception, attempt: int) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = _classify(message)
        if kind == "token":
            raise ConfigError(f"Tushare rejected the token ({message}): {HOW_TO_SET_TOKEN}")
        if kind == "permission":
            raise DataError(
                f"Tushare call {api}({shown}) refused: {message} "
                "(the account lacks the points for this endpoint)"
            )
        if attempt >= self.max_retries:
            raise DataError(
                f"Tushare call {api}({shown}) failed after {attempt} attempt(s): {message}"
            )
        wait = min(self.retry_wait * 2 ** (attempt - 1), MAX_WAIT)
        if kind == "limit":
            wait = max(wait, RATE_LIMIT_WAIT)
        log.warning(
            "Tushare call %s(%s) failed (%s); retry %d/%d in %.1f s",
            api,
            shown,
            message,
            attempt,
            self.max_retries - 1,
            wait,
        )
        self.sleep(wait)
