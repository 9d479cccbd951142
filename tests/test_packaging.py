"""Packaging: pyproject and conda.yaml pin the same dependencies; MLproject forwards overrides."""

from __future__ import annotations

import tomllib

import yaml

from tests.conftest import ROOT


def test_pyproject_and_conda_yaml_list_the_same_pins() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_deps = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_deps) == sorted(pyproject)
    for name in (
        "mlflow",
        "optuna",
        "optuna-integration[mlflow]",
        "xgboost",
        "pandas",
        "pyarrow",
        "scikit-learn",
        "tushare",
        "hydra-core",
    ):
        assert any(dep.startswith(name) for dep in pyproject), name


def test_mlproject_main_entry_point_splits_overrides_into_arguments() -> None:
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    main = project["entry_points"]["main"]
    assert main["parameters"]["overrides"]["default"] == ""
    assert "$(echo {overrides})" in main["command"]
    assert project["conda_env"] == "conda.yaml"
