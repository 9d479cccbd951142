"""Shared fixtures: the real Hydra config in debug size, small seeded markets, and a fresh
SQLite MLflow tracking store per test (migrated once per session, then copied)."""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from filelock import FileLock
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ashare_autotune.config.loading import register_configs, to_app_config
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.market import Market
from ashare_autotune.data.synthetic import make_synthetic_market
from ashare_autotune.jobs.pipeline import TrainResult, run_training

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"
# How the suite runs: file order for `make test`'s workers, package markers, the time budget.
pytest_plugins = ["tests.suite"]


# Every process the tests start inherits a TMPDIR of this session, removed at its end: a run
# killed on purpose (SIGKILL) leaves its feature store there, as documented, not in the
# machine's /tmp. This process keeps the machine's (read first: tempfile caches it).
tempfile.gettempdir()
_CHILD_TMP = tempfile.mkdtemp(prefix="ashare-tests-")
os.environ["TMPDIR"] = _CHILD_TMP
# Also when this process runs no test (the controller of `make test`'s workers, whose TMPDIR
# they inherit: theirs are made inside it).
atexit.register(shutil.rmtree, _CHILD_TMP, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _remove_child_tmp() -> Iterator[None]:
    yield
    shutil.rmtree(_CHILD_TMP, ignore_errors=True)


def cli_env(tracking_uri: str) -> dict[str, str]:
    """The environment for a command-line run: this checkout's code, the given tracking store,
    no MLflow run or experiment inherited from the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # `mlflow run --env-manager local` runs `python` from PATH: make it this interpreter, as it
    # is in an activated venv, even when the tests were started as `.venv/bin/python -m pytest`.
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": path,
    }


def run_entry_point(
    module: str, tmp_path: Path, tracking_uri: str, *overrides: str
) -> subprocess.CompletedProcess:
    """`python -m ashare_autotune.<module> <overrides>`, Hydra's output under tmp_path, its
    output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", f"ashare_autotune.{module}", *overrides]
        + [f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path,
        env=cli_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )


def train_command(tmp_path: Path, *overrides: str) -> list[str]:
    """`python -m ashare_autotune.train debug=default` with Hydra's output under tmp_path."""
    return [
        sys.executable,
        "-m",
        "ashare_autotune.train",
        "debug=default",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        *overrides,
    ]


@pytest.fixture(scope="session")
def compose_app() -> Callable[..., AppConfig]:
    """Compose conf/config.yaml with the debug preset plus overrides into a typed AppConfig."""
    register_configs()

    def _compose(*overrides: str, debug: bool = True) -> AppConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "config", overrides=(["debug=default"] if debug else []) + list(overrides)
            )
        return to_app_config(cfg)

    return _compose


@pytest.fixture(scope="session")
def small_market() -> Market:
    """40 synthetic stocks over 300 trading days (seeded)."""
    return make_synthetic_market(n_stocks=40, n_days=300, seed=7)


@pytest.fixture(scope="session")
def _migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite DB with its schema migrated once (migration takes seconds)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def fresh_store(template: Path, directory: Path) -> str:
    """Copy the migrated DB into `directory`; returns its URI. Artifacts stay in `directory`."""
    db = directory / "mlflow.db"
    shutil.copy(template, db)
    # The Default experiment's artifact root was fixed when the template was made: move it.
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            ((directory / "mlruns" / "0").as_uri(),),
        )
    return f"sqlite:///{db}"


@pytest.fixture
def tracking_uri(
    _migrated_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, real SQLite tracking store for one test; artifacts under tmp_path."""
    uri = fresh_store(_migrated_db, tmp_path)
    monkeypatch.chdir(tmp_path)  # artifacts (./mlruns) and optuna.db land in tmp_path
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real A-share sample in ../shared/data; skips the test when it is absent."""
    if not (SHARED_DATA / "daily.parquet").exists():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA


@dataclass
class TrainedModel:
    """A registered debug-size model in its own SQLite store (see `trained_model`)."""

    tracking_uri: str
    root: Path
    result: TrainResult
    model_uri: str = "models:/ashare-autotune-debug@champion"
    # The same synthetic market the model was trained on (conf/debug), extended past its data.end.
    data_overrides: tuple[str, ...] = (
        "data.n_stocks=40",
        "data.n_days=300",
        "data.signal_strength=20",
    )
    train_end: str = "20181231"


def _train_model(root: Path, uri: str, compose_app: Callable[..., AppConfig]) -> TrainResult:
    """Train and register `trained_model`'s model into the store at `uri`, working in `root`."""
    app = compose_app(
        f"mlflow.tracking_uri={uri}", f"data.end={TrainedModel.train_end}", "mlflow.figures=true"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        result = run_training(app)
    assert result.champion, result.promotion_reason
    return result


def copy_stores(source: Path, target: Path) -> None:
    """Copy a directory of SQLite stores and artifacts to `target` as if made there: each
    database through SQLite's backup (consistent beside its write-ahead log), every path to
    `source` in them (artifact locations) pointing into `target` instead."""
    databases = ("*.db", "*.db-wal", "*.db-shm", "*.db-journal", "*.lock")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*databases), dirs_exist_ok=True)
    for path in target.rglob("*"):  # e.g. a logged model's MLmodel names its artifact path
        if path.is_file() and str(source).encode() in (data := path.read_bytes()):
            path.write_bytes(data.replace(str(source).encode(), str(target).encode()))
    for db in source.glob("*.db"):
        with (
            closing(sqlite3.connect(db)) as src,
            closing(sqlite3.connect(target / db.name)) as dst,
        ):
            src.backup(dst)
            for (table,) in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                for column in dst.execute(f'PRAGMA table_info("{table}")').fetchall():
                    name = column[1]
                    dst.execute(
                        f'UPDATE "{table}" SET "{name}" = REPLACE("{name}", ?, ?) '
                        f'WHERE typeof("{name}") = \'text\' AND instr("{name}", ?) > 0',
                        (str(source), str(target), str(source)),
                    )
            dst.commit()


@pytest.fixture(scope="session")
def trained_model(
    _migrated_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
    compose_app: Callable[..., AppConfig],
) -> TrainedModel:
    """One debug model trained on synthetic data up to 20181231 and registered as champion.

    Shared by the predict, evaluate and serving tests (they add runs and tags, never aliases).
    Under `make test`'s workers it is trained once per run, by the first worker to need it (a
    file lock beside the workers' directories), and each worker gets its own copy of the
    stores (~15 s of CPU saved per further worker).
    """
    root = tmp_path_factory.mktemp("trained-model")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        uri = fresh_store(_migrated_db, root)
        return TrainedModel(
            tracking_uri=uri, root=root, result=_train_model(root, uri, compose_app)
        )
    shared = tmp_path_factory.getbasetemp().parent / "trained-model-shared"
    with FileLock(f"{shared}.lock"):
        if not (shared / "result.pickle").exists():
            shutil.rmtree(shared, ignore_errors=True)  # a worker's training that failed
            shared.mkdir()
            result = _train_model(shared, fresh_store(_migrated_db, shared), compose_app)
            (shared / "result.pickle").write_bytes(pickle.dumps(result))
        copy_stores(shared, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # as the training leaves it
    result = pickle.loads((root / "result.pickle").read_bytes())
    return TrainedModel(tracking_uri=uri, root=root, result=result)
