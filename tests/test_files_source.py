"""The files source: one file or a directory of per-stock files, Tushare column names, trade_date
as YYYYMMDD text or a date; the same bars give the same features whatever the layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.modelling.features import build_features


def _features(market: Market) -> pd.DataFrame:
    return build_features(market.daily, market.index, market.stock_basic)


def _write_per_stock(daily: pd.DataFrame, directory: Path, with_code: bool = True) -> None:
    directory.mkdir()
    for code, bars in daily.groupby("ts_code", observed=True):
        rows = bars if with_code else bars.drop(columns=["ts_code"])
        rows.to_csv(directory / f"{code}.csv", index=False)


def _as_tushare_text(market: Market) -> pd.DataFrame:
    daily = market.daily.copy()
    daily["ts_code"] = daily["ts_code"].astype(str)
    daily["trade_date"] = daily["trade_date"].dt.strftime("%Y%m%d")
    return daily


@pytest.mark.slow
@pytest.mark.realdata
def test_real_data_as_one_csv_per_stock_gives_identical_features(
    shared_data: Path, tmp_path: Path
) -> None:
    files = DataConfig(
        source="files",
        daily=str(shared_data / "daily.parquet"),
        index=str(shared_data / "index_daily.parquet"),
        stock_basic=str(shared_data / "stock_basic.csv"),
    )
    one_file = load_market(files)
    _write_per_stock(pd.read_parquet(shared_data / "daily.parquet"), tmp_path / "bars")
    per_stock = load_market(DataConfig(**{**vars(files), "daily": str(tmp_path / "bars")}))

    assert len(list((tmp_path / "bars").glob("*.csv"))) == one_file.n_stocks == 300
    pd.testing.assert_frame_equal(one_file.daily, per_stock.daily)
    pd.testing.assert_frame_equal(_features(one_file), _features(per_stock))


def test_per_stock_files_may_name_the_stock_in_the_file_name(
    small_market: Market, tmp_path: Path
) -> None:
    daily = _as_tushare_text(small_market)
    daily.to_parquet(tmp_path / "bars.parquet")
    small_market.index.to_parquet(tmp_path / "index.parquet")
    _write_per_stock(daily, tmp_path / "bars", with_code=False)
    one = DataConfig(source="files", daily=str(tmp_path / "bars.parquet"))
    one.index = str(tmp_path / "index.parquet")
    directory = DataConfig(**{**vars(one), "daily": str(tmp_path / "bars")})
    pd.testing.assert_frame_equal(load_market(one).daily, load_market(directory).daily)


def test_trade_date_may_be_text_or_a_date_in_either_order(
    small_market: Market, tmp_path: Path
) -> None:
    text = _as_tushare_text(small_market)
    dated = text.assign(trade_date=pd.to_datetime(text["trade_date"]).dt.date)
    newest_first = text.iloc[::-1]  # as pro.daily returns them
    small_market.index.to_parquet(tmp_path / "index.parquet")
    loaded = []
    for name, frame in (("text.csv", text), ("dated.parquet", dated), ("desc.csv", newest_first)):
        path = tmp_path / name
        frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
        cfg = DataConfig(source="files", daily=str(path), index=str(tmp_path / "index.parquet"))
        loaded.append(load_market(cfg).daily)
    pd.testing.assert_frame_equal(loaded[0], loaded[1])
    pd.testing.assert_frame_equal(loaded[0], loaded[2])
