"""The layout the code promises: layers in folders, one module that speaks to Docker, modules
small enough to read."""

from __future__ import annotations

import ast

import pytest

from .conftest import REPO

PACKAGE = REPO / "mindscape_ops"


def imported_modules(path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("client", ["docker", "kubernetes"])
def test_only_its_adapter_imports_a_client(client):
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(name == client or name.startswith(f"{client}.") for name in imported_modules(path))
    }
    assert importers == {f"adapters/{client}.py"}


def test_the_package_root_holds_no_module_but_the_entry_points():
    assert {p.name for p in PACKAGE.glob("*.py")} == {"__init__.py", "__main__.py", "errors.py"}


def test_modules_stay_under_400_lines():
    long = {
        str(path.relative_to(REPO)): lines
        for path in [*PACKAGE.rglob("*.py"), *(REPO / "tests").glob("*.py")]
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}
