"""Every command has help; --help and --version stay light (no engine or database clients)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from mindscape_ops import __version__
from mindscape_ops.cli import app

HEAVY = ("docker", "boto3", "psycopg", "redis", "requests", "jinja2", "yaml")


def all_commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(args):
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['mindscape', *{args!r}]\n"
        "try:\n    runpy.run_module('mindscape_ops', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_version():
    result = subprocess.run([sys.executable, "-m", "mindscape_ops", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"mindscape {__version__}"


@pytest.mark.parametrize("command", sorted(all_commands()), ids=" ".join)
def test_every_command_has_help(command):
    result = subprocess.run([sys.executable, "-m", "mindscape_ops", *command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    group = typer.main.get_command(app)
    for part in command:
        group = group.commands[part]
    assert group.help, f"`mindscape {' '.join(command)}` has no help text"


def test_contract_commands_exist():
    commands = set(all_commands())
    for expected in ["init", "validate", "render", "plan", "up", "down", "status", "logs"]:
        assert (expected,) in commands


@pytest.mark.tools
def test_this_repositorys_own_workflow_is_valid():
    import shutil

    from .conftest import REPO, need

    if not shutil.which("check-jsonschema"):
        need("check-jsonschema is not installed (pip install check-jsonschema)")
    result = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(REPO / ".github/workflows/ci.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
