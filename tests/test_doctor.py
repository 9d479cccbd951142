"""`python -m ashare_autotune.doctor`: one table of environment checks that fail by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from ashare_autotune import doctor
from tests.conftest import cli_env


def rows_by_check(rows: list[doctor.Row]) -> dict[str, doctor.Row]:
    return {r.check: r for r in rows}


def test_a_healthy_debug_setup_passes_every_check(tracking_uri: str, tmp_path: Path) -> None:
    rows = rows_by_check(doctor.run_checks(["debug=default"], env_file=tmp_path / ".env"))
    assert {r.status for r in rows.values()} <= {"OK", "SKIP"}
    assert rows["package mlflow"].detail == mlflow.__version__
    assert rows["tracking URI writable"].status == "OK"
    runs = mlflow.search_runs(search_all_experiments=True, run_view_type=3)
    assert list(runs["tags.ashare_doctor"]) == ["1"]  # the probe run exists, and is deleted:
    assert mlflow.search_runs(search_all_experiments=True).empty
    assert rows["study storage"].status == "OK"
    assert rows["memory"].detail.endswith(f"needed for {40 * 300:,} bars")


def test_an_unknown_key_fails_the_config_row_and_skips_the_rest(tmp_path: Path) -> None:
    rows = doctor.run_checks(["tuning.n_trails=3"], env_file=tmp_path / ".env")
    assert rows[-1].check == "config composes" and rows[-1].status == "FAIL"
    assert "n_trails" in rows[-1].detail


def test_an_unreachable_tracking_server_and_database_fail_by_name(tmp_path: Path) -> None:
    rows = rows_by_check(
        doctor.run_checks(
            [
                "debug=default",
                "mlflow.tracking_uri=http://127.0.0.1:9",
                "tuning.storage=postgresql://u:secret@127.0.0.1:9/db",
            ],
            env_file=tmp_path / ".env",
        )
    )
    assert rows["tracking URI writable"].status == "FAIL"
    assert "127.0.0.1:9" in rows["tracking URI writable"].detail
    assert rows["study storage"].status == "FAIL"
    assert "tuning.storage='postgresql://***@127.0.0.1:9/db'" in rows["study storage"].detail
    assert "secret" not in rows["study storage"].detail


def test_missing_data_file_is_named(tracking_uri: str, tmp_path: Path) -> None:
    present = tmp_path / "index.csv"
    present.write_text("ts_code,trade_date,close\n")
    rows = rows_by_check(
        doctor.run_checks(
            ["data=files", f"data.daily={tmp_path / 'nope.parquet'}", f"data.index={present}"],
            env_file=tmp_path / ".env",
        )
    )
    assert rows["data.daily"].status == "FAIL" and "nope.parquet" in rows["data.daily"].detail
    assert rows["data.index"].status == "OK"


@pytest.mark.parametrize(
    ("env", "dotenv", "status"),
    [
        ({"TUSHARE_TOKEN": "abc"}, None, "OK"),
        ({}, "TUSHARE_TOKEN=abc\n", "OK"),
        ({}, "TUSHARE_TOKEN=\n", "FAIL"),
        ({}, None, "FAIL"),
    ],
)
def test_tushare_token_from_environment_or_dotenv(
    compose_app: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    dotenv: str | None,
    status: str,
) -> None:
    monkeypatch.delenv("TUSHARE_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv)
    app = compose_app("data=tushare")
    assert doctor.token_row(app, env_file).status == status
    assert doctor.token_row(compose_app(), env_file).status == "SKIP"


def test_memory_fails_when_the_universe_needs_more_than_is_free(compose_app: object) -> None:
    row = doctor.memory_row(compose_app("data.n_stocks=5000000", "data.n_days=2000"))
    assert row.status == "FAIL" and "fewer stocks" in row.detail


@pytest.mark.slow
def test_cli_prints_the_table_and_exits_1_on_a_failure(tmp_path: Path, tracking_uri: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ashare_autotune.doctor", "debug=default", "data=tushare"],
        cwd=tmp_path,
        env=cli_env(tracking_uri) | {"TUSHARE_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Tushare token               FAIL" in done.stdout
    assert "1 check(s) failed: Tushare token" in done.stdout
