"""The package's shape, read from its source: imports flow one way (no module imports itself
back through others, and none imports a higher floor), the MLflow layer does not import the
tuner, evaluation computes without MLflow or a data source, and no module is too long."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "ashare_autotune"
SRC = ROOT / "src" / PACKAGE
ENTRY_POINTS = {
    "train",
    "predict",
    "evaluate",
    "backtest",
    "fetch_data",
    "doctor",
    "rolling",
    "ui",
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    """`src/ashare_autotune/tuning/study.py` -> `ashare_autotune.tuning.study`."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(path: Path, known: set[str]) -> set[str]:
    """The package's modules `path` imports anywhere in its body (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import name`: name is a module when the package has one by that name
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, computed from the source."""
    mods = modules()
    known = set(mods)
    return {name: imported(path, known) - {name} for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_the_imports_of_the_source() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.jobs.pipeline" in graph[f"{PACKAGE}.train"]
    assert f"{PACKAGE}.data.market" in graph[f"{PACKAGE}.data.loader"]


def test_no_module_imports_itself_back_through_others() -> None:
    assert find_cycle(import_graph()) is None


def test_the_mlflow_layer_does_not_import_the_tuner() -> None:
    graph = import_graph()
    for name in (m for m in graph if m.startswith(f"{PACKAGE}.tracking")):
        tuner = sorted(m for m in reachable(graph, name) if m.startswith(f"{PACKAGE}.tuning"))
        assert not tuner, f"{name} imports {tuner}"


def test_nothing_imports_an_entry_point() -> None:
    graph = import_graph()
    entries = {f"{PACKAGE}.{e}" for e in ENTRY_POINTS}
    for name, deps in graph.items():
        assert not deps & entries, f"{name} imports the entry point(s) {sorted(deps & entries)}"


def test_package_inits_hold_no_code() -> None:
    """A package's `__init__` runs before any of its modules: code there would sit in every
    import path through the package (and closes circles the module graph does not show)."""
    for init in SRC.rglob("__init__.py"):
        if init.parent == SRC:
            continue
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{init}: only a docstring"


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: n
        for name, p in modules().items()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# The floors, lowest first: a module may import its own floor and the ones below, never one
# above. The shared plumbing (errors, runtime, sqlite_wal, store_locks) sits under them all.
LAYERS = ("config", "data", "modelling", "models", "evaluation", "tuning", "tracking", "jobs")
PLUMBING = {"errors", "runtime", "sqlite_wal", "store_locks"}
# What `evaluation` may read of the data floor: the market as a value and the boards' pure
# rules; never a source (files, Tushare, the loader, the benchmark's loading).
PURE_DATA = {"data.market", "data.boards"}


def floor(module: str) -> int:
    """The floor of a package module (entry points above every floor, plumbing below)."""
    rel = module.removeprefix(f"{PACKAGE}.")
    if rel in ENTRY_POINTS:
        return len(LAYERS)
    top = rel.split(".")[0]
    return -1 if top in PLUMBING or module == PACKAGE else LAYERS.index(top)


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs, package prefix dropped, where the import runs upward."""
    prefix = f"{PACKAGE}."
    return {
        (m.removeprefix(prefix), d.removeprefix(prefix))
        for m, deps in graph.items()
        for d in deps
        if floor(d) > floor(m)
    }


def test_every_module_has_a_floor() -> None:
    for name in import_graph():
        assert floor(name) >= -1, name  # an unknown package would raise ValueError


def test_the_floor_check_finds_a_planted_upward_import() -> None:
    graph = {f"{PACKAGE}.config.schema": {f"{PACKAGE}.modelling.dataset"}}
    graph |= {f"{PACKAGE}.data.sanity": {f"{PACKAGE}.modelling.universe"}}
    graph |= {f"{PACKAGE}.evaluation.metrics": {f"{PACKAGE}.tuning.study"}}
    graph |= {f"{PACKAGE}.tracking.runs": {f"{PACKAGE}.jobs.picks"}}
    graph |= {f"{PACKAGE}.tuning.study": {f"{PACKAGE}.models.base"}}  # downward: fine
    assert upward_imports(graph) == {
        ("config.schema", "modelling.dataset"),
        ("data.sanity", "modelling.universe"),
        ("evaluation.metrics", "tuning.study"),
        ("tracking.runs", "jobs.picks"),
    }


def test_imports_run_from_higher_floors_to_lower_ones_only() -> None:
    found = sorted(upward_imports(import_graph()))
    assert not found, f"imports from a lower floor to a higher one: {found}"


def libraries(path: Path) -> set[str]:
    """The top-level names of every library `path` imports (absolute imports only)."""
    tree = ast.parse(path.read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
    }
    return names


def test_no_library_model_is_imported_outside_its_model_package() -> None:
    """XGBoost and LightGBM belong to `models/xgboost` and `models/lightgbm`: everything else
    takes scores through the model protocol (`models/base.py`)."""
    for name, path in modules().items():
        for lib in {"xgboost", "lightgbm"} & libraries(path):
            assert name.startswith(f"{PACKAGE}.models.{lib}"), f"{name} imports {lib}"


def test_evaluation_computes_on_what_it_is_handed() -> None:
    """`evaluation` is pure: no MLflow run, no Optuna study, no data source; the jobs load and
    log around it."""
    graph = import_graph()
    prefix = f"{PACKAGE}."
    for name, path in modules().items():
        if not name.startswith(f"{PACKAGE}.evaluation"):
            continue
        assert not {"mlflow", "optuna"} & libraries(path), f"{name} imports MLflow or Optuna"
        data = {d.removeprefix(prefix) for d in graph[name] if d.startswith(f"{prefix}data")}
        assert data <= PURE_DATA, f"{name} imports the data source(s) {sorted(data - PURE_DATA)}"
