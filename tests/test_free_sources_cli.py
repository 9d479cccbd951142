"""fetch_data with data=baostock / data=akshare from the command line, offline: stand-in
packages (tests/fake_baostock, tests/fake_akshare) serve the fakes to the real CLI."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.free_fakes import make_market, read_call_log

KINDS = ("baostock", "akshare")
DAYS = sorted(make_market().bars["trade_date"].unique())
LOCK_WAIT = "another process is updating the cache"
TOKEN = "tk-fake-0123456789"


def _command(kind: str, cwd: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ashare_autotune.fetch_data",
        f"hydra.run.dir={cwd / 'hydra'}",
        f"data={kind}",
        f"data.start={DAYS[0]}",
        "data.cache_dir=cache",
        "data.progress=false",
        "data.retry_wait=0",
        *overrides,
    ]


def _env(call_log: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "HYDRA", "TUSHARE"))}
    env |= {"FAKE_TUSHARE_TOKEN": TOKEN, "TUSHARE_TOKEN": TOKEN, "FAKE_TUSHARE_STOCKS": "6"}
    env["FAKE_TUSHARE_DAYS"] = str(len(DAYS))
    fakes = [str(ROOT / "tests" / d) for d in ("fake_baostock", "fake_akshare", "fake_tushare")]
    env["PYTHONPATH"] = os.pathsep.join([*fakes, str(ROOT / "src"), str(ROOT)])
    if call_log is not None:
        env["FAKE_CALL_LOG"] = str(call_log)
    return env | extra


def _run(kind: str, cwd: Path, *overrides: str, **env: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        _command(kind, cwd, *overrides),
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _snapshot(cache: Path) -> dict[str, str]:
    """Every data file of a cache with its content hash (the lock file is not data)."""
    return {
        str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cache.rglob("*"))
        if p.is_file() and p.name != ".update.lock"
    }


@pytest.mark.parametrize("kind", KINDS)
def test_offline_fetch_is_one_line_and_leaves_the_cache_as_it_was(
    kind: str, tmp_path: Path
) -> None:
    first = _run(kind, tmp_path, f"data.end={DAYS[20]}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _snapshot(tmp_path / "cache")
    offline = _run(kind, tmp_path, f"data.end={DAYS[-1]}", FAKE_OFFLINE="1")
    assert offline.returncode == 2
    lines = offline.stderr.strip().splitlines()
    assert len(lines) == 1, offline.stderr
    assert lines[0].startswith(f"error: cannot reach the {kind} service: "), lines[0]
    assert "check the network and run the same command again" in lines[0]
    assert "Traceback" not in offline.stderr + offline.stdout
    assert _snapshot(tmp_path / "cache") == before


def _wait_until(check, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _data_calls(log: Path) -> list[tuple[str, ...]]:
    calls = [c for c in read_call_log(log) if c["api"] != "login"]
    return [tuple(f"{k}={v}" for k, v in sorted(c.items()) if k != "pid") for c in calls]


@pytest.mark.slow
@pytest.mark.parametrize("kind", (*KINDS, "tushare"))
def test_two_fetches_at_once_leave_the_cache_of_one_run_and_repeat_no_call(
    kind: str, tmp_path: Path
) -> None:
    together, alone = tmp_path / "together", tmp_path / "alone"
    together.mkdir()
    end = f"data.end={DAYS[-1]}"
    log = tmp_path / "together.jsonl"
    release = tmp_path / "release"
    # the first process stops mid-download, holding the lock, until the second one is waiting
    first = subprocess.Popen(
        _command(kind, together / "a", end),
        cwd=together,
        env=_env(log, FAKE_HOLD_FILE=str(release)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_until(lambda: len(read_call_log(log)) >= 3, "the first process to start downloading")
    second = subprocess.Popen(
        _command(kind, together / "b", end),
        cwd=together,
        env=_env(log),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    hydra_log = together / "b" / "hydra" / "fetch_data.log"
    _wait_until(
        lambda: hydra_log.exists() and LOCK_WAIT in hydra_log.read_text(), "the second to wait"
    )
    release.touch()
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    nothing = (
        "fetched 0 new day(s) with 0 API call(s)"
        if kind == "tushare"
        else "fetched 0 stock(s) with 0 call(s)"
    )
    assert nothing in outs[1][0]  # the second found it all done

    single_log = tmp_path / "alone.jsonl"
    done = _run(kind, alone, end, FAKE_CALL_LOG=str(single_log))
    assert done.returncode == 0, done.stderr[-2000:]
    calls = _data_calls(log)
    assert len(calls) == len(set(calls))  # no call made twice
    assert sorted(calls) == sorted(_data_calls(single_log))
    shared, single = together / "cache", alone / "cache"
    assert sorted(_snapshot(shared)) == sorted(_snapshot(single))
    for name in _snapshot(single):
        pd.testing.assert_frame_equal(
            pd.read_parquet(shared / name), pd.read_parquet(single / name)
        )


def test_check_compares_daily_returns_of_two_sources(tmp_path: Path) -> None:
    codes = "[000001.SZ,300001.SZ,600003.SH]"
    done = _run(
        "baostock", tmp_path, f"data.end={DAYS[-1]}", f"data.ts_codes={codes}", "check=akshare"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    head = next(
        line for line in done.stdout.splitlines() if line.startswith("baostock vs akshare")
    )
    found = re.search(r": (\d+) common stock-days \(0 only in baostock, 0 only in akshare\)", head)
    assert found and int(found.group(1)) > 3 * len(DAYS) // 2, head
    assert "returns differ by more than 0.0001 on" in head


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_the_same_training_command_works_with_a_free_source(
    kind: str, tmp_path: Path, tracking_uri: str
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "ashare_autotune.train",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        "debug=default",
        f"data={kind}",
        "data.start=20180102",
        "data.end=20190401",
        "data.cache_dir=cache",
        "data.progress=false",
    ]
    env = _env(FAKE_FREE_STOCKS="40", FAKE_FREE_DAYS="300", MLFLOW_TRACKING_URI=tracking_uri)
    env = {k: v for k, v in env.items() if not k.startswith(("MLFLOW_RUN", "MLFLOW_EXPERIMENT"))}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{kind}:qfq" in done.stdout + done.stderr  # the run really used the free source
    assert "done: run" in done.stdout + done.stderr


def test_check_against_the_same_source_is_one_line(tmp_path: Path) -> None:
    done = _run("baostock", tmp_path, f"data.end={DAYS[5]}", "check=baostock")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: config key 'check'='baostock': must be another of tushare, baostock, akshare"
    )
