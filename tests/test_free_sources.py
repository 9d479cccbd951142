"""data=baostock and data=akshare: the real client code against fakes in the libraries' shapes
(baostock's text result sets and error codes, akshare's Chinese columns), offline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.akshare import AkshareSource, load_akshare
from ashare_autotune.data.baostock import BaostockSource, load_baostock
from ashare_autotune.data.client import ServiceError
from ashare_autotune.data.compare import compare_returns
from ashare_autotune.errors import DataError
from tests.free_fakes import FakeAkshare, FakeBaostock, ResultData, adjusted, make_market

KINDS = ("baostock", "akshare")


def _setup(kind: str, tmp_path: Path, end_at: int = 29, **overrides):
    market = make_market()
    days = sorted(market.bars["trade_date"].unique())
    fake = FakeBaostock(market) if kind == "baostock" else FakeAkshare(market)
    cfg = DataConfig(
        source=kind,
        start=days[0],
        end=days[end_at],
        cache_dir=str(tmp_path / kind),
        progress=False,
        retry_wait=0.0,
        max_retries=3,
        **overrides,
    )
    return fake, cfg, days


def _load(kind: str, fake, cfg: DataConfig):
    if kind == "baostock":
        return load_baostock(cfg, BaostockSource.from_config(cfg, import_api=lambda: fake))
    return load_akshare(cfg, AkshareSource.from_config(cfg, import_api=lambda: fake))


def _stock_calls(fake) -> list[dict]:
    return [
        c
        for c in fake.calls
        if c["api"] == "stock_zh_a_hist"
        or (c["api"] == "query_history_k_data_plus" and c["code"] != "sh.000001")
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_bars_arrive_in_tushare_columns_and_units(kind: str, tmp_path: Path) -> None:
    fake, cfg, days = _setup(kind, tmp_path, adjust="none")
    daily = _load(kind, fake, cfg).daily
    truth = adjusted(fake.market.bars, "none")
    truth = truth[truth["trade_date"] <= days[29]]
    if kind == "akshare":  # akshare lists only the stocks listed today
        truth = truth[truth["ts_code"].isin(daily["ts_code"].astype(str).unique())]
    got = daily.assign(
        ts_code=daily["ts_code"].astype(str), d=daily["trade_date"].dt.strftime("%Y%m%d")
    )
    both = got.merge(truth, left_on=["ts_code", "d"], right_on=["ts_code", "trade_date"])
    assert len(both) == len(truth) == len(daily)
    np.testing.assert_allclose(both["vol_x"], both["vol_y"], rtol=1e-6)  # lots
    np.testing.assert_allclose(both["amount_x"], both["amount_y"], rtol=1e-5)  # thousand CNY
    np.testing.assert_allclose(both["close_x"], both["close_y"], rtol=1e-6)
    np.testing.assert_allclose(both["change_x"], both["close_x"] - both["pre_close_x"], atol=1e-4)
    assert set(daily["ts_code"].astype(str)) <= set(fake.market.basic["ts_code"])
    assert daily["turnover_rate"].dtype == np.float32


def test_baostock_drops_suspended_rows_and_keeps_blank_turnover_missing(tmp_path: Path) -> None:
    fake, cfg, _ = _setup("baostock", tmp_path)
    daily = _load("baostock", fake, cfg).daily
    code, day = fake.market.suspended[0]
    rows = daily[(daily["ts_code"] == code) & (daily["trade_date"] == pd.Timestamp(day))]
    assert rows.empty  # served with tradestatus 0, never a bar
    assert daily["turnover_rate"].isna().any() and daily["turnover_rate"].notna().any()


@pytest.mark.parametrize("kind", KINDS)
def test_forward_adjusted_returns_match_the_continuous_series(kind: str, tmp_path: Path) -> None:
    fake, cfg, _ = _setup(kind, tmp_path, adjust="qfq")
    daily = _load(kind, fake, cfg).daily
    split_stock = sorted(fake.market.bars["ts_code"].unique())[0]  # splits 2-for-1 mid-window
    got = daily[daily["ts_code"] == split_stock]["close"].astype(float).pct_change().dropna()
    truth = fake.market.bars[fake.market.bars["ts_code"] == split_stock]
    want = truth["close"].iloc[: len(got) + 1].pct_change().dropna()
    tol = 1e-6 if kind == "baostock" else 2e-3  # akshare rounds adjusted prices to 0.01
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=tol)


@pytest.mark.parametrize("kind", KINDS)
def test_a_cached_window_is_answered_with_zero_calls(kind: str, tmp_path: Path) -> None:
    fake, cfg, _ = _setup(kind, tmp_path)
    first = _load(kind, fake, cfg)
    n = len(fake.calls)
    second = _load(kind, fake, cfg)
    assert len(fake.calls) == n  # not even a login
    pd.testing.assert_frame_equal(first.daily, second.daily)


@pytest.mark.parametrize("kind", KINDS)
def test_an_update_asks_only_for_the_days_after_the_cache(kind: str, tmp_path: Path) -> None:
    fake, cfg, days = _setup(kind, tmp_path)
    _load(kind, fake, cfg)
    before = len(_stock_calls(fake))
    cfg.end = days[-1]
    market = _load(kind, fake, cfg)
    later = _stock_calls(fake)[before:]
    # each stock once, from its last cached bar (re-read to detect a re-adjustment) to the end
    assert len(later) == len({c.get("code", c.get("symbol")) for c in later})
    starts = {c["start"].replace("-", "") for c in later}
    assert starts <= {days[29], days[28]} and all(
        c["end"].replace("-", "") == days[-1] for c in later
    )
    assert market.daily["trade_date"].max() == pd.Timestamp(days[-1])
    fresh, cfg2, _ = _setup(kind, tmp_path / "fresh", end_at=len(days) - 1)
    pd.testing.assert_frame_equal(market.daily, _load(kind, fresh, cfg2).daily)


def test_a_re_adjusted_history_is_fetched_again(tmp_path: Path) -> None:
    fake, cfg, days = _setup("baostock", tmp_path, adjust="qfq")
    _load("baostock", fake, cfg)
    bars = fake.market.bars
    code = sorted(bars["ts_code"].unique())[4]
    late = (bars["ts_code"] == code) & (bars["trade_date"] >= days[45])
    for col in ("open", "high", "low", "close", "pre_close"):  # a 1.5x split after the cache
        bars.loc[late, col] = (bars.loc[late, col] / bars.loc[late, "adj_factor"]).round(2) * 1.5
    bars.loc[late, "adj_factor"] = 1.5
    cfg.end = days[-1]
    market = _load("baostock", fake, cfg)
    fresh, cfg2, _ = _setup("baostock", tmp_path / "fresh", end_at=len(days) - 1, adjust="qfq")
    fresh.market = fake.market
    pd.testing.assert_frame_equal(market.daily, _load("baostock", fresh, cfg2).daily)


def _succeed() -> None:
    return None


def _network_failure(kind: str):
    if kind == "baostock":
        return lambda: ResultData([], [], "10002007", "网络接收错误。")

    def fail():
        raise ConnectionError("Connection aborted")

    return fail


@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupted_download_resumes_at_the_first_stock_not_cached(
    kind: str, tmp_path: Path
) -> None:
    fake, cfg, _ = _setup(kind, tmp_path)
    api = "query_history_k_data_plus" if kind == "baostock" else "stock_zh_a_hist"
    # the index (baostock: the same query) and two stocks succeed, the third stock never does
    plan = [_succeed] * (3 if kind == "baostock" else 2) + [
        _network_failure(kind)
    ] * cfg.max_retries
    fake.fail[api] = plan
    with pytest.raises(DataError, match=f"cannot reach the {kind} service: .*failed after 3"):
        _load(kind, fake, cfg)
    cached = sorted(p.stem for p in (Path(cfg.cache_dir) / "bars_qfq").glob("*.parquet"))
    assert len(cached) == 2
    assert not list(Path(cfg.cache_dir).rglob("*.tmp"))
    before = len(_stock_calls(fake))
    market = _load(kind, fake, cfg)
    resumed = {c.get("code", c.get("symbol"))[-6:] for c in _stock_calls(fake)[before:]}
    assert not resumed & {c[:6] for c in cached}  # the cached stocks are not asked again
    assert market.n_stocks == len(cached) + len(resumed)


def test_a_rejected_baostock_call_is_one_line_and_not_retried(tmp_path: Path) -> None:
    fake, cfg, _ = _setup("baostock", tmp_path)
    fake.fail["query_history_k_data_plus"] = [
        lambda: None,
        lambda: ResultData([], [], "10004011", "无效的证券代码"),
    ]
    with pytest.raises(DataError) as err:
        _load("baostock", fake, cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("baostock call query_history_k_data_plus(code=")
    assert "refused: 无效的证券代码 (error_code 10004011)" in message
    assert len(_stock_calls(fake)) == 1
    assert not list((Path(cfg.cache_dir) / "bars_qfq").glob("*"))


def test_baostock_logs_in_again_when_the_server_forgot_the_session(tmp_path: Path) -> None:
    fake, cfg, _ = _setup("baostock", tmp_path)
    fake.fail["query_history_k_data_plus"] = [
        lambda: ResultData([], [], "10001001", "you don't login.")
    ]
    _load("baostock", fake, cfg)
    assert [c["api"] for c in fake.calls].count("login") == 2


@pytest.mark.parametrize("kind", KINDS)
def test_text_in_a_number_is_one_line_naming_the_call_and_leaves_no_file(
    kind: str, tmp_path: Path
) -> None:
    fake, cfg, _ = _setup(kind, tmp_path)
    if kind == "baostock":
        original = fake.query_history_k_data_plus

        def broken(code, fields, *args):
            result = original(code, fields, *args)
            if code != "sh.000001" and result.data:
                result.data[2][fields.split(",").index("close")] = "N/A"
            return result

        fake.query_history_k_data_plus = broken
    else:
        original = fake.stock_zh_a_hist

        def broken(**kw):
            frame = original(**kw)
            return (
                frame.astype({"收盘": object}).assign(**{"收盘": "停牌"}) if len(frame) else frame
            )

        fake.stock_zh_a_hist = broken
    with pytest.raises(
        DataError, match=r"column '(close|收盘)' is not numeric, e\.g\. '(N/A|停牌)'"
    ):
        _load(kind, fake, cfg)
    assert not list((Path(cfg.cache_dir) / "bars_qfq").glob("*"))


def test_service_errors_carry_their_kind() -> None:
    from ashare_autotune.data.baostock import error_kind

    assert error_kind("10002007") == "unreachable"
    assert error_kind("10004011") == "refused"
    assert error_kind("10001001") == "reconnect"
    assert ServiceError("other", "x").kind == "other"


@pytest.mark.parametrize("kind", KINDS)
def test_load_market_reaches_the_installed_library(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ashare_autotune.data.loader import load_market

    fake, cfg, _ = _setup(kind, tmp_path, n_stocks=3)
    monkeypatch.setitem(sys.modules, kind, fake)  # `import baostock` / `import akshare`
    market = load_market(cfg)
    assert market.source == f"{kind}:qfq"
    assert market.n_stocks == 3
    asked = {c.get("code", c.get("symbol")) for c in _stock_calls(fake)}
    assert len(asked) == 3  # only the sampled stocks are downloaded


def test_compare_returns_counts_days_whose_returns_differ() -> None:
    days = pd.to_datetime(["20230103", "20230104", "20230105", "20230106"])
    a = pd.DataFrame(
        {"ts_code": ["A"] * 4 + ["B"] * 4, "trade_date": list(days) * 2,
         "close": [10, 11, 12, 12.0, 5, 5, 5, 5.0]}
    )  # fmt: skip
    b = a.copy()
    b.loc[2, "close"] = 12.01  # A's return on the 5th and 6th both move
    b["close"] = b["close"] * np.where(b["ts_code"] == "B", 3.0, 1.0)  # another qfq anchor
    b = b.drop(index=7)  # B's last day only in a
    out = compare_returns(a, b, "x", "y")
    assert (out.common, out.compared, out.only_a, out.only_b) == (7, 5, 1, 0)
    assert out.differing == 2
    assert out.examples["ts_code"].tolist() == ["A", "A"]
    head = out.lines()[0]
    assert head.startswith("x vs y: 7 common stock-days (1 only in x, 0 only in y)")
    assert "on 2 of 5 (40.00%)" in head


def test_baostock_lists_delisted_stocks_with_industries_but_not_indices(tmp_path: Path) -> None:
    fake, cfg, _ = _setup("baostock", tmp_path)
    basic = _load("baostock", fake, cfg).stock_basic.set_index("ts_code")
    truth = fake.market.basic.set_index("ts_code")
    delisted = truth.index[truth["list_status"] == "D"]
    assert len(delisted) and set(delisted) <= set(basic.index)  # no survivorship bias
    assert "000001.SH" not in basic.index  # the index row (type 2) is not a stock
    for code in basic.index:
        assert basic.loc[code, "industry"] == truth.loc[code, "industry"]
        assert basic.loc[code, "list_date"] == truth.loc[code, "list_date"]
