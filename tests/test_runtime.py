"""Entry points keep Python's garbage collector off the imported modules (runtime.py)."""

from __future__ import annotations

import atexit
import gc
import subprocess
import sys
import weakref

from ashare_autotune.runtime import settle_imports
from tests.conftest import ROOT


class Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.me = self


def test_settling_freezes_what_is_alive_and_still_collects_what_comes_later() -> None:
    alive_before = Node()
    try:
        settle_imports()
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive_before for obj in gc.get_objects()), "out of the GC's sight"
        later = Node()
        watch = weakref.ref(later)
        del later
        gc.collect()
        assert watch() is None, "a cycle made after settling is still collected"
    finally:
        gc.unfreeze()
        atexit.unregister(gc.freeze)


def test_the_command_line_wrapper_settles_the_imports_before_running_the_app() -> None:
    code = (
        "import gc\n"
        "from ashare_autotune.errors import run_cli\n"
        "run_cli(lambda: print(gc.get_freeze_count()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) > 0  # 0 while nothing is frozen
