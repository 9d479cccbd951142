"""Packaging: pyproject and conda.yaml pin the same dependencies; MLproject forwards overrides;
`make train` sets up only what training needs."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

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


def _planned(target: str, venv: Path) -> str:
    """The commands `make <target>` would run with a venv not yet created (`make -n`)."""
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_train_sets_up_the_project_without_the_dev_tools(tmp_path: Path) -> None:
    train = _planned("train", tmp_path / "venv")
    assert "pip install --quiet --no-compile -e .\n" in train and "[dev]" not in train
    # what the commands import is compiled once, PYTHONDONTWRITEBYTECODE or not
    assert "PYTHONDONTWRITEBYTECODE= " in train and "import ashare_autotune.train;" in train
    test = _planned("test", tmp_path / "venv")
    assert '-e ".[dev]"' in test and "-m compileall" in test  # the suite's many processes
