"""The Tushare source, offline: the real client and cache code against a fake pro API that
answers Tushare-shaped frames (pagination, retries, resume, adjustment, cache hits)."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ashare_autotune.config.schema import DataConfig, LabelConfig
from ashare_autotune.config.universe import UniverseConfig
from ashare_autotune.data.cache import TushareCache
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.tushare import load_tushare, update_cache
from ashare_autotune.data.tushare_client import RATE_LIMIT_WAIT, TushareClient, resolve_token
from ashare_autotune.errors import ConfigError, DataError
from ashare_autotune.modelling.dataset import labelled_rows
from tests.tushare_fake import FakePro, make_fake_pro, raise_

TODAY = "20300101"


@pytest.fixture
def fake() -> FakePro:
    return make_fake_pro()


def _cfg(tmp_path: Path, fake: FakePro, **kw: object) -> DataConfig:
    days = sorted(fake.daily_truth["trade_date"].unique())
    base: dict[str, object] = {
        "source": "tushare",
        "start": days[0],
        "end": days[-1],
        "cache_dir": str(tmp_path / "cache"),
        "progress": False,
        "retry_wait": 0.5,
        "max_retries": 3,
    }
    return DataConfig(**(base | kw))


def _client(fake: FakePro, cfg: DataConfig, **kw: object) -> TushareClient:
    waits: list[float] = []
    client = TushareClient(lambda: fake, cfg.max_retries, cfg.retry_wait, sleep=waits.append, **kw)
    client.waits = waits  # type: ignore[attr-defined]
    return client


def _trading_days(fake: FakePro) -> list[str]:
    return sorted(fake.daily_truth["trade_date"].unique())


def test_first_load_calls_daily_and_adj_factor_once_per_trading_day(
    tmp_path: Path, fake: FakePro
) -> None:
    cfg = _cfg(tmp_path, fake)
    market = load_tushare(cfg, _client(fake, cfg), today=TODAY)
    days = _trading_days(fake)
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == days
    assert [c.params["trade_date"] for c in fake.api_calls("adj_factor")] == days
    assert len(fake.api_calls("trade_cal")) == 1 and len(fake.api_calls("index_daily")) == 1
    assert {c.params["list_status"] for c in fake.api_calls("stock_basic")} == {"L", "D", "P"}
    assert len(market.daily) == len(fake.daily_truth)
    assert market.daily["trade_date"].min() == pd.Timestamp(days[0])
    assert set(market.stock_basic["ts_code"]) == set(fake.daily_truth["ts_code"])


def test_second_load_of_the_same_range_makes_no_api_call(tmp_path: Path, fake: FakePro) -> None:
    cfg = _cfg(tmp_path, fake)
    first = load_tushare(cfg, _client(fake, cfg), today=TODAY)
    n_calls = len(fake.calls)

    def no_network() -> FakePro:
        raise AssertionError("the cache should have answered")

    second = load_tushare(cfg, TushareClient(no_network), today=TODAY)
    assert len(fake.calls) == n_calls
    pd.testing.assert_frame_equal(first.daily, second.daily)
    pd.testing.assert_frame_equal(first.index, second.index)


def test_an_update_adds_only_the_missing_days_and_rewrites_no_cached_file(
    tmp_path: Path, fake: FakePro
) -> None:
    days = _trading_days(fake)
    cfg = _cfg(tmp_path, fake, end=days[19])
    update_cache(cfg, _client(fake, cfg), TushareCache(Path(cfg.cache_dir)), today=TODAY)
    cache = TushareCache(Path(cfg.cache_dir))
    stamps = {d: cache.day_path(d).stat().st_mtime_ns for d in days[:20]}
    fake.calls.clear()

    later = _cfg(tmp_path, fake, end=days[-1])
    report = update_cache(later, _client(fake, later), cache, today=TODAY)

    assert report.fetched == days[20:]
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == days[20:]
    assert [
        (c.params["start_date"], c.params["end_date"]) for c in fake.api_calls("index_daily")
    ] == [(days[20], days[-1])]
    assert {d: cache.day_path(d).stat().st_mtime_ns for d in days[:20]} == stamps
    assert cache.cached_days() == set(days)


def test_a_day_not_published_yet_is_not_cached_and_is_fetched_next_time(
    tmp_path: Path, fake: FakePro
) -> None:
    days = _trading_days(fake)
    last = days[-1]
    cfg = _cfg(tmp_path, fake)
    truth = fake.daily_truth
    fake.daily_truth = truth[truth["trade_date"] < last]  # Tushare publishes after the close
    report = update_cache(cfg, _client(fake, cfg), TushareCache(Path(cfg.cache_dir)), TODAY)
    assert report.unavailable == [last] and last not in report.available_days
    fake.daily_truth = truth
    fake.calls.clear()
    report = update_cache(cfg, _client(fake, cfg), TushareCache(Path(cfg.cache_dir)), TODAY)
    assert report.fetched == [last]
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == [last]


def test_an_interrupted_download_resumes_at_the_first_missing_day(
    tmp_path: Path, fake: FakePro
) -> None:
    days = _trading_days(fake)
    cfg = _cfg(tmp_path, fake)
    # Killed while fetching the adj_factor of the 6th day: its daily bars were already fetched.
    fake.fail["adj_factor"] = [lambda: None] * 5 + [raise_(KeyboardInterrupt())]
    with pytest.raises(KeyboardInterrupt):
        load_tushare(cfg, _client(fake, cfg), today=TODAY)
    cache = TushareCache(Path(cfg.cache_dir))
    assert cache.cached_days() == set(days[:5])
    # A temporary file a killed writer left behind is not a cached day.
    leftover = cache.day_path(days[5]).with_name(f".{days[5]}.parquet.999.tmp")
    leftover.write_bytes(b"PAR1 half a file")
    assert days[5] not in cache.cached_days()

    fake.calls.clear()
    market = load_tushare(cfg, _client(fake, cfg), today=TODAY)
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == days[5:]
    clean = load_tushare(_cfg(tmp_path / "clean", fake), _client(fake, cfg), today=TODAY)
    pd.testing.assert_frame_equal(market.daily, clean.daily)


def test_a_full_disk_keeps_the_cached_days_leaves_no_partial_file_and_resumes(
    tmp_path: Path, fake: FakePro, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = _trading_days(fake)
    cfg = _cfg(tmp_path, fake)
    cache = TushareCache(Path(cfg.cache_dir))
    real_write = pq.write_table

    def fill_up_on_day_6(table: pa.Table, path: Path, **kw: object) -> None:
        if days[5] in Path(path).name:
            Path(path).write_bytes(b"PAR1 the first bytes of a file")  # then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(table, path, **kw)

    monkeypatch.setattr(pq, "write_table", fill_up_on_day_6)
    with pytest.raises(DataError, match=rf"disk full .*Tushare cache .*{days[5]}\.parquet.*kept"):
        load_tushare(cfg, _client(fake, cfg), today=TODAY)
    assert cache.cached_days() == set(days[:5])
    assert not list(Path(cfg.cache_dir).rglob("*.tmp"))

    monkeypatch.setattr(pq, "write_table", real_write)
    fake.calls.clear()
    load_tushare(cfg, _client(fake, cfg), today=TODAY)
    assert [c.params["trade_date"] for c in fake.api_calls("daily")] == days[5:]


def test_pagination_follows_limit_and_offset_until_a_short_page(
    tmp_path: Path, fake: FakePro
) -> None:
    fake.cap = 3  # the server answers at most 3 rows per call
    cfg = _cfg(tmp_path, fake)
    day = _trading_days(fake)[-1]
    rows = fake.daily_truth[fake.daily_truth["trade_date"] == day]
    got = _client(fake, cfg, page_size=3).fetch("daily", trade_date=day)
    assert sorted(got["ts_code"]) == sorted(rows["ts_code"])
    offsets = [c.params["offset"] for c in fake.api_calls("daily")]
    assert offsets == list(range(0, len(rows) + 1, 3))  # until a short (or empty) page
    assert all(c.params["limit"] == 3 for c in fake.api_calls("daily"))


def test_a_server_cap_below_the_page_size_still_returns_every_row(tmp_path: Path) -> None:
    # 2,500 stocks on one day, a server that caps at 2,000 rows, pages of 5,000 asked for.
    fake = make_fake_pro(n_stocks=2500, n_days=2, cap=2000)
    cfg = _cfg(tmp_path, fake)
    day = _trading_days(fake)[-1]
    got = _client(fake, cfg).fetch("daily", trade_date=day)
    expected = fake.daily_truth[fake.daily_truth["trade_date"] == day]
    assert len(got) == len(expected) and got["ts_code"].is_unique
    assert len(fake.api_calls("daily")) == 2


def test_transient_errors_are_retried_with_exponential_backoff(
    tmp_path: Path, fake: FakePro
) -> None:
    cfg = _cfg(tmp_path, fake)
    fake.fail["daily"] = [
        raise_(ConnectionError("Connection reset by peer")),
        raise_(Exception("抱歉，您每分钟最多访问该接口500次")),
    ]
    client = _client(fake, cfg)
    got = client.fetch("daily", trade_date=_trading_days(fake)[0])
    assert not got.empty
    # Doubling from data.retry_wait; a rate limit waits for Tushare's per-minute window.
    assert client.waits == [0.5, RATE_LIMIT_WAIT]  # type: ignore[attr-defined]


def test_a_call_that_keeps_failing_is_a_clear_error_naming_the_call(
    tmp_path: Path, fake: FakePro
) -> None:
    cfg = _cfg(tmp_path, fake)
    day = _trading_days(fake)[0]
    fake.fail["daily"] = [raise_(TimeoutError("read timed out"))] * 3
    with pytest.raises(
        DataError, match=rf"Tushare call daily\(trade_date={day}\) failed after 3 attempt"
    ):
        load_tushare(cfg, _client(fake, cfg), today=TODAY)
    assert len(fake.api_calls("daily")) == 3


def test_a_rejected_token_is_a_one_line_error_without_retries(
    tmp_path: Path, fake: FakePro
) -> None:
    cfg = _cfg(tmp_path, fake)
    fake.fail["trade_cal"] = [raise_(Exception("抱歉，您的token不对，请确认。"))]
    with pytest.raises(ConfigError, match="Tushare rejected the token.*TUSHARE_TOKEN") as err:
        load_tushare(cfg, _client(fake, cfg), today=TODAY)
    assert "\n" not in str(err.value) and len(fake.calls) == 1


@pytest.mark.parametrize("how", ["qfq", "hfq", "none"])
def test_adjustment_matches_tushares_definition(tmp_path: Path, fake: FakePro, how: str) -> None:
    cfg = _cfg(tmp_path, fake, adjust=how)
    got = load_tushare(cfg, _client(fake, cfg), today=TODAY).daily
    truth = fake.daily_truth.sort_values(["ts_code", "trade_date"], ignore_index=True)
    last = truth.groupby("ts_code")["adj_factor"].transform("last")
    factor = {"hfq": 1.0, "qfq": 1.0 / last, "none": 1.0 / truth["adj_factor"]}[how]
    for col in ("open", "close", "pre_close"):
        np.testing.assert_allclose(got[col], truth[col] * factor, rtol=2e-6)


def test_forward_adjusted_returns_are_continuous_across_a_split(
    tmp_path: Path, fake: FakePro
) -> None:
    cfg = _cfg(tmp_path, fake, adjust="qfq")
    daily = load_tushare(cfg, _client(fake, cfg), today=TODAY).daily
    split_stock = daily[daily["ts_code"] == fake.daily_truth["ts_code"].min()]
    ret = split_stock["close"].to_numpy()[1:] / split_stock["close"].to_numpy()[:-1] - 1
    assert np.abs(ret).max() < 0.21  # the raw series halves on the split day
    raw = fake.daily(trade_date=split_stock["trade_date"].max().strftime("%Y%m%d"))
    assert split_stock["close"].iloc[-1] == pytest.approx(raw["close"].iloc[0], rel=1e-6)


def test_token_comes_from_the_environment_or_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no Tushare token: set the TUSHARE_TOKEN"):
        resolve_token(tmp_path / ".env")
    (tmp_path / ".env").write_text("# mine\nTUSHARE_TOKEN=from-dotenv\n")
    assert resolve_token(tmp_path / ".env") == "from-dotenv"
    monkeypatch.setenv("TUSHARE_TOKEN", "from-env")
    assert resolve_token(tmp_path / ".env") == "from-env"


def test_data_tushare_reaches_the_tushare_package_with_the_token(
    tmp_path: Path, fake: FakePro, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tushare

    seen: list[str] = []
    monkeypatch.setattr(
        tushare, "pro_api", lambda token="", timeout=30: seen.append(token) or fake
    )
    monkeypatch.setenv("TUSHARE_TOKEN", "tok-123")
    codes = sorted(fake.daily_truth["ts_code"].unique())
    cfg = _cfg(tmp_path, fake, ts_codes=codes[:3])
    market = load_market(cfg)
    assert seen == ["tok-123"]
    assert sorted(market.daily["ts_code"].unique()) == codes[:3]


def test_universe_rules_leave_st_names_and_new_listings_out_of_the_dataset(
    tmp_path: Path, fake: FakePro, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tushare

    monkeypatch.setattr(tushare, "pro_api", lambda token="", timeout=30: fake)
    monkeypatch.setenv("TUSHARE_TOKEN", "tok")
    market = load_market(_cfg(tmp_path, fake))
    rules = UniverseConfig(exclude_st=True, min_list_days=10).rules()
    frame, _, calendar = labelled_rows(market, None, LabelConfig(min_days=1, max_days=2), rules)
    basic = fake.basic.set_index("ts_code")
    codes = frame["ts_code"].astype(str)
    assert basic["name"].str.contains("ST").any(), "the fake has an ST name to leave out"
    assert not basic.loc[codes.unique(), "name"].str.contains("ST").any()
    listed = pd.to_datetime(codes.map(basic["list_date"]), format="%Y%m%d")
    days_listed = calendar.get_indexer(frame["trade_date"]) - calendar.searchsorted(listed) + 1
    # a stock listed before the data's first day is old enough on every day of it
    assert ((days_listed >= 10) | (listed < calendar[0]).to_numpy()).all()
    assert (listed >= calendar[0]).any(), "the fake has a listing inside the span"


def test_a_seeded_stock_sample_is_reproducible(
    tmp_path: Path, fake: FakePro, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tushare

    monkeypatch.setattr(tushare, "pro_api", lambda token="", timeout=30: fake)
    monkeypatch.setenv("TUSHARE_TOKEN", "tok")
    sample = load_market(_cfg(tmp_path, fake, n_stocks=3, seed=1))
    again = load_market(_cfg(tmp_path, fake, n_stocks=3, seed=1))
    assert sample.n_stocks == 3
    pd.testing.assert_frame_equal(sample.daily, again.daily)


def test_a_load_after_an_update_reads_the_index_chunks_in_date_order(
    tmp_path: Path, fake: FakePro
) -> None:
    days = _trading_days(fake)
    first = _cfg(tmp_path, fake, end=days[19])
    load_tushare(first, _client(fake, first), today=TODAY)
    later = _cfg(tmp_path, fake, end=days[-1])
    market = load_tushare(later, _client(fake, later), today=TODAY)  # two newest-first chunks
    assert market.index["trade_date"].dt.strftime("%Y%m%d").tolist() == days
