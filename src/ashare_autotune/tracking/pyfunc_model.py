"""The MLflow pyfunc that serves picks: booster + tuned threshold + feature list.

Kept free of the rest of the package's heavy imports: it is shipped with the model
(`code_paths`) and loaded by `mlflow.pyfunc.load_model` and `mlflow models serve`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.pyfunc import PythonModel

from ashare_autotune.tracking.input_checks import check_input

BOOSTER_ARTIFACT = "booster"
META_ARTIFACT = "meta"


class PickModel(PythonModel):
    """predict(features) -> DataFrame with `probability` and `pick` (probability >= threshold)."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[META_ARTIFACT], encoding="utf-8") as fh:
            self.meta: dict[str, Any] = json.load(fh)
        self.booster = xgb.Booster()
        self.booster.load_model(context.artifacts[BOOSTER_ARTIFACT])
        self.booster.set_param({"nthread": 1})

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        check_input(model_input, list(self.meta["features"]), self.meta.get("input_profile"))
        features = list(self.meta["features"])
        missing = [c for c in features if c not in model_input.columns]
        if missing:
            raise ValueError(f"model input is missing feature column(s): {missing}")
        x = model_input[features].to_numpy(dtype=np.float32)
        proba = self.booster.inplace_predict(x, validate_features=False)
        return pd.DataFrame(
            {
                "probability": proba.astype(np.float64),
                "pick": proba >= self.threshold,
            },
            index=model_input.index,
        )
