"""Under CI=true nothing may pass by skipping: every way a test can skip (pytest.skip, a skip
mark, `need()`, a module skipping itself) fails instead; at a desk the same tests skip. Checked
by running pytest, with this suite's conftest as its plugin, on a few tiny test files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SKIPPING_TESTS = """
import pytest

from tests.conftest import need


def test_skips_itself():
    pytest.skip("no widget on this machine")


@pytest.mark.skipif(True, reason="marked away")
def test_marked_away():
    pass


def test_needs_a_tool():
    need("frobnicator is not installed")


def test_passes():
    pass


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False
"""

SKIPPING_MODULE = """
import pytest

pytest.skip("this whole module needs a widget", allow_module_level=True)


def test_never_collected():
    pass
"""


def run_pytest(tmp_path: Path, ci: str | None, *files: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's options
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
        ]
        + ["--rootdir", str(tmp_path), "-rA", *files],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},  # where `tests.conftest` imports from
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def skipping(tmp_path: Path) -> Path:
    path = tmp_path / "test_skipping.py"
    path.write_text(SKIPPING_TESTS)
    return path


@pytest.mark.parametrize("ci", ["true", "1", "yes", "TRUE"])
def test_under_ci_every_skip_is_a_failure(tmp_path: Path, skipping: Path, ci: str):
    result = run_pytest(tmp_path, ci, str(skipping))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # a skip mark acts at setup, so it shows as an error: a failure all the same
    assert "2 failed, 1 passed, 1 xfailed, 1 error" in output, output
    for outcome, name in [("FAILED", "skips_itself"), ("ERROR", "marked_away"), ("FAILED", "needs_a_tool")]:
        assert f"{outcome} test_skipping.py::test_{name}" in output, output
    assert "skipped under CI=true, where nothing may skip: Skipped: no widget on this machine" in output
    assert "skipped under CI=true, where nothing may skip: Skipped: marked away" in output
    assert "frobnicator is not installed (CI=true: required here)" in output  # need() says why itself
    assert " skipped" not in output.splitlines()[-1]


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_at_a_desk_the_same_tests_skip(tmp_path: Path, skipping: Path, ci: str | None):
    result = run_pytest(tmp_path, ci, str(skipping))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed, 3 skipped, 1 xfailed" in output, output
    assert "CI=true" not in output


def test_under_ci_a_module_that_skips_itself_fails(tmp_path: Path, skipping: Path):
    module = tmp_path / "test_module_skip.py"
    module.write_text(SKIPPING_MODULE)
    result = run_pytest(tmp_path, "true", str(module))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "skipped under CI=true, where nothing may skip" in output and "this whole module needs a widget" in output
    assert run_pytest(tmp_path, None, str(module)).returncode == 5  # at a desk: skipped, nothing ran
