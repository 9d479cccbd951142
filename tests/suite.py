"""How the suite runs (a pytest plugin, loaded by tests/conftest.py).

- `make test` runs it on every core (pytest-xdist, `-n auto --dist loadfile`): a file's tests
  stay on one worker (its module fixtures are built once), and the files that take longest
  are handed out first, so the workers finish together: a file's weight is its `slow` tests.
- Tests that need a Debian package are marked by what they use: `needs_postgres` (the fixture
  `pg_databases`), `needs_chromium` (tests/test_ui.py); README says how many skip without them
  (tests/test_readme_facts.py counts them).
- `--time-budget=SECONDS` (the Makefile's test targets): past it the run says so in red as its
  last line; with `TEST_BUDGET_STRICT=1` it fails. CI does not set it: its machine is shared,
  and a noisy neighbour must not turn a correct change red (the time is in CI's log).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

import pytest

# A file's weight when ordering: a slow test counts as this many fast ones (an end-to-end
# training takes ~10-30 s on 2 cores, a unit test well under one).
SLOW_WEIGHT = 40
# The fixtures a test uses that make it need a Debian package: marker -> fixture names.
PACKAGE_FIXTURES = {"needs_postgres": ("pg_databases", "pg_stores")}
PACKAGE_MARKERS = ("needs_postgres", "needs_chromium")


@dataclass(frozen=True)
class Collected:
    """What this session collected before any deselection: its test files and, per package
    marker, the tests that carry it."""

    files: set[str]
    needing: dict[str, list[str]]


COLLECTED = pytest.StashKey[Collected]()
_START = pytest.StashKey[float]()
_SUMMARY = pytest.StashKey[tuple[float, float]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--time-budget",
        type=float,
        default=None,
        help="seconds the run may take: past it, a warning (TEST_BUDGET_STRICT=1: a failure)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_START] = time.monotonic()


def file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects any
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need a Debian package and note them (with the files collected)."""
    for item in items:
        for marker, fixtures in PACKAGE_FIXTURES.items():
            if set(fixtures) & set(getattr(item, "fixturenames", ())):
                item.add_marker(marker)
    config.stash[COLLECTED] = Collected(
        files={file_of(item) for item in items},
        needing={
            marker: [item.nodeid for item in items if item.get_closest_marker(marker)]
            for marker in PACKAGE_MARKERS
        },
    )


@pytest.hookimpl(tryfirst=True)  # after `-m`, `-k` deselected; before xdist sends the list
def pytest_collection_finish(session: pytest.Session) -> None:
    """Order the files heaviest first (stable), as xdist hands them out."""
    items = session.items
    weight: Counter[str] = Counter()
    for item in items:
        weight[file_of(item)] += SLOW_WEIGHT if item.get_closest_marker("slow") else 1
    items.sort(key=lambda item: -weight[file_of(item)])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Past `--time-budget` (on the controller, not on each worker): fail with
    TEST_BUDGET_STRICT=1."""
    config = session.config
    budget = config.getoption("--time-budget")
    if budget is None or hasattr(config, "workerinput"):
        return
    took = time.monotonic() - config.stash[_START]
    config.stash[_SUMMARY] = (took, budget)
    if took > budget and os.environ.get("TEST_BUDGET_STRICT") == "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The run's wall time against its budget, the last line of the summary."""
    if _SUMMARY not in terminalreporter.config.stash:
        return
    took, budget = terminalreporter.config.stash[_SUMMARY]
    line = f"the run took {took:.0f} s; its budget is {budget:.0f} s (issue 28)"
    if took <= budget:
        terminalreporter.write_line(line)
        return
    fix = "share tests/conftest.py's fixtures, mark end-to-end tests slow (tests/README.md)"
    terminalreporter.write_line(f"over budget: {line}: {fix}", red=True)
