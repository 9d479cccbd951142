"""How the project reads in the MLflow UI: experiments of the model-training kind, a runs view
of a few headline metrics, and parent runs named by what they trained."""

from __future__ import annotations

import json

import mlflow

# MLflow 3's experiment kind (the UI's GenAI or machine-learning pages): model training
KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"
# A runs view the UI opens from a link (`?viewStateShareKey=<key>`): MLflow keeps it as the
# experiment tag `mlflow.sharedViewState.<key>`, the view state as JSON.
VIEW_KEY = "headline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
# What a reader compares runs by: the objective, the precision target's outcome, the signal
# and the account after costs (the trials carry val_auc, or their own objective's metric).
HEADLINE_METRICS = (
    "val_auc",
    "test_auc",
    "val_precision",
    "test_precision",
    "test_rank_ic_mean",
    "test_bt_annual_return",
    "test_bt_excess_return_exposure",
    "test_bt_sharpe",
)
UI_PORT = 5000  # `mlflow ui`'s (`make ui`)
SWEEP_NAME_TAG = "sweep_job"  # a `-m` job's overrides, appended to its parent run's name


def mark_experiment(experiment_id: str) -> None:
    """Tag the experiment as model training (unless its kind was chosen already) and give it
    the headline view; the view is rewritten each time, so it follows this release's metrics."""
    client = mlflow.MlflowClient()
    tags = client.get_experiment(experiment_id).tags
    if KIND_TAG not in tags:
        _set_tag(client, experiment_id, KIND_TAG, KIND)
    view = json.dumps(headline_view())
    if tags.get(VIEW_TAG) != view:
        _set_tag(client, experiment_id, VIEW_TAG, view)


def _set_tag(client: mlflow.MlflowClient, experiment_id: str, key: str, value: str) -> None:
    """Set an experiment tag that another process starting on the same server may be setting
    too: on PostgreSQL the loser of that race gets a unique-key violation, while the tag it
    wanted is there. Only a tag still missing afterwards is an error."""
    try:
        client.set_experiment_tag(experiment_id, key, value)
    except mlflow.exceptions.MlflowException:
        if key not in client.get_experiment(experiment_id).tags:
            raise


def headline_view() -> dict[str, object]:
    """The runs table's state: the registered model, then the headline metrics."""
    attributes = ["attributes.`Models`"]
    metrics = [f"metrics.`{name}`" for name in HEADLINE_METRICS]
    return {
        "selectedColumns": attributes + metrics,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
    }


def view_url(experiment_id: str, port: int = UI_PORT) -> str:
    """The headline view of an experiment in a local `mlflow ui`."""
    # workflowType: MLflow 3's UI opens its GenAI pages unless told (its switch is per browser)
    query = f"viewStateShareKey={VIEW_KEY}&workflowType=machine_learning"
    return f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?{query}"


def parent_run_name(
    label: str,
    feature_sets: list[str],
    model_target: str,
    objective: str,
    n_trials: int,
    span: tuple[str, str],
) -> str:
    """`excess/full xgboost 50 trials 20150105..20230316` (the objective when not binary).

    Args:
        label: `label.kind`.
        feature_sets: `features.sets`.
        model_target: `model._target_`, e.g. ashare_autotune.models.xgboost.model.XGBoostModel.
        objective: `model.objective`.
        n_trials: `tuning.n_trials`.
        span: the data's first and last day (YYYYMMDD).
    """
    model = model_name(model_target)
    if objective != "binary":
        model = f"{model} {objective}"
    return f"{label}/{'+'.join(feature_sets)} {model} {n_trials} trials {span[0]}..{span[1]}"


def model_name(target: str) -> str:
    """The model's package under models/ (xgboost, lightgbm), else its class name."""
    parts = target.split(".")
    if len(parts) >= 4 and parts[-4] == "models":
        return parts[-3]
    return parts[-1]
