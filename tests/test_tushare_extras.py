"""Tushare daily_basic (turnover, valuation) cached per day beside daily, and namechange for
point-in-time ST flags; offline, against the fake pro API's endpoints in Tushare's shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.files import load_files
from ashare_autotune.data.schema import DAILY_BASIC_NUMERIC
from ashare_autotune.data.tushare import load_tushare
from ashare_autotune.data.tushare_client import TushareClient
from ashare_autotune.data.tushare_extras import st_flags
from ashare_autotune.errors import DataError
from tests.tushare_fake import FakePro, make_fake_pro, raise_

TODAY = "20300101"


@pytest.fixture
def fake() -> FakePro:
    return make_fake_pro()


def _cfg(tmp_path: Path, fake: FakePro, end: int = -1, **kw: object) -> DataConfig:
    days = sorted(fake.daily_truth["trade_date"].unique())
    return DataConfig(
        source="tushare",
        start=days[0],
        end=days[end],
        cache_dir=str(tmp_path / "cache"),
        progress=False,
        retry_wait=0.0,
        max_retries=2,
        **kw,
    )


def _load(fake: FakePro, cfg: DataConfig):
    return load_tushare(cfg, TushareClient(lambda: fake, cfg.max_retries, 0.0), today=TODAY)


def test_daily_basic_columns_join_the_bars_as_float32(tmp_path: Path, fake: FakePro) -> None:
    market = _load(fake, _cfg(tmp_path, fake, daily_basic=True))
    daily = market.daily
    for col in DAILY_BASIC_NUMERIC:
        assert daily[col].dtype == np.float32, col
    day = fake.daily_truth["trade_date"].iloc[0]
    want = fake.daily_basic(trade_date=day).set_index("ts_code")
    got = daily[daily["trade_date"] == pd.Timestamp(day)].set_index("ts_code")
    codes = got.index.astype(str)
    np.testing.assert_allclose(got["turnover_rate"], want.loc[codes, "turnover_rate"], rtol=1e-6)
    np.testing.assert_allclose(got["circ_mv"], want.loc[codes, "circ_mv"], rtol=1e-6)
    assert got["pe_ttm"].isna().sum() == codes.str.startswith("3").sum()  # a loss stays missing


def test_daily_basic_is_cached_per_day_and_fetched_only_for_missing_days(
    tmp_path: Path, fake: FakePro
) -> None:
    days = sorted(fake.daily_truth["trade_date"].unique())
    _load(fake, _cfg(tmp_path, fake, end=19, daily_basic=True))
    assert len(fake.api_calls("daily_basic")) == 20
    files = sorted(p.stem for p in (tmp_path / "cache" / "daily_basic").rglob("*.parquet"))
    assert files == days[:20]
    _load(fake, _cfg(tmp_path, fake, daily_basic=True))
    asked = [c.params["trade_date"] for c in fake.api_calls("daily_basic")[20:]]
    assert asked == days[20:]
    n = len(fake.calls)
    _load(fake, _cfg(tmp_path, fake, daily_basic=True))
    assert len(fake.calls) == n


def test_daily_basic_is_added_to_a_cache_that_has_only_daily(
    tmp_path: Path, fake: FakePro
) -> None:
    _load(fake, _cfg(tmp_path, fake))
    assert not fake.api_calls("daily_basic")
    fake.calls.clear()
    market = _load(fake, _cfg(tmp_path, fake, daily_basic=True))
    assert {c.api for c in fake.calls} == {"daily_basic"}  # the bars were cached
    assert market.daily["turnover_rate"].notna().all()


def test_a_refused_daily_basic_call_names_the_endpoint(tmp_path: Path, fake: FakePro) -> None:
    fake.fail["daily_basic"] = [raise_(Exception("抱歉，您没有访问该接口的权限"))]
    with pytest.raises(DataError, match=r"Tushare call daily_basic\(trade_date=\d{8}.*refused"):
        _load(fake, _cfg(tmp_path, fake, daily_basic=True))


def test_namechange_gives_point_in_time_st_flags(tmp_path: Path, fake: FakePro) -> None:
    market = _load(fake, _cfg(tmp_path, fake, namechange=True))
    names = market.namechange
    assert list(names.columns) == ["ts_code", "name", "start_date", "end_date"]
    flags = st_flags(market.daily, names)
    st_code = fake.basic.loc[fake.basic["name"].str.contains("ST"), "ts_code"].item()
    st_since = pd.Timestamp(
        fake.names.loc[fake.names["change_reason"] == "*ST", "start_date"].item()
    )
    daily = market.daily
    expected = (daily["ts_code"] == st_code) & (daily["trade_date"] >= st_since)
    np.testing.assert_array_equal(flags, expected.to_numpy())
    assert expected.any() and ((daily["ts_code"] == st_code) & ~expected).any()


def test_st_flags_do_not_look_ahead(fake: FakePro) -> None:
    daily = pd.DataFrame(
        {
            "ts_code": ["600005.SH"] * 3,
            "trade_date": pd.to_datetime(["20180110", "20180118", "20180119"]),
        }
    )
    names = pd.DataFrame(
        {
            "ts_code": ["600005.SH", "600005.SH"],
            "name": ["合成股份", "*ST合成"],
            "start_date": pd.to_datetime(["20180102", "20180119"]),
            "end_date": pd.to_datetime(["20180118", None]),
        }
    )
    before = st_flags(daily, names)
    later = pd.concat(
        [
            names,
            pd.DataFrame(
                {
                    "ts_code": ["600005.SH"],
                    "name": ["ST后"],
                    "start_date": [pd.Timestamp("20180301")],
                    "end_date": [pd.NaT],
                }
            ),
        ]
    )
    assert before.tolist() == [False, False, True]
    assert st_flags(daily, later).tolist() == before.tolist()  # a later rename changes no past day


def test_namechange_is_refreshed_only_when_the_cache_moves_on(
    tmp_path: Path, fake: FakePro
) -> None:
    _load(fake, _cfg(tmp_path, fake, end=19, namechange=True))
    _load(fake, _cfg(tmp_path, fake, end=19, namechange=True))
    assert len(fake.api_calls("namechange")) == 1
    _load(fake, _cfg(tmp_path, fake, namechange=True))
    assert len(fake.api_calls("namechange")) == 2


def test_the_files_source_keeps_daily_basic_columns(tmp_path: Path, fake: FakePro) -> None:
    market = _load(fake, _cfg(tmp_path, fake, daily_basic=True))
    daily = market.daily.assign(turnover_rate=market.daily["turnover_rate"].astype(str))
    daily.loc[0, "turnover_rate"] = "nan"
    daily.to_csv(tmp_path / "daily.csv", index=False)
    market.index.assign(ts_code="000001.SH").to_csv(tmp_path / "index.csv", index=False)
    cfg = DataConfig(
        source="files", daily=str(tmp_path / "daily.csv"), index=str(tmp_path / "index.csv")
    )
    loaded = load_files(cfg).daily
    assert loaded["turnover_rate"].dtype == np.float32
    assert loaded["turnover_rate"].isna().sum() == 1
    daily = daily.astype({"pb": object})
    daily.loc[1, "pb"] = "abc"
    daily.to_csv(tmp_path / "daily.csv", index=False)
    with pytest.raises(DataError, match=r"column 'pb' is not numeric, e\.g\. 'abc'"):
        load_files(cfg)
