"""One source of config truth: each default once (the schema), choices as Enums, and any key the
schema lacks -- also one added with Hydra's `+` -- is the same one-line error naming it."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from ashare_autotune.config import schema
from ashare_autotune.config.choices import DataSource, ParamType, Pruner, SplitKind, TuningMode
from ashare_autotune.config.schema import AppConfig
from ashare_autotune.errors import ConfigError, config_error_text
from tests.conftest import CONF_DIR, cli_env, train_command

GROUPS = {f.name: f.type for f in dataclasses.fields(AppConfig)}


def _group_files() -> list[tuple[str, Path]]:
    return [
        (group, path)
        for group in GROUPS
        if (CONF_DIR / group).is_dir()
        for path in sorted((CONF_DIR / group).glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "path"), _group_files(), ids=lambda v: str(v)[-30:])
def test_no_conf_group_repeats_a_schema_default(group: str, path: Path) -> None:
    cls = getattr(schema, GROUPS[group])
    defaults = {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }
    values = yaml.safe_load(path.read_text()) or {}
    repeated = {k: v for k, v in values.items() if k in defaults and defaults[k] == v}
    assert not repeated, f"{path.relative_to(CONF_DIR)} repeats the schema's defaults {repeated}"


def test_choices_are_enum_members_after_loading(compose_app: Callable[..., AppConfig]) -> None:
    app = compose_app("split=walk_forward")
    assert app.data.source is DataSource.synthetic
    assert app.split.kind is SplitKind.walk_forward
    assert app.tuning.pruner is Pruner.median
    assert app.tuning.mode is TuningMode.all
    assert {spec.type for spec in app.model.space.values()} == {ParamType.float, ParamType.int}


def _message(compose: Callable[..., AppConfig], override: str) -> str:
    try:
        compose(override)
    except ConfigError as exc:
        return str(exc)
    except (HydraException, OmegaConfBaseException) as exc:
        return config_error_text(exc)
    raise AssertionError(f"{override} was accepted")


@pytest.mark.parametrize(
    ("key", "schema_name"),
    [
        ("tuning.n_trails", "TuningConfig"),
        ("data.n_stock", "DataConfig"),
        ("model.space.gamma.hgh", "ParamSpec"),
    ],
)
def test_an_unknown_key_is_the_same_error_with_or_without_plus(
    compose_app: Callable[..., AppConfig], key: str, schema_name: str
) -> None:
    plain, plus = (_message(compose_app, f"{p}{key}=5") for p in ("", "+"))
    leaf = key.rsplit(".", 1)[1]
    assert plus == plain == f"config key '{key}': Key '{leaf}' not in '{schema_name}'"


def test_an_unknown_top_level_key_with_plus_is_an_error(
    compose_app: Callable[..., AppConfig],
) -> None:
    assert _message(compose_app, "+n_trails=5") == (
        "config key 'n_trails': Key 'n_trails' not in 'AppConfig'"
    )


def _train(tmp_path: Path, tracking_uri: str, override: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(tmp_path, override),
        cwd=tmp_path,
        env=cli_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_unknown_key_with_plus_exits_2_with_one_line_naming_it(
    tmp_path: Path, tracking_uri: str
) -> None:
    plus = _train(tmp_path, tracking_uri, "+tuning.n_trails=5")
    plain = _train(tmp_path, tracking_uri, "tuning.n_trails=5")
    assert plus.returncode == plain.returncode == 2
    assert plus.stdout.strip() == ""
    assert plus.stderr.strip().splitlines() == [
        "error: config key 'tuning.n_trails': Key 'n_trails' not in 'TuningConfig'"
    ]
    assert (plus.stdout, plus.stderr) == (plain.stdout, plain.stderr)
