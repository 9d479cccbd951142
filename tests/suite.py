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
- `--cpu-report`: the CPU seconds the tests took (each worker's own and those of the processes
  it started and waited for), in all and by file and test: unlike wall time, what a change saves
  on a machine other jobs share.
"""

from __future__ import annotations

import os
import resource
import time
from collections import Counter, defaultdict
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
_CPU_MARK = pytest.StashKey[float]()
CPU_PROPERTY = "cpu_seconds"
CPU_BY_TEST: defaultdict[str, float] = defaultdict(float)  # test id -> CPU seconds, this run


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--time-budget",
        type=float,
        default=None,
        help="seconds the run may take: past it, a warning (TEST_BUDGET_STRICT=1: a failure)",
    )
    parser.addoption(
        "--cpu-report",
        action="store_true",
        help="print the CPU seconds of the tests, by file and test (tests/README.md)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_START] = time.monotonic()
    CPU_BY_TEST.clear()


def cpu_seconds() -> float:
    """User and system CPU of this process and of the child processes it has waited for."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201
    item.stash[_CPU_MARK] = cpu_seconds()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """Each phase's report carries its CPU seconds (a worker's reports reach the controller)."""
    report = (yield).get_result()
    if item.config.getoption("--cpu-report") and _CPU_MARK in item.stash:
        now = cpu_seconds()
        # a new list: the phases' reports share the item's
        report.user_properties = [
            *report.user_properties,
            (CPU_PROPERTY, now - item.stash[_CPU_MARK]),
        ]
        item.stash[_CPU_MARK] = now


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == CPU_PROPERTY:
            CPU_BY_TEST[report.nodeid] += value


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
    """With `--cpu-report` the CPU seconds; the run's wall time against its budget, the last
    line of the summary."""
    if terminalreporter.config.getoption("--cpu-report"):
        terminalreporter.section("CPU seconds (this process and the processes it waited for)")
        for line in cpu_lines(CPU_BY_TEST):
            terminalreporter.write_line(line)
    if _SUMMARY not in terminalreporter.config.stash:
        return
    took, budget = terminalreporter.config.stash[_SUMMARY]
    line = f"the run took {took:.0f} s; its budget is {budget:.0f} s (issue 28)"
    if took <= budget:
        terminalreporter.write_line(line)
        return
    fix = "share tests/conftest.py's fixtures, mark end-to-end tests slow (tests/README.md)"
    terminalreporter.write_line(f"over budget: {line}: {fix}", red=True)


def cpu_lines(by_test: dict[str, float], top: int = 15) -> list[str]:
    """The `--cpu-report` summary: the total, then the costliest files and tests."""
    by_file: Counter[str] = Counter()
    for nodeid, seconds in by_test.items():
        by_file[nodeid.split("::", 1)[0]] += seconds
    lines = [f"CPU seconds in tests: {sum(by_test.values()):.0f} ({len(by_test)} tests)"]
    lines += [f"{seconds:8.1f}  {name}" for name, seconds in by_file.most_common(top)]
    lines += [f"{seconds:8.1f}  {name}" for name, seconds in Counter(by_test).most_common(top)]
    return lines
