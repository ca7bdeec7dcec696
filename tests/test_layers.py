"""The layers of pyproject.toml's [tool.importlinter], held by `make lint`: they hold now, and an
import pointing up (even one inside a function, where a cycle hides) breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"  # beside the interpreter, as the tests run


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layers_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_up_a_layer_inside_a_function_breaks_them(tmp_path):
    shutil.copytree(REPO / "mindscape_ops", tmp_path / "mindscape_ops", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "mindscape_ops" / "adapters" / "labels.py").open("a") as module:
        module.write("\n\ndef planted():\n    from mindscape_ops.provision import lifecycle  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "mindscape_ops.adapters.labels -> mindscape_ops.provision.lifecycle" in result.stdout
    assert "2 broken" in result.stdout  # the layers and the package cycle it makes


def test_loading_the_services_loads_no_client_of_theirs():
    """Every command loads the service modules; their probes and gates load their clients
    (http.client and the ssl, email it brings; psycopg, redis) only when they run."""
    code = (
        "import sys, mindscape_ops.services.registry\n"
        "print(sorted(m for m in ('http.client', 'ssl', 'psycopg', 'redis', 'yaml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
