"""One table comparing the jobs of a Hydra multirun (`train -m`): each job's parent run, its
headline metrics and the version it registered, read back from MLflow by the sweep's folder."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd

from ashare_autotune.tracking.experiment import SWEEP_NAME_TAG

log = logging.getLogger(__name__)

SWEEP_DIR_TAG = "hydra_sweep_dir"  # set on every job's parent run (train.hydra_tags)
TABLE_FILE = "sweep_summary.md"
# (column, metric, format): what the jobs are compared by (chosen on validation, test reported)
COLUMNS = (
    ("val AUC", "val_auc", "{:.4f}"),
    ("val precision", "val_precision", "{:.4f}"),
    ("val account excess at exposure", "val_bt_excess_return_exposure", "{:+.1%}"),
    ("test AUC", "test_auc", "{:.4f}"),
    ("test Rank IC", "test_rank_ic_mean", "{:+.4f}"),
    ("test account annual", "test_bt_annual_return", "{:+.1%}"),
    ("test excess at exposure", "test_bt_excess_return_exposure", "{:+.1%}"),
)


def sweep_table(experiment_name: str, sweep_dir: str) -> pd.DataFrame:
    """One row per job of the sweep (its parent run), oldest job first.

    Args:
        experiment_name: the experiment the jobs logged to.
        sweep_dir: the sweep's folder (`hydra.sweep.dir`), as the jobs tagged it.
    """
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.{SWEEP_DIR_TAG} = '{_quoted(sweep_dir)}'",
    )
    if runs.empty:
        return pd.DataFrame()
    runs = runs.sort_values("start_time")
    rows = [_row(run) for run in runs.to_dict("records")]
    return pd.DataFrame(rows)


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")


def _row(run: dict[str, object]) -> dict[str, str]:
    row = {
        "job": str(run.get("tags.hydra_job", "")),
        "overrides": str(run.get(f"tags.{SWEEP_NAME_TAG}", "")),
    }
    for column, metric, fmt in COLUMNS:
        value = run.get(f"metrics.{metric}")
        row[column] = "-" if value is None or pd.isna(value) else fmt.format(value)
    row["model"] = _version(str(run["run_id"]))
    row["run"] = str(run["run_id"])
    return row


def _version(run_id: str) -> str:
    """`name vN @alias` of the version registered from the run, or `-`."""
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    if not versions:
        return "-"
    version = max(versions, key=lambda v: int(v.version))
    aliases = client.get_registered_model(version.name).aliases
    held = [a for a, v in aliases.items() if str(v) == str(version.version)]
    return f"{version.name} v{version.version}" + "".join(f" @{a}" for a in held)


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown (pipes), one line per job."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_sweep_table(experiment_name: str, sweep_dir: str) -> Path | None:
    """Write the sweep's comparison to `<sweep_dir>/sweep_summary.md`, log it, and attach it
    to every job's parent run as the artifact `sweep_summary.md` (in the UI: any job's run,
    Artifacts); returns the file (None when no job left a run)."""
    table = sweep_table(experiment_name, sweep_dir)
    if table.empty:
        log.warning("multirun %s: no job left a run in %s to compare", sweep_dir, experiment_name)
        return None
    text = markdown(table) + "\n"
    path = Path(sweep_dir) / TABLE_FILE
    path.write_text(text, encoding="utf-8")
    client = mlflow.MlflowClient()
    for run_id in table["run"]:
        client.log_text(run_id, text, TABLE_FILE)
    log.info("multirun: %d jobs compared (%s, and each job's run)\n%s", len(table), path, text)
    return path
