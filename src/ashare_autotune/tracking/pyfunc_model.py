"""The MLflow pyfunc that serves picks: the fitted model + tuned threshold + feature list.

Kept free of the rest of the package's heavy imports: it is shipped with the model
(`code_paths`) and loaded by `mlflow.pyfunc.load_model` and `mlflow models serve`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from ashare_autotune.config.choices import PicksRule
from ashare_autotune.evaluation.picks_rule import rule_scores
from ashare_autotune.tracking.input_checks import InputError, check_input

MODEL_ARTIFACT = "model"  # the directory `FittedModel.save` wrote
BOOSTER_ARTIFACT = "booster"  # an XGBoost booster file: models logged before the model protocol
META_ARTIFACT = "meta"
LEGACY_MODEL = {"kind": "xgboost", "class": "ashare_autotune.models.xgboost.fitted:XGBoostFitted"}


class ServedInputError(MlflowException):
    """Rows the model refuses (`input_checks.InputError`), as the one line a client of
    `mlflow models serve` reads first (HTTP 400).

    MLflow's scoring server rewrites the message of an `MlflowException` raised by `predict` as
    `Failed to predict data '<the request's rows>'. Error: <message>`: kilobytes of echoed rows
    before the reason. This error keeps its own line as its message.
    """

    def __init__(self, line: str) -> None:
        self.line = line
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:  # type: ignore[override]
        """The one line, whatever was assigned later."""
        return self.line

    @message.setter
    def message(self, value: str) -> None:
        """Ignored: the line stays the message (see the class docstring)."""


class PickModel(PythonModel):
    """predict(features) -> DataFrame with `probability` (the model's score of each row: the
    binary objective's probability of the label) and `pick` (probability >= threshold); an
    ensemble's `probability` is its day-rank blend of the rows of one call (one day's rows a
    call), or with meta `picks` (`model.picks=filter_then_rank`) the rule's score, followed by
    each member's own score as `<member>_score` (docs/models.md)."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[META_ARTIFACT], encoding="utf-8") as fh:
            self.meta: dict[str, Any] = json.load(fh)
        self.model = load_fitted(self.meta.get("model", LEGACY_MODEL), context.artifacts)

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        features = list(self.meta["features"])
        try:  # MLflow's signature lets a missing column through: named here, in one line
            check_input(model_input, features, self.meta.get("input_profile"))
        except InputError as exc:
            raise ServedInputError(str(exc)) from None
        x = model_input[features].to_numpy(dtype=np.float32)
        members = member_columns(self.model, x)
        proba = served_scores(self.model, x, members, self.meta.get("picks"), self.threshold)
        out = {"probability": proba, "pick": proba >= self.threshold}
        return pd.DataFrame(out | members, index=model_input.index)


def member_columns(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """`<member>_score` of each member of an ensemble (its `members`); none for one model."""
    members = getattr(model, "members", None) or {}
    return {f"{name}_score": np.asarray(m.predict(x), np.float64) for name, m in members.items()}


def served_scores(
    model: Any,
    x: np.ndarray,
    members: dict[str, np.ndarray],
    picks: dict[str, str] | None,
    threshold: float,
) -> np.ndarray:
    """The `probability` column of rows `x` (one day's): the model's score; an ensemble's
    day-rank blend of its members' scores (`members`, `member_columns`), or with meta
    `picks.rule` = filter_then_rank the rule's score (`evaluation.picks_rule.rule_scores`:
    >= threshold exactly when the classifier's probability is, ordered by the ranker)."""
    if not members:
        return np.asarray(model.predict(x), np.float64)
    if picks and picks.get("rule") == PicksRule.filter_then_rank:
        proba, order = members[f"{picks['classifier']}_score"], members[f"{picks['ranker']}_score"]
        return rule_scores(proba, order, None, threshold)
    return np.asarray(model.blend(np.column_stack(list(members.values())), None), np.float64)


def model_signature(example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """The inferred signature with its input columns optional: MLflow's schema check would
    refuse a missing column first, in a message that ends with its name; `PickModel.predict`
    names it in one line (`input_checks.check_input`)."""
    signature = infer_signature(example, output)
    inputs = [ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs]
    return ModelSignature(Schema(inputs), signature.outputs)


def load_fitted(model: dict[str, Any], artifacts: dict[str, str]) -> Any:
    """The fitted model (`models.base.FittedModel`) of a pyfunc's artifacts, by the class its
    meta names ({"kind", "class": "module:Class"}), predicting on one thread."""
    module, name = model["class"].split(":")
    cls = getattr(importlib.import_module(module), name)
    if MODEL_ARTIFACT in artifacts:
        return cls.load(Path(artifacts[MODEL_ARTIFACT]), 1)
    return cls.load_file(Path(artifacts[BOOSTER_ARTIFACT]), 1)
