"""The end of a training run in a few lines: what was learned (best parameters, validation and
test metrics), the account beside its index and baselines, where the plots are, the synthetic
caveat, and the next commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run

from ashare_autotune.data.synthetic import CAVEAT_TAG
from ashare_autotune.tracking.experiment import view_url
from ashare_autotune.tracking.trial_runs import child_runs

DEFAULT_UI_STORE = "sqlite:///mlflow.db"  # what `make ui` opens
# (label, metric after the segment prefix, format): the rows of the val/test table
SEGMENT_ROWS = (
    ("AUC", "auc", "{:.4f}"),
    ("precision at the threshold", "precision", "{:.4f}"),
    ("recall at the threshold", "recall", "{:.4f}"),
    ("daily top-k precision", "topk_precision_mean", "{:.4f}"),
    ("daily Rank IC", "rank_ic_mean", "{:+.4f}"),
    ("account: annual return", "bt_annual_return", "{:+.1%}"),
    ("account: Sharpe", "bt_sharpe", "{:.2f}"),
)
# (column, metric after `<segment>_<who>bt_`, format): the account table
ACCOUNT_COLUMNS = (
    ("annual", "annual_return", "{:+.1%}"),
    ("excess@exp.", "excess_return_exposure", "{:+.1%}"),
    ("IR@exp.", "information_ratio_exposure", "{:.2f}"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("max DD", "max_drawdown", "{:.1%}"),
)
WIDTH = 12  # an account column's characters


@dataclass(frozen=True)
class Outcome:
    """What the job decided about the model (`pipeline.TrainResult`'s registry facts)."""

    model_name: str
    version: str | None
    reason: str
    alias: str  # the alias the version holds (champion or challenger)


def training_summary(
    run_id: str,
    best_params: dict[str, Any],
    outcome: Outcome,
    data_args: list[str],
    tracking_uri: str,
) -> str:
    """The summary of a finished training run, read back from its MLflow run.

    Args:
        run_id: the study's parent run.
        best_params: the best trial's parameters.
        outcome: the registered version and its alias.
        data_args: the overrides that load the model's market in `predict`/`evaluate`.
        tracking_uri: the store (the UI command opens it).
    """
    run = mlflow.MlflowClient().get_run(run_id)
    trials = child_runs(run_id, run.info.experiment_id)
    states = trials.get("tags.state", [])
    n_pruned = int(sum(s == "PRUNED" for s in states))
    lines = [f"summary: {run.info.run_name} (run {run_id})"]
    lines += _study_lines(run, len(trials), n_pruned, best_params)
    lines += _segment_table(run.data.metrics)
    lines += account_table(run.data.metrics, run.data.params.get("backtest.benchmark", ""))
    lines += _outcome_lines(run, outcome)
    lines += ["next:", *next_commands(run, outcome, data_args, tracking_uri)]
    return "\n".join(lines)


def _study_lines(run: Run, n_trials: int, n_pruned: int, params: dict[str, Any]) -> list[str]:
    shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
    objective = next((k for k in run.data.metrics if k.startswith("best_trial_")), None)
    best = ""
    if objective:
        name = objective.removeprefix("best_trial_")
        best = f"; the best trial's {name} {run.data.metrics[objective]:.4f}"
    study = run.data.tags.get("study_name", "?")
    lines = [
        f"  study       {study}: {n_trials} trials, {n_pruned} pruned{best}",
        f"  best params {shown}",
    ]
    if status := run.data.tags.get("threshold_status"):
        lines.append(f"  threshold   {status}")
    return lines


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _segment_table(metrics: dict[str, float]) -> list[str]:
    lines = [f"  {'':28}{'validation':>12}{'test':>12}"]
    for label, key, fmt in SEGMENT_ROWS:
        cells = [_cell(metrics, f"{seg}_{key}", fmt) for seg in ("val", "test")]
        if any(c != "-" for c in cells):
            lines.append(f"  {label:28}{cells[0]:>12}{cells[1]:>12}")
    return lines


def account_table(metrics: dict[str, float], benchmark: str) -> list[str]:
    """The test account after costs beside its index and the one-line baselines: one line a
    strategy, each value right-aligned under its column's name."""
    if "test_bt_annual_return" not in metrics:
        return []
    prefix = "test_baseline_"
    suffix = "_bt_annual_return"
    baselines = sorted(
        k[len(prefix) : -len(suffix)]
        for k in metrics
        if k.startswith(prefix) and k.endswith(suffix)
    )
    header = "".join(f"{name:>{WIDTH}}" for name, _, _ in ACCOUNT_COLUMNS)
    lines = [f"  {'test account after costs':24}{header}"]
    for who, stem in [("model", "test_bt_")] + [(b, f"{prefix}{b}_bt_") for b in baselines]:
        cells = "".join(
            f"{_cell(metrics, stem + key, fmt):>{WIDTH}}" for _, key, fmt in ACCOUNT_COLUMNS
        )
        lines.append(f"  {who:24}{cells}")
    index = _cell(metrics, "test_bt_benchmark_annual_return", "{:+.1%}")
    lines.append(f"  {'index ' + benchmark:24}{index:>{WIDTH}}")
    return lines


def _cell(metrics: dict[str, float], key: str, fmt: str) -> str:
    return fmt.format(metrics[key]) if key in metrics else "-"


def _outcome_lines(run: Run, outcome: Outcome) -> list[str]:
    if outcome.version:
        model = f"{outcome.model_name} v{outcome.version} @{outcome.alias}: {outcome.reason}"
    else:
        model = f"not registered: {outcome.reason}"
    lines = [f"  registered  {model}", f"  plots       {plots_location(run)}"]
    if caveat := run.data.tags.get(CAVEAT_TAG):
        lines.append(f"  caveat      {caveat}")
    return lines


def plots_location(run: Run) -> str:
    """Where the run's plots are: a local folder when the artifacts are files."""
    uri = f"{run.info.artifact_uri}/plots"
    if not uri.startswith(("file://", "/")):
        return uri
    path = Path(uri.removeprefix("file://"))
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def next_commands(
    run: Run, outcome: Outcome, data_args: list[str], tracking_uri: str
) -> list[str]:
    """`make ui` (or `mlflow ui` on another store) with the headline view's address, then
    `predict` and `evaluate` of the registered version on the model's market."""
    experiment = run.info.experiment_id
    ui = (
        "make ui"
        if tracking_uri == DEFAULT_UI_STORE
        else f"mlflow ui --backend-store-uri {tracking_uri}"
    )
    lines = [f"  {ui}   # then open {view_url(experiment)}"]
    if not outcome.version:
        return lines
    model = f"model_uri=models:/{outcome.model_name}@{outcome.alias}"
    args = " ".join([model, *data_args])
    lines.append(f"  python -m ashare_autotune.predict {args}")
    lines.append(f"  python -m ashare_autotune.evaluate {args}")
    return lines
