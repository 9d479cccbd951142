"""MLproject entry points: each forwards the `overrides` string to its Hydra module, and the
command survives MLflow's str.format substitution (shell braces must be doubled)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT

MODULES = {
    "main": "ashare_autotune.train",
    "predict": "ashare_autotune.predict",
    "evaluate": "ashare_autotune.evaluate",
    "backtest": "ashare_autotune.backtest",
    "fetch_data": "ashare_autotune.fetch_data",
    "rolling": "ashare_autotune.rolling",
}


@pytest.mark.parametrize(("entry", "module"), MODULES.items())
def test_entry_point_command_formats_like_mlflow_does(entry: str, module: str) -> None:
    spec = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"][entry]
    assert spec["parameters"]["overrides"] == {"type": "string", "default": ""}
    command = spec["command"].format(overrides="a=1 b=2")  # what mlflow run does
    assert f"python -m {module} $(echo a=1 b=2)" in command
    assert command.startswith("PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} ")
