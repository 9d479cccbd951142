"""`--cpu-report` (tests/suite.py): the CPU seconds of a run, in all and by file and test."""

from __future__ import annotations

import subprocess
import sys

from tests import suite


def test_the_report_gives_the_total_then_the_costliest_files_and_tests() -> None:
    lines = suite.cpu_lines(
        {"tests/a.py::one": 2.0, "tests/b.py::two": 3.0, "tests/a.py::three": 1.5}, top=2
    )
    assert lines == [
        "CPU seconds in tests: 6 (3 tests)",
        "     3.5  tests/a.py",
        "     3.0  tests/b.py",
        "     3.0  tests/b.py::two",
        "     2.0  tests/a.py::one",
    ]


def test_cpu_seconds_count_a_child_process_once_it_has_been_waited_for() -> None:
    before = suite.cpu_seconds()
    busy = "sum(i * i for i in range(3_000_000))"
    subprocess.run([sys.executable, "-c", busy], check=True, timeout=60)
    assert suite.cpu_seconds() - before > 0.05
