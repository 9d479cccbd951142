"""The facts README and docs state about the suite and the served model are the code's: how
many tests skip without each Debian package and what they say, the test commands' time
budgets, and the columns of the serving example's request."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from ashare_autotune.config.schema import AppConfig
from ashare_autotune.data.market import Market
from ashare_autotune.modelling.feature_sets import feature_names
from tests import suite, test_ui, test_workers
from tests.conftest import ROOT
from tests.test_serving import serving_example

README = (ROOT / "README.md").read_text()
# README's words for each package marker: "<n> need(s) <name>".
PACKAGES = {"needs_postgres": "PostgreSQL", "needs_chromium": "chromium"}
COLLECT = """
import json, sys, pytest
from tests import suite
class Grab:
    def pytest_collection_finish(self, session):
        print("COLLECTED", json.dumps(session.config.stash[suite.COLLECTED].needing))
pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "tests"],
            plugins=[Grab()])
"""


def needing(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """Package marker -> the tests that carry it, of every test file: this session's
    collection when it took them all (`make test`, `make test-fast`), else a fresh one."""
    collected = request.config.stash[suite.COLLECTED]
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py")}
    if files <= collected.files:
        return collected.needing
    done = subprocess.run(
        [sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("COLLECTED "))
    return json.loads(line.removeprefix("COLLECTED "))


def test_readme_counts_the_tests_that_skip_without_each_debian_package(
    request: pytest.FixtureRequest,
) -> None:
    stated = {
        marker: int(m.group(1))
        for marker, name in PACKAGES.items()
        if (m := re.search(rf"(\d+)\s+needs?\s+{name}\b", README))
    }
    assert stated == {marker: len(ids) for marker, ids in needing(request).items()}


def test_the_skip_reasons_name_the_install_commands_readme_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(test_workers, "ADMIN_URI", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(pytest.skip.Exception, match=re.escape(".ci/postgres.sh")):
        test_workers._admin()
    (chromium,) = [m.kwargs["reason"] for m in test_ui.pytestmark if m.name == "skipif"]
    assert "apt-get install chromium" in chromium
    assert ".ci/postgres.sh" in README and "apt-get install chromium" in README


def test_readme_states_the_time_budgets_the_makefile_enforces() -> None:
    makefile = (ROOT / "Makefile").read_text()
    budgets = dict(
        re.findall(r"^(test|test-fast): .*\n\t\$\(PYTEST\) --time-budget=(\d+)", makefile, re.M)
    )
    assert set(budgets) == {"test", "test-fast"}
    for target, seconds in budgets.items():
        assert f"`make {target}`" in README
        assert re.search(rf"`make {target}`[^.]*<= {int(seconds) // 60} minutes", README), target


def test_the_serving_example_posts_a_basic_models_input_columns(
    compose_app: Callable[..., AppConfig], small_market: Market
) -> None:
    section, body, answer = serving_example()
    split = body["dataframe_split"]
    assert "`features=basic`" in section
    app = compose_app("features=basic")
    assert split["columns"] == feature_names(app.features, small_market.daily)
    assert all(len(row) == len(split["columns"]) for row in split["data"])
    assert len(answer["predictions"]) == len(split["data"])
