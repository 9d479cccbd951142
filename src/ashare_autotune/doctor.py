"""Environment check: `python -m ashare_autotune.doctor [overrides]` prints one table.

Rows: package versions, the config composes and validates, the MLflow tracking URI is
reachable and writable, the Optuna study storage opens, the Tushare token is present (when
`data=tushare`), the data files are readable (when `data=files`), and free memory against an
estimate of what the configured universe needs. Exit status 1 when any row FAILs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from ashare_autotune.config.loading import register_configs, to_app_config
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import UserError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
PACKAGES = (
    "mlflow",
    "optuna",
    "optuna-integration",
    "xgboost",
    "lightgbm",
    "pandas",
    "numpy",
    "pyarrow",
    "scikit-learn",
    "hydra-core",
    "tushare",
    "psutil",
    "psycopg",
)
# Peak RSS of a training run ~ BASE + rows x PER_ROW: a linear fit of two measured runs
# (synthetic, 300 and 1,200 stocks x 1,000 days: 0.53 and 0.83 GB; see README "Doctor").
BASE_BYTES = 430e6
PER_ROW_BYTES = 340.0
TRADING_DAYS_PER_YEAR = 244
WHOLE_MARKET_STOCKS = 5000


@dataclass
class Row:
    """One line of the report."""

    check: str
    status: str  # OK | WARN | FAIL | SKIP
    detail: str


def package_rows() -> list[Row]:
    """Installed versions of the packages the project runs on."""
    rows = []
    for name in PACKAGES:
        try:
            rows.append(Row(f"package {name}", "OK", metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append(Row(f"package {name}", "FAIL", "not installed: run `make install`"))
    return rows


def compose_config(overrides: list[str]) -> tuple[AppConfig | None, Row]:
    """Compose conf/config.yaml with the overrides and validate it."""
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            app = to_app_config(compose("config", overrides=overrides))
    except (UserError, HydraException, OmegaConfBaseException) as exc:
        return None, Row("config composes", "FAIL", _one_line(exc))
    tu = app.tuning
    detail = f"data={app.data.source}, tuning.n_trials={tu.n_trials}, tuning.mode={tu.mode}"
    return app, Row("config composes", "OK", detail)


def tracking_row(app: AppConfig) -> Row:
    """Create and delete a run in the configured experiment: proves reachable and writable."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = app.mlflow.tracking_uri
    try:
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(app.mlflow.experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(app.mlflow.experiment_name)
        )
        run = client.create_run(experiment_id, run_name="doctor", tags={"ashare_doctor": "1"})
        client.delete_run(run.info.run_id)
    except (MlflowException, OSError) as exc:
        return Row("tracking URI writable", "FAIL", f"{_redact(uri)}: {_one_line(exc)}")
    return Row("tracking URI writable", "OK", f"{_redact(uri)} (created and deleted a run)")


def storage_row(app: AppConfig) -> Row:
    """Open the Optuna study storage (`tuning.storage`) and count its studies."""
    import optuna

    from ashare_autotune.tracking.runs import default_study_storage
    from ashare_autotune.tuning.study import make_storage

    url = app.tuning.storage or default_study_storage(app.mlflow.tracking_uri)
    try:
        studies = optuna.get_all_study_names(make_storage(app.tuning, url))
    except (UserError, Exception) as exc:  # any driver error means "cannot use it"
        return Row("study storage", "FAIL", _one_line(exc))
    return Row("study storage", "OK", f"{_redact(url)}: {len(studies)} studies")


def token_row(app: AppConfig, env_file: Path = Path(".env")) -> Row:
    """The Tushare token, found as `data=tushare` finds it (only for data=tushare)."""
    from ashare_autotune.data.tushare_client import TOKEN_ENV, resolve_token

    if app.data.source != "tushare":
        return Row("Tushare token", "SKIP", f"not needed for data={app.data.source}")
    try:
        resolve_token(env_file)
    except UserError as exc:
        return Row("Tushare token", "FAIL", str(exc))
    where = "the environment" if os.environ.get(TOKEN_ENV, "").strip() else env_file.resolve()
    return Row("Tushare token", "OK", f"{TOKEN_ENV} found in {where}")


def data_rows(app: AppConfig) -> list[Row]:
    """Each configured data file exists and can be read (only for data=files)."""
    if app.data.source != "files":
        return [Row("data files", "SKIP", f"no files to read for data={app.data.source}")]
    rows = []
    for key in ("daily", "index", "stock_basic"):
        path = getattr(app.data, key)
        if path is None:
            continue
        rows.append(_file_row(f"data.{key}", Path(path)))
    return rows


def _file_row(key: str, path: Path) -> Row:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            n = pq.ParquetFile(path).metadata.num_rows
            return Row(key, "OK", f"{path}: {n:,} rows")
        with path.open("rb") as handle:
            handle.read(4096)
        return Row(key, "OK", f"{path}: {path.stat().st_size:,} bytes")
    except Exception as exc:  # missing, unreadable or corrupt: all mean "cannot train on it"
        return Row(key, "FAIL", f"{path}: {_one_line(exc)}")


def estimated_rows(app: AppConfig) -> int:
    """Daily bars the configured universe loads (an upper bound for data=files)."""
    d = app.data
    if d.source == "synthetic":
        return (d.n_stocks or 300) * d.n_days
    if d.source == "files" and d.daily and Path(d.daily).suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            return pq.ParquetFile(d.daily).metadata.num_rows
        except Exception:  # reported by the data file row
            return 0
    stocks = len(d.ts_codes) if d.ts_codes else d.n_stocks or WHOLE_MARKET_STOCKS
    years = _years(d.start, d.end)
    return int(stocks * years * TRADING_DAYS_PER_YEAR)


def _years(start: str | None, end: str | None) -> float:
    first = int((start or "20150101")[:4])
    last = int((end or "20991231")[:4])
    return max(1.0, min(last, 2026) - first + 1.0)


def memory_row(app: AppConfig) -> Row:
    """Available memory against BASE + rows x PER_ROW for the configured universe."""
    rows = estimated_rows(app)
    need = BASE_BYTES + rows * PER_ROW_BYTES
    free = psutil.virtual_memory().available
    detail = f"{free / 1e9:.1f} GB available, ~{need / 1e9:.1f} GB needed for {rows:,} bars"
    if free >= need:
        return Row("memory", "OK", detail)
    return Row("memory", "FAIL", detail + ": use fewer stocks or a shorter date range")


def _redact(uri: str) -> str:
    from ashare_autotune.tuning.study import redact_uri

    return redact_uri(uri)


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def run_checks(overrides: list[str], env_file: Path = Path(".env")) -> list[Row]:
    """Every check, in report order; checks that need the config are skipped without one."""
    rows = package_rows()
    app, config = compose_config(overrides)
    rows.append(config)
    if app is None:
        return rows
    checks: list[Callable[[AppConfig], Row | list[Row]]] = [
        tracking_row,
        storage_row,
        lambda a: token_row(a, env_file),
        data_rows,
        memory_row,
    ]
    for check in checks:
        result = check(app)
        rows.extend(result if isinstance(result, list) else [result])
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table."""
    width = max(len(r.check) for r in rows)
    lines = [f"{'check':<{width}}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.check:<{width}}  {r.status:<6}  {r.detail}" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report; returns 1 when any check FAILs, else 0."""
    rows = run_checks(list(sys.argv[1:] if argv is None else argv))
    print(format_table(rows))
    failed = [r.check for r in rows if r.status == "FAIL"]
    print(f"\n{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "\nall checks OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
