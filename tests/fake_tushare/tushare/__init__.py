"""Stands in for the `tushare` package in subprocess tests (put its parent on PYTHONPATH):
`pro_api(token)` checks the token like the server would and returns the fake pro API."""

from __future__ import annotations

import os

from tests.tushare_fake import FakePro, make_fake_pro


def pro_api(token: str = "", timeout: int = 30) -> FakePro:
    """The fake pro API over a synthetic market; a wrong token is rejected as Tushare does."""
    if token != os.environ["FAKE_TUSHARE_TOKEN"]:
        raise Exception("抱歉，您的token不对，请确认。")
    return make_fake_pro(
        n_stocks=int(os.environ.get("FAKE_TUSHARE_STOCKS", "40")),
        n_days=int(os.environ.get("FAKE_TUSHARE_DAYS", "300")),
    )
