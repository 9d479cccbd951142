"""Stands in for the `akshare` package in subprocess tests (put its parent on PYTHONPATH):
the functions of `tests.free_fakes.FakeAkshare`, set up from FAKE_* variables."""

from tests.free_fakes import from_env

_fake = from_env("akshare")
stock_zh_a_hist = _fake.stock_zh_a_hist
stock_zh_index_daily_em = _fake.stock_zh_index_daily_em
stock_info_a_code_name = _fake.stock_info_a_code_name
