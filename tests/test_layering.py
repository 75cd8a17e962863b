"""Data flows one way: spec (sweeps/) -> grid -> trainable (trainables/, using injection/) ->
MLflow (tracking/). Read from the code's own imports."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

PACKAGES = ("sweeps", "trainables", "injection", "tracking")
MAY_NOT_IMPORT = {
    "trainables": {"sweeps"},
    "injection": {"sweeps", "trainables"},
    "tracking": {"sweeps", "trainables", "injection"},
}


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_import_runs_back_up_the_flow(package):
    wrong = {str(path.relative_to(REPO)): sorted(imported_packages(path)
                                                 & MAY_NOT_IMPORT[package])
             for path in (REPO / package).rglob("*.py")}
    assert {path: names for path, names in wrong.items() if names} == {}
