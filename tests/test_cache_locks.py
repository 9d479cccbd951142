"""The cache lock: one updater or many readers. A training run reads a downloaded source's cache
with the lock held shared, so an update started meanwhile waits until the run has read it all
(no run sees some files from before an update and others from after it), and a run does not
read while an update writes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ashare_autotune.config.fetch import FetchConfig
from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data import per_stock
from ashare_autotune.data.baostock import BaostockSource, load_baostock
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.cache_files import cache_lock, cache_read_lock
from ashare_autotune.data.free_sources import update_free_source
from ashare_autotune.data.market import Market
from ashare_autotune.data.tushare import load_tushare
from ashare_autotune.data.tushare_client import TushareClient
from ashare_autotune.fetch_data import run_fetch
from tests.free_fakes import FakeBaostock, make_market
from tests.tushare_fake import make_fake_pro

WAIT = 10.0  # seconds at most for the other thread to reach its point
TODAY = "20300101"


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _waiting_logged(caplog: pytest.LogCaptureFixture) -> Callable[[], bool]:
    return lambda: any("waiting for it to finish" in r.getMessage() for r in caplog.records)


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_readers_share_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inside = threading.Event()

    def second_reader() -> None:
        with cache_read_lock(tmp_path):
            inside.set()

    with cache_read_lock(tmp_path):
        thread = _in_thread(second_reader)
        assert inside.wait(WAIT)
    thread.join(WAIT)
    assert not _waiting_logged(caplog)()


def test_a_reader_waits_while_an_update_holds_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    inside = threading.Event()

    def reader() -> None:
        with cache_read_lock(tmp_path):
            inside.set()

    with cache_lock(tmp_path):
        thread = _in_thread(reader)
        assert _until(_waiting_logged(caplog))
        assert not inside.is_set()
    thread.join(WAIT)
    assert inside.is_set()
    assert "finish before reading" in caplog.text


def test_an_update_waits_until_a_training_run_has_read_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    fake = FakeBaostock(make_market())
    days = sorted(fake.market.bars["trade_date"].unique())
    cfg = DataConfig(
        source="baostock",
        start=days[0],
        end=days[29],
        cache_dir=str(tmp_path / "baostock"),
        progress=False,
        retry_wait=0.0,
    )
    first = load_baostock(cfg, BaostockSource.from_config(cfg, import_api=lambda: fake))
    root = Path(cfg.cache_dir)
    before = {p: p.read_bytes() for p in root.rglob("*.parquet")}
    fake.calls.clear()
    # The run pauses while reading the bars, until the update has been seen waiting.
    reading, go_on = threading.Event(), threading.Event()
    real_read_bars = per_stock.read_bars

    def slow_read_bars(*args: object) -> object:
        reading.set()
        go_on.wait(WAIT)
        return real_read_bars(*args)

    monkeypatch.setattr(per_stock, "read_bars", slow_read_bars)
    loaded: list[Market] = []
    run = _in_thread(
        lambda: loaded.append(
            load_baostock(cfg, BaostockSource.from_config(cfg, import_api=lambda: fake))
        )
    )
    assert reading.wait(WAIT)
    later = DataConfig(**{**vars(cfg), "end": days[-1]})
    update = _in_thread(
        lambda: update_free_source(
            later, BaostockSource.from_config(later, import_api=lambda: fake)
        )
    )
    assert _until(_waiting_logged(caplog))
    assert fake.calls == []  # the update has not started while the run reads
    assert {p: p.read_bytes() for p in root.rglob("*.parquet")} == before
    go_on.set()
    run.join(WAIT)
    update.join(WAIT * 6)
    assert not update.is_alive()
    pd.testing.assert_frame_equal(loaded[0].daily, first.daily)  # read before the update
    assert fake.calls  # and the update ran after it
    assert {p: p.read_bytes() for p in root.rglob("*.parquet")} != before


def test_a_tushare_update_waits_until_a_training_run_has_read_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    fake = make_fake_pro()
    days = sorted(fake.daily_truth["trade_date"].unique())
    cfg = DataConfig(
        source="tushare",
        start=days[0],
        end=days[19],
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    first = load_tushare(cfg, TushareClient(lambda: fake, 3, 0.0), today=TODAY)
    fake.calls.clear()
    reading, go_on = threading.Event(), threading.Event()
    real_read_days = TushareCache.read_days

    def slow_read_days(self: TushareCache, *args: object) -> object:
        reading.set()
        go_on.wait(WAIT)
        return real_read_days(self, *args)

    monkeypatch.setattr(TushareCache, "read_days", slow_read_days)
    loaded: list[Market] = []
    run = _in_thread(
        lambda: loaded.append(load_tushare(cfg, TushareClient(lambda: fake, 3, 0.0), today=TODAY))
    )
    assert reading.wait(WAIT)
    later = FetchConfig(data=DataConfig(**{**vars(cfg), "end": days[-1]}))
    update = _in_thread(lambda: run_fetch(later, TushareClient(lambda: fake, 3, 0.0)))
    assert _until(_waiting_logged(caplog))
    assert fake.api_calls("daily") == []  # the update has not started while the run reads
    go_on.set()
    run.join(WAIT)
    update.join(WAIT * 6)
    assert not update.is_alive()
    pd.testing.assert_frame_equal(loaded[0].daily, first.daily)
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == days[20:]
