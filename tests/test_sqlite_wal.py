"""The project's SQLite stores run in write-ahead-log mode, and the database file alone holds
every commit once the process lets go of it."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy

from ashare_autotune import sqlite_wal
from ashare_autotune.config.schema import TuningConfig
from ashare_autotune.tracking import runs as tracking
from ashare_autotune.tuning.study import make_storage


def _modes(engine: sqlalchemy.Engine) -> tuple[str, int]:
    with engine.connect() as con:
        journal = con.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        synchronous = con.exec_driver_sql("PRAGMA synchronous").scalar_one()
    return journal, synchronous


def _file_mode(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


def test_an_enabled_store_opens_in_wal_mode_and_other_files_are_left_alone(
    tmp_path: Path,
) -> None:
    ours, other = tmp_path / "ours.db", tmp_path / "other.db"
    sqlite_wal.enable(f"sqlite:///{ours}")

    assert _modes(sqlalchemy.create_engine(f"sqlite:///{ours}")) == ("wal", 1)  # 1: NORMAL
    assert _modes(sqlalchemy.create_engine(f"sqlite:///{other}")) == ("delete", 2)  # 2: FULL


def test_after_release_the_database_file_alone_holds_every_commit(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    sqlite_wal.enable(f"sqlite:///{db}")
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        con.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
    assert Path(f"{db}-wal").exists()

    sqlite_wal.release_all()

    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    copy = shutil.copy(db, tmp_path / "copy.db")  # the file alone, as a user would copy it
    assert sqlite3.connect(copy).execute("SELECT SUM(x) FROM t").fetchone()[0] == 3
    with engine.begin() as con:  # the engine reconnects after the release
        con.exec_driver_sql("INSERT INTO t VALUES (3)")
        assert con.exec_driver_sql("SELECT SUM(x) FROM t").scalar_one() == 6


@pytest.mark.parametrize(
    "url", ["postgresql://u:p@db.example/optuna", "sqlite://", "sqlite:///:memory:", "nonsense"]
)
def test_only_a_sqlite_database_file_is_a_file(url: str) -> None:
    assert sqlite_wal.sqlite_file(url) is None


def test_relative_sqlite_urls_resolve_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_wal.sqlite_file("sqlite:///mlflow.db") == str((tmp_path / "mlflow.db").resolve())


@pytest.mark.parametrize("wal", [True, False])
def test_the_tracking_store_follows_mlflow_sqlite_wal(tracking_uri: str, wal: bool) -> None:
    tracking.setup(tracking_uri, "wal", sqlite_wal=wal)

    assert _file_mode(Path(tracking_uri.removeprefix("sqlite:///"))) == (
        "wal" if wal else "delete"
    )


@pytest.mark.parametrize("wal", [True, False])
def test_the_study_storage_follows_tuning_sqlite_wal(tmp_path: Path, wal: bool) -> None:
    db = tmp_path / "optuna.db"
    make_storage(TuningConfig(sqlite_wal=wal), f"sqlite:///{db}")

    assert _file_mode(db) == ("wal" if wal else "delete")


def test_a_process_that_exits_leaves_only_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    # as an entry point: the garbage collector frozen at exit (`runtime.settle_imports`), an
    # engine alive to the end (MLflow and Optuna cache theirs)
    code = (
        "import sys, sqlalchemy\n"
        "from ashare_autotune import runtime, sqlite_wal\n"
        "runtime.settle_imports()\n"
        "url = f'sqlite:///{sys.argv[1]}'\n"
        "sqlite_wal.enable(url)\n"
        "engine = sqlalchemy.create_engine(url)\n"
        "with engine.begin() as con:\n"
        "    con.exec_driver_sql('CREATE TABLE t (x INTEGER)')\n"
        "    con.exec_driver_sql('INSERT INTO t VALUES (7)')\n"
        "assert __import__('os').path.exists(sys.argv[1] + '-wal')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]
    assert sqlite3.connect(db).execute("SELECT x FROM t").fetchone() == (7,)
    assert _file_mode(db) == "wal"
