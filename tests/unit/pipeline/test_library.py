"""The pipeline library's shape: imports point one way (no circles, lazy imports included),
nothing in the library imports or loads a driver, and the step names are listed once."""

from __future__ import annotations

import ast

from scene2img.pipeline.params import STEP_PARAMS, STEPS
from tests.conftest import PROJECT_ROOT
from tests.source_imports import all_modules, imports


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph` (its strongly connected components of 2+ modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    graph = {name: imports(name) for name in all_modules()}
    assert "scene2img.pipeline.params" in graph["scene2img.pipeline.trainjob"]
    assert _cycles(graph) == []
    # the check finds one: steps -> trainjob -> steps
    graph["scene2img.pipeline.trainjob"].add("scene2img.pipeline.steps")
    assert _cycles(graph) == [["scene2img.pipeline.steps", "scene2img.pipeline.trainjob"]]


LOADERS = {"importlib", "runpy", "exec", "__import__", "spec_from_file_location", "run_path",
           "import_module"}


def test_the_library_never_imports_or_loads_a_driver():
    """The DAG (pipelines/) and its components are drivers: the library gets the DAG passed in,
    never imports them, and loads no module by name or path. Only the CLI, itself a driver,
    runs the DAG's file (as a subprocess)."""
    for name, path in all_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.module == "importlib" and [a.name for a in node.names] == ["resources"]:
                    continue  # package data files (the dialog's page), not code
                names = [node.module or "", *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Name | ast.Attribute):
                names = [node.id if isinstance(node, ast.Name) else node.attr]
            else:
                continue
            assert not any(n.split(".")[0] in ("components", "pipelines") for n in names), name
            assert not LOADERS & set(names), f"{name} loads code by name or path: {names}"


def _names_in_literals(tree: ast.AST) -> list[list[str]]:
    """Lists, tuples and sets of string literals in `tree`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            strings = [e.value for e in node.elts
                       if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            out.append(strings)
    return out


def test_step_names_are_listed_once():
    """STEPS (the keys of STEP_PARAMS) is the one list; no module, component or DAG file spells
    out three or more step names again."""
    assert tuple(STEP_PARAMS) == STEPS
    names = set(STEPS) | {step.replace("_", "-") for step in STEPS}
    files = [*all_modules().values(), *(PROJECT_ROOT / "components").glob("*.py"),
             *(PROJECT_ROOT / "pipelines").glob("*.py")]
    assert len(files) > 40
    for path in files:
        for strings in _names_in_literals(ast.parse(path.read_text())):
            assert len(names & set(strings)) < 3, f"{path}: a list of step names {strings}"
