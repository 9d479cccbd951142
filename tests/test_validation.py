"""Every bad input in the README's table gives exactly the message the table shows.

Each case writes a small, otherwise valid dataset (bars.csv, index.csv) with one defect, runs the
real loading or configuration code and returns what the user sees (the `error:` line, or the log
line for a problem that is repaired). The README rows are parsed and compared word for word.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.errors import HydraException

from ashare_autotune.config.backtest import BacktestConfig
from ashare_autotune.config.schema import AppConfig, DataConfig, LabelConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.data.market import Market
from ashare_autotune.data.sanity import check_market, check_moves
from ashare_autotune.data.synthetic import make_synthetic_market
from ashare_autotune.data.tushare import load_tushare
from ashare_autotune.data.tushare_client import TushareClient, resolve_token
from ashare_autotune.errors import UserError, config_error_text, report_io_faults
from ashare_autotune.evaluation.backtest import run_backtest
from ashare_autotune.jobs.pipeline import run_training
from ashare_autotune.modelling.dataset import labelled_rows
from ashare_autotune.models.build import build_model
from ashare_autotune.store_locks import hold_study
from ashare_autotune.tracking import runs as tracking
from tests.conftest import ROOT, cli_env, copy_stores, run_entry_point, train_command
from tests.served_model_cases import SERVED_CASE_IDS, served_cases
from tests.test_entrypoint import _train_cli

Compose = Callable[..., AppConfig]


def _bars() -> tuple[pd.DataFrame, pd.DataFrame]:
    market = make_synthetic_market(n_stocks=4, n_days=30, seed=11)
    daily = market.daily.copy()
    daily["ts_code"] = daily["ts_code"].astype(str)
    daily["trade_date"] = daily["trade_date"].dt.strftime("%Y%m%d")
    index = market.index.assign(trade_date=market.index["trade_date"].dt.strftime("%Y%m%d"))
    return daily, index


def _load(
    tmp: Path,
    daily: pd.DataFrame | None = None,
    index: pd.DataFrame | None = None,
    **cfg: object,
) -> str:
    """Write bars.csv/index.csv (defaults: valid) and load them; returns the error message."""
    good_daily, good_index = _bars()
    (good_daily if daily is None else daily).to_csv(tmp / "bars.csv", index=False)
    (good_index if index is None else index).to_csv(tmp / "index.csv", index=False)
    data = {"source": "files", "daily": str(tmp / "bars.csv"), "index": str(tmp / "index.csv")}
    return _error(lambda: load_market(DataConfig(**(data | cfg))))


def _error(action: Callable[[], object]) -> str:
    try:
        action()
    except UserError as exc:
        return str(exc)
    except HydraException as exc:
        return config_error_text(exc)
    raise AssertionError("no error raised")


def _edit(column: str, row: int, value: object) -> pd.DataFrame:
    daily, _ = _bars()
    daily[column] = daily[column].astype(object)
    daily.loc[row, column] = value
    return daily


def _swap_rows(a: int, b: int) -> pd.DataFrame:
    daily, _ = _bars()
    order = list(range(len(daily)))
    order[a], order[b] = order[b], order[a]
    return daily.iloc[order]


def _per_stock_dir(tmp: Path, drop: str) -> str:
    daily, index = _bars()
    (tmp / "bars").mkdir()
    for k, (code, rows) in enumerate(daily.groupby("ts_code")):
        rows.drop(columns=[drop] if k == 1 else []).to_csv(tmp / "bars" / f"{code}.csv")
    index.to_csv(tmp / "index.csv", index=False)
    cfg = DataConfig(source="files", daily=str(tmp / "bars"), index=str(tmp / "index.csv"))
    return _error(lambda: load_market(cfg))


def _logged(caplog: pytest.LogCaptureFixture, pattern: str, load: Callable[[], str]) -> str:
    with caplog.at_level(logging.INFO):
        assert load() == "", "the problem is repaired, not an error"
    return next(r.getMessage() for r in caplog.records if re.search(pattern, r.getMessage()))


def _no_error(action: Callable[[], object]) -> str:
    action()
    return ""


def _zero_volume(tmp: Path) -> str:
    daily = _edit("vol", 5, 0.0)
    daily.to_csv(tmp / "bars.csv", index=False)
    _bars()[1].to_csv(tmp / "index.csv", index=False)
    cfg = DataConfig(source="files", daily=str(tmp / "bars.csv"), index=str(tmp / "index.csv"))
    return _no_error(lambda: load_market(cfg))


def _suspension(tmp: Path) -> str:
    daily, index = _bars()
    daily.drop(index=[7, 8]).to_csv(tmp / "bars.csv", index=False)
    index.to_csv(tmp / "index.csv", index=False)
    cfg = DataConfig(source="files", daily=str(tmp / "bars.csv"), index=str(tmp / "index.csv"))
    return _no_error(lambda: load_market(cfg))


def _universe_without_amount(tmp: Path, compose: Compose) -> str:
    daily, index = _bars()
    daily.drop(columns=["amount"]).to_csv(tmp / "bars.csv", index=False)
    index.to_csv(tmp / "index.csv", index=False)
    cfg = DataConfig(source="files", daily=str(tmp / "bars.csv"), index=str(tmp / "index.csv"))
    rules = compose("universe.min_amount=20000").universe.rules()
    return _error(lambda: labelled_rows(load_market(cfg), None, LabelConfig(), rules))


def _rejected_token(tmp: Path) -> str:
    def reject() -> object:
        raise Exception("抱歉，您的token不对，请确认。")

    cfg = DataConfig(source="tushare", start="20230101", end="20230110", cache_dir=str(tmp))
    return _error(lambda: load_tushare(cfg, TushareClient(reject), today="20230110"))


def _missing_token(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    return _error(lambda: resolve_token(tmp / ".env"))


def _study_in_use(tmp: Path) -> str:
    storage = f"sqlite:///{tmp / 'optuna.db'}"
    with hold_study(storage, "busy"):  # as a live all-in-one process holds its study
        return _error(lambda: hold_study(storage, "busy"))


_TWICE: list[Path] = []  # the stores of study 'twice', trained once in this process


def _registered_twice(tmp: Path, compose: Compose, mp: pytest.MonkeyPatch) -> None:
    """Work in `tmp` on stores where study 'twice' (2 trials) is complete and registered: the
    first call in this process trains it (in a directory of its own), every call gets a copy
    as if it had been trained in `tmp`."""
    if not _TWICE:
        done = Path(tempfile.mkdtemp(prefix="study-twice-"))  # under the session's TMPDIR
        with pytest.MonkeyPatch.context() as here:
            here.chdir(done)
            here.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{done / 'mlflow.db'}")
            run_training(compose("tuning.study_name=twice", "tuning.n_trials=2"))
        _TWICE.append(done)
    copy_stores(_TWICE[0], tmp)
    mp.chdir(tmp)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")


def _study_registered(tmp: Path, compose: Compose, mp: pytest.MonkeyPatch) -> str:
    _registered_twice(tmp, compose, mp)  # completes and registers the study
    return _no_error(lambda: run_training(compose("tuning.study_name=twice", "tuning.n_trials=2")))


def _split_10_for_1() -> pd.DataFrame:
    """000001.SZ's bars from 20180118 on as an unadjusted 10:1 split leaves them: a tenth
    (pre_close too, as the exchange sets it on the ex-date)."""
    daily, _ = _bars()
    after = (daily["ts_code"] == "000001.SZ") & (daily["trade_date"] >= "20180118")
    for col in ("open", "high", "low", "close", "pre_close"):
        daily.loc[after, col] = daily.loc[after, col] / 10
    return daily


def _with_factors(daily: pd.DataFrame) -> pd.DataFrame:
    """The bars with an adj_factor column: 10 on 000001.SZ's split from 20180118 on, else 1."""
    after = (daily["ts_code"] == "000001.SZ") & (daily["trade_date"] >= "20180118")
    return daily.assign(adj_factor=np.where(after, 10.0, 1.0))


def _repaired_split(tmp: Path) -> Market:
    """The market of files holding the 10:1 split with its adjustment factors."""
    _with_factors(_split_10_for_1()).to_csv(tmp / "bars.csv", index=False)
    _bars()[1].to_csv(tmp / "index.csv", index=False)
    cfg = DataConfig(source="files", daily=str(tmp / "bars.csv"), index=str(tmp / "index.csv"))
    return load_market(cfg)


def _rising_files(tmp: Path) -> list[str]:
    """Files of 4 stocks over 120 days, each rising 2% a day (open at the previous close): a
    touch label (+4% within 3-5 days) is positive on every row. Returns the data overrides."""
    market = make_synthetic_market(n_stocks=4, n_days=120, seed=11)
    daily = market.daily.assign(ts_code=market.daily["ts_code"].astype(str))
    day = daily.groupby("ts_code").cumcount().to_numpy()
    close = 10 * 1.02 ** (day + 1)
    daily = daily.assign(open=close / 1.02, pre_close=close / 1.02, low=close / 1.02)
    daily = daily.assign(
        close=close, high=close, trade_date=daily["trade_date"].dt.strftime("%Y%m%d")
    )
    daily.to_csv(tmp / "bars.csv", index=False)
    index = market.index.assign(trade_date=market.index["trade_date"].dt.strftime("%Y%m%d"))
    index.to_csv(tmp / "index.csv", index=False)
    return ["data=files", f"data.daily={tmp / 'bars.csv'}", f"data.index={tmp / 'index.csv'}"]


def _label_one_class(tmp: Path, compose: Compose, mp: pytest.MonkeyPatch) -> str:
    mp.chdir(tmp)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    # the files' one index as benchmark (the default one is not in them)
    app = compose(*_rising_files(tmp), "label.kind=touch", "backtest.benchmark=000001.SH")
    return _error(lambda: run_training(app))


def _rerun_with(tmp: Path, compose: Compose, mp: pytest.MonkeyPatch, changed: str) -> str:
    """Complete and register study 'twice', then rerun it with one setting changed."""
    _registered_twice(tmp, compose, mp)
    return _error(
        lambda: run_training(compose("tuning.study_name=twice", "tuning.n_trials=2", changed))
    )


def _impossible_date(compose: Compose) -> str:
    return _error(lambda: compose("data.end=20180230"))


def _read_only_file_system(tmp: Path, template: Path) -> str:
    """A real read-only file system (errno 30, EROFS): the folder the train command writes its
    output to, bind-mounted read-only in a private mount namespace (`unshare -rm`, no
    privileges needed; chmod would not stop root)."""
    if not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) for a read-only mount")
    (tmp / "out").mkdir()
    shutil.copy(template, tmp / "mlflow.db")
    mount = f'mount -o bind,ro {tmp / "out"} {tmp / "out"} && exec "$@"'
    train = train_command(tmp, f"hydra.run.dir={tmp / 'out' / 'hydra'}")
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", mount, "sh", *train],
        cwd=tmp,
        env=cli_env(f"sqlite:///{tmp / 'mlflow.db'}"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.stderr.startswith(("unshare:", "mount:", "sh:")):
        pytest.skip(f"no private read-only mount here: {done.stderr.strip()}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr.strip().removeprefix("error: ")


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """`path` that no process may write, root included (`chattr +i`: chmod does not stop root)."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _read_only_store(tmp: Path, template: Path) -> str:
    db = tmp / "store.db"
    shutil.copy(template, db)
    with _immutable(db):
        return _error(lambda: tracking.setup(f"sqlite:///{db}", "bad-input"))


def _interrupted() -> str:
    def job() -> None:
        raise KeyboardInterrupt

    shown = io.StringIO()
    with redirect_stderr(shown), pytest.raises(SystemExit) as stopped:
        report_io_faults(job)()
    assert stopped.value.code == 130
    return shown.getvalue().strip().removeprefix("error: ")


def _cases(
    tmp: Path,
    compose: Compose,
    caplog: pytest.LogCaptureFixture,
    mp: pytest.MonkeyPatch,
    template: Path,
) -> dict[str, Callable[[], str]]:
    daily, index = _bars()
    first_day = index["trade_date"].iloc[3]
    return {
        "missing-column": lambda: _load(tmp, daily.drop(columns=["close"])),
        "non-numeric-price": lambda: _load(tmp, _edit("close", 3, "--")),
        "missing-price": lambda: _load(tmp, _edit("open", 4, None)),
        "non-positive-price": lambda: _load(tmp, _edit("low", 6, 0.0)),
        "bad-date": lambda: _load(tmp, _edit("trade_date", 2, "2023-13-45")),
        "duplicate-row": lambda: _load(tmp, pd.concat([daily, daily.iloc[[9]]])),
        "dates-out-of-order": lambda: _load(tmp, _swap_rows(10, 12)),
        "index-not-covering": lambda: _load(tmp, None, index[index["trade_date"] != first_day]),
        "empty-selection": lambda: _load(tmp, start="20300101"),
        "file-not-found": lambda: _error(
            lambda: load_market(DataConfig(source="files", daily=str(tmp / "nope.csv"), index="x"))
        ),
        "directory-file-lacks-column": lambda: _per_stock_dir(tmp, "vol"),
        "zero-volume": lambda: _logged(caplog, "zero volume", lambda: _zero_volume(tmp)),
        "suspended-days": lambda: _logged(caplog, "without a bar", lambda: _suspension(tmp)),
        "unknown-key": lambda: _error(lambda: compose("tuning.n_trails=3")),
        "wrong-type": lambda: _error(lambda: compose("tuning.n_trials=abc")),
        "split-not-summing-to-1": lambda: _error(lambda: compose("split.train=0.7")),
        "precision-outside-0-1": lambda: _error(lambda: compose("threshold.target_precision=1.5")),
        "n-trials-below-1": lambda: _error(lambda: compose("tuning.n_trials=0")),
        "min-days-above-max-days": lambda: _error(lambda: compose("label.min_days=6")),
        "bad-adjust": lambda: _error(lambda: compose("data=tushare", "data.adjust=raw")),
        "bad-label-entry": lambda: _error(lambda: compose("label.entry=bogus")),
        "universe-needs-amount": lambda: _universe_without_amount(tmp, compose),
        "missing-token": lambda: _missing_token(tmp, mp),
        "rejected-token": lambda: _rejected_token(tmp),
        "study-in-use": lambda: _study_in_use(tmp),
        "study-registered": lambda: _logged(
            caplog, "is complete", lambda: _study_registered(tmp, compose, mp)
        ),
        "unadjusted-split": lambda: _load(tmp, _split_10_for_1()),
        "split-with-adj-factor": lambda: _logged(
            caplog, "adj_factor changes", lambda: _no_error(lambda: _repaired_split(tmp))
        ),
        "close-above-high": lambda: _load(tmp, _edit("close", 5, 3 * daily.loc[5, "high"])),
        "low-above-high": lambda: _load(tmp, _edit("low", 6, daily.loc[6, "high"] + 1)),
        "label-one-class": lambda: _label_one_class(tmp, compose, mp),
        "metric-changed": lambda: _rerun_with(tmp, compose, mp, "tuning.metric=rank_ic"),
        "threshold-changed": lambda: _rerun_with(
            tmp, compose, mp, "threshold.target_precision=0.55"
        ),
        "impossible-date": lambda: _impossible_date(compose),
        "header-only-file": lambda: _load(tmp, daily.iloc[:0]),
        "read-only-file-system": lambda: _read_only_file_system(tmp, template),
        "read-only-store": lambda: _read_only_store(tmp, template),
        "interrupted": _interrupted,
        "negative-slippage": lambda: _error(lambda: compose("backtest.slippage_bps=-1")),
        "unknown-baseline": lambda: _error(
            lambda: compose("backtest.baselines=[reversal_20,momentum_12]")
        ),
        "volume-cap-outside-0-1": lambda: _error(lambda: compose("backtest.max_volume_share=1.5")),
        "book-larger-than-universe": lambda: _error(_book_of_50_on_4_stocks),
        "unknown-model": lambda: _error(lambda: compose("model=foo")),
        "objective-a-model-lacks": lambda: _error(
            lambda: build_model(compose("model=xgboost", "model.objective=lambdarank").model)
        ),
        "ensemble-without-members": lambda: _error(
            lambda: compose("model=ensemble", "~model.members.ranker", "~model.members.classifier")
        ),
    } | served_cases(tmp)


def _book_of_50_on_4_stocks() -> None:
    """The default topk_dropout book (50 names, 5 replaced a day) on a 4-stock market."""
    daily, _ = _bars()
    flags = dict.fromkeys(("open_limit_up", "open_limit_down", "one_price_down"), False)
    scores = daily[["ts_code", "trade_date"]].assign(score=daily["close"])
    cfg = BacktestConfig().with_label(LabelConfig())
    run_backtest(scores, daily.assign(**flags), cfg)


CASE_IDS = [
    "missing-column",
    "non-numeric-price",
    "missing-price",
    "non-positive-price",
    "bad-date",
    "duplicate-row",
    "dates-out-of-order",
    "index-not-covering",
    "empty-selection",
    "file-not-found",
    "directory-file-lacks-column",
    "zero-volume",
    "suspended-days",
    "unknown-key",
    "wrong-type",
    "split-not-summing-to-1",
    "precision-outside-0-1",
    "n-trials-below-1",
    "min-days-above-max-days",
    "bad-adjust",
    "bad-label-entry",
    "universe-needs-amount",
    "missing-token",
    "rejected-token",
    "study-in-use",
    "study-registered",
    "unadjusted-split",
    "split-with-adj-factor",
    "close-above-high",
    "low-above-high",
    "label-one-class",
    "metric-changed",
    "threshold-changed",
    "impossible-date",
    "header-only-file",
    "read-only-file-system",
    "read-only-store",
    "interrupted",
    "negative-slippage",
    "unknown-baseline",
    "volume-cap-outside-0-1",
    "book-larger-than-universe",
    "unknown-model",
    "objective-a-model-lacks",
    "ensemble-without-members",
    *SERVED_CASE_IDS,
]


def readme_messages() -> dict[str, str]:
    """The bad-input table of README.md: case id -> the message the user sees."""
    rows = re.findall(
        r"^\| `([a-z0-9-]+)` \|[^|]*\| `(.*)` \|$", (ROOT / "README.md").read_text(), re.M
    )
    return dict(rows)


def test_the_readme_table_has_one_row_per_tested_case() -> None:
    assert list(readme_messages()) == CASE_IDS


@pytest.mark.parametrize("case", CASE_IDS)
def test_a_bad_input_gives_the_message_in_the_readme(
    case: str,
    tmp_path: Path,
    compose_app: Compose,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    _migrated_db: Path,
) -> None:
    message = _cases(tmp_path, compose_app, caplog, monkeypatch, _migrated_db)[case]()
    assert "\n" not in message
    assert message.replace(str(tmp_path), "<dir>") == readme_messages()[case]


def test_a_wrong_type_on_the_command_line_is_one_line_without_traceback(
    tmp_path: Path, tracking_uri: str
) -> None:
    done = _train_cli(tmp_path, tracking_uri, "tuning.n_trials=abc")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: config key 'tuning.n_trials': "
        "Value 'abc' of type 'str' could not be converted to Integer"
    ]


def test_a_universe_rule_on_missing_data_stops_the_train_command_in_one_line(
    tmp_path: Path, tracking_uri: str
) -> None:
    daily, index = _bars()
    daily.drop(columns=["amount"]).to_csv(tmp_path / "bars.csv", index=False)
    index.to_csv(tmp_path / "index.csv", index=False)
    done = _train_cli(
        tmp_path,
        tracking_uri,
        "data=files",
        f"data.daily={tmp_path / 'bars.csv'}",
        f"data.index={tmp_path / 'index.csv'}",
        "universe.min_amount=20000",
        "backtest.benchmark=000001.SH",  # the file's one index (an unknown one fails first)
    )
    assert done.returncode == 2
    # stderr may also hold MLflow's own log line about creating the experiment
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert errors[0].startswith("error: files:")
    assert "universe.min_amount needs column 'amount'" in errors[0]


def _moves(closes: list[float], code: str = "600000.SH", skip: int = 0, listed: bool = False):
    """One stock's bars (open = previous close, pre_close too) on a 40-day calendar, without a
    bar for `skip` trading days before its last one; `listed`: its first bar is its list_date
    and comes after the calendar's first day. Returns check_moves' error message or ""."""
    calendar = pd.bdate_range("2021-01-04", periods=40).to_numpy("datetime64[ns]")
    first = 1 if listed else 0
    days = list(calendar[first : first + len(closes) - 1]) + [
        calendar[first + len(closes) - 1 + skip]
    ]
    close = pd.Series(closes, dtype="float32")
    pre = close.shift().fillna(close.iloc[0])
    daily = pd.DataFrame(
        {"ts_code": code, "trade_date": days, "open": pre, "close": close, "pre_close": pre}
    )
    basic = pd.DataFrame(
        {
            "ts_code": [code],
            "list_date": [pd.Timestamp(days[0]).strftime("%Y%m%d") if listed else None],
        }
    )
    try:
        check_moves(daily, basic, calendar, "bars")
    except UserError as exc:
        return str(exc)
    return ""


def test_a_move_within_the_boards_limit_and_the_tolerance_passes_beyond_it_fails() -> None:
    # main board: 10% limit + 5 points + a tick of 0.01 CNY on 10.00 -> up to 11.51
    assert _moves([10.0, 10.0, 11.50]) == ""
    assert "close 11.6 is +16.0% from the previous close 10" in _moves([10.0, 10.0, 11.60])
    assert "beyond the +-10% limit" in _moves([10.0, 10.0, 11.60])
    # ChiNext: 20% (+5 points): +24% passes, +26% does not
    assert _moves([10.0, 10.0, 12.40], code="300001.SZ") == ""
    assert "+-20% limit" in _moves([10.0, 10.0, 12.60], code="300001.SZ")
    # a tick is 1.7% of a 0.58 CNY price: 0.58 -> 0.73 (+25.9%) on ChiNext passes
    assert _moves([0.58, 0.58, 0.73], code="300001.SZ") == ""


def test_a_resumption_after_20_trading_days_and_a_listings_first_5_days_may_gap() -> None:
    jump = [10.0, 10.0, 10.0, 20.0]  # +100% on the last bar
    assert _moves(jump, skip=20) == ""
    assert "close 20 is +100.0% from the previous close 10" in _moves(jump, skip=19)
    assert _moves([10.0, 11.0, 12.0, 13.0, 20.0], listed=True) == ""  # its 5th bar
    assert "+-10% limit" in _moves([10.0, 11.0, 12.0, 13.0, 13.0, 20.0], listed=True)


def test_a_split_its_adjustment_factors_explain_is_forward_adjusted_the_others_refused(
    tmp_path: Path,
) -> None:
    """With adj_factor, the 10:1 split's stock is forward-adjusted: a tenth of the original
    prices on every day, no jump (the factors dropped); a jump on a day its factor does not
    change is still the one-line error."""
    original, _ = _bars()
    daily = _repaired_split(tmp_path).daily
    assert "adj_factor" not in daily.columns
    split = daily["ts_code"] == "000001.SZ"
    for column in ("open", "high", "low", "close", "pre_close"):
        expected = original.loc[original["ts_code"] == "000001.SZ", column].to_numpy() / 10
        np.testing.assert_allclose(daily.loc[split, column], expected, rtol=1e-6)
        kept = original.loc[original["ts_code"] != "000001.SZ", column].to_numpy()
        np.testing.assert_allclose(daily.loc[~split, column], kept, rtol=1e-6)
    unexplained = _with_factors(_split_10_for_1()).assign(adj_factor=1.0)
    assert "an unadjusted split or bonus issue?" in _load(tmp_path, unexplained)


@pytest.mark.parametrize("seed", [0, 7])
def test_the_synthetic_market_passes_the_bar_sanity_checks(seed: int) -> None:
    check_market(make_synthetic_market(n_stocks=300, n_days=750, seed=seed))


def test_an_unadjusted_split_stops_the_train_command_in_one_line(
    tmp_path: Path, tracking_uri: str
) -> None:
    _split_10_for_1().to_csv(tmp_path / "bars.csv", index=False)
    _bars()[1].to_csv(tmp_path / "index.csv", index=False)
    done = run_entry_point(
        "train",
        tmp_path,
        tracking_uri,
        "debug=default",
        "data=files",
        f"data.daily={tmp_path / 'bars.csv'}",
        f"data.index={tmp_path / 'index.csv'}",
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "-90.1% overnight from the previous close 31.9417" in errors[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "overrides", "key"),
    [
        ("train", ("debug=default", "data.end=20180230"), "data.end"),
        ("predict", ("date=20180230",), "date"),
        ("evaluate", ("start=20180230",), "start"),
        ("backtest", ("model_uri=models:/m/1", "start=20180101", "end=20180230"), "end"),
    ],
)
def test_an_impossible_date_is_one_line_in_every_entry_point(
    module: str, overrides: tuple[str, ...], key: str, tmp_path: Path, tracking_uri: str
) -> None:
    done = run_entry_point(module, tmp_path, tracking_uri, *overrides)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: config key '{key}'='20180230': is not a calendar date: 2018-02 has 28 days"
    ]
