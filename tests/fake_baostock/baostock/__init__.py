"""Stands in for the `baostock` package in subprocess tests (put its parent on PYTHONPATH):
the module functions of `tests.free_fakes.FakeBaostock`, set up from FAKE_* variables."""

from tests.free_fakes import from_env

_fake = from_env("baostock")
login = _fake.login
logout = _fake.logout
query_history_k_data_plus = _fake.query_history_k_data_plus
query_stock_basic = _fake.query_stock_basic
query_stock_industry = _fake.query_stock_industry
