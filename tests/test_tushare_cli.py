"""`data=tushare` from the command line, offline: a stand-in `tushare` package (tests/fake_tushare)
serves the fake pro API to the real CLI. The token must not leak anywhere the run writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.tushare_fake import make_fake_pro

TOKEN = "tk-0123456789abcdef-SECRET"
FAKE = {"FAKE_TUSHARE_STOCKS": "40", "FAKE_TUSHARE_DAYS": "300"}


def _days() -> list[str]:
    fake = make_fake_pro(n_stocks=4, n_days=int(FAKE["FAKE_TUSHARE_DAYS"]))
    return sorted(fake.daily_truth["trade_date"].unique())


def _run(module: str, cwd: Path, *overrides: str, token: str | None = TOKEN, **env: str):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_RUN", "MLFLOW_EXPERIMENT", "TUSHARE", "HYDRA"))
    }
    paths = [str(ROOT / "tests" / "fake_tushare"), str(ROOT / "src"), str(ROOT)]
    base |= FAKE | {"FAKE_TUSHARE_TOKEN": TOKEN, "PYTHONPATH": os.pathsep.join(paths)} | env
    if token is not None:
        base["TUSHARE_TOKEN"] = token
    cmd = [sys.executable, "-m", module, f"hydra.run.dir={cwd / 'hydra'}", *overrides]
    return subprocess.run(cmd, cwd=cwd, env=base, capture_output=True, text=True, timeout=300)


def _fetched(stdout: str) -> tuple[int, int]:
    found = re.search(r"fetched (\d+) new day\(s\) with (\d+) API call\(s\)", stdout)
    assert found, stdout
    return int(found.group(1)), int(found.group(2))


@pytest.mark.slow  # two command-line runs (~6 CPU-s)
def test_fetch_data_adds_only_missing_days_then_makes_no_call(tmp_path: Path) -> None:
    days = _days()
    common = ("data=tushare", f"data.start={days[0]}", "data.cache_dir=cache")
    first = _run("ashare_autotune.fetch_data", tmp_path, *common, f"data.end={days[99]}")
    assert first.returncode == 0, first.stderr[-2000:]
    assert _fetched(first.stdout)[0] == 100
    second = _run("ashare_autotune.fetch_data", tmp_path, *common, f"data.end={days[-1]}")
    assert second.returncode == 0, second.stderr[-2000:]
    assert _fetched(second.stdout)[0] == len(days) - 100
    third = _run("ashare_autotune.fetch_data", tmp_path, *common, f"data.end={days[-1]}")
    assert _fetched(third.stdout) == (0, 0)
    assert f"{len(days)} trading days {days[0]}..{days[-1]}" in third.stdout


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "error: no Tushare token: set the TUSHARE_TOKEN environment variable"),
        ("wrong-token", "error: Tushare rejected the token"),
    ],
)
def test_a_missing_or_rejected_token_is_one_line(
    tmp_path: Path, token: str | None, message: str
) -> None:
    done = _run("ashare_autotune.fetch_data", tmp_path, "data.end=20180301", token=token)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_token_never_appears_in_logs_mlflow_hydra_config_or_cache(
    tmp_path: Path, tracking_uri: str
) -> None:
    (tmp_path / ".env").write_text(f"TUSHARE_TOKEN={TOKEN}\n")  # read from .env this time
    days = _days()
    done = _run(
        "ashare_autotune.train",
        tmp_path,
        "debug=default",
        "data=tushare",
        "data.n_stocks=null",
        f"data.start={days[0]}",
        f"data.end={days[-1]}",
        "data.cache_dir=cache",
        token=None,
        MLFLOW_TRACKING_URI=tracking_uri,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tushare:qfq" in done.stdout + done.stderr  # the run really used data=tushare
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".env"]
    kinds = {p.suffix for p in written}
    assert {".db", ".parquet", ".yaml", ".log", ".json"} <= kinds, kinds
    leaks = [str(p) for p in written if TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    assert TOKEN not in done.stdout + done.stderr
