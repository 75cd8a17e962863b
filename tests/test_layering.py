"""Data flows one way: spec (sweeps/) -> grid -> trainable (trainables/, using injection/) ->
MLflow (tracking/), and no two modules import each other, however indirectly (deferred
imports inside functions count: they still tie the two together). Read from the code's own
imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("sweeps", "trainables", "injection", "tracking")
MAY_NOT_IMPORT = {
    "trainables": {"sweeps"},
    "injection": {"sweeps", "trainables"},
    "tracking": {"sweeps", "trainables", "injection"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES
           for path in (REPO / package).rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The project modules `path` imports anywhere in it: `from a.b import c` names module
    a.b.c where that is one, else a.b."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in
                         MODULES else node.module for alias in node.names)
    return {name for name in names if name in MODULES}


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_import_runs_back_up_the_flow(package):
    wrong = {str(path.relative_to(REPO)): sorted(imported_packages(path)
                                                 & MAY_NOT_IMPORT[package])
             for path in (REPO / package).rglob("*.py")}
    assert {path: names for path, names in wrong.items() if names} == {}


def test_no_two_modules_import_each_other():
    graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    assert cycles(graph) == []


def test_a_deferred_import_back_is_a_cycle():
    """The negative control: a pair tied only by an import inside a function is found, and
    so is a longer loop; a chain is not."""
    pair = {"trainables.session": {"trainables.trial_plan"},
            "trainables.trial_plan": {"trainables.session"}}
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(pair) == [["trainables.session", "trainables.trial_plan"]]
    assert cycles(loop) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
