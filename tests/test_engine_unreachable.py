"""Every command that talks to the engine, with no engine to talk to: exit 3 with advice, no
traceback, nothing on stdout (where --json output goes), nothing rendered or created. Needs no
engine, so it carries no `engine` mark and runs in `make test-fast`."""

from __future__ import annotations

import json

import pytest

from .conftest import EXAMPLES, run_cli

NO_ENGINE = {"DOCKER_HOST": "tcp://127.0.0.1:9"}  # the discard port on this machine: nothing answers


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["up", "redis", "--no-wait"],
        ["status"],
        ["status", "--json"],
        ["plan"],
        ["plan", "--json"],
        ["down"],
        ["down", "--volumes", "--yes"],
        ["logs", "redis"],
    ],
    ids=" ".join,
)
def test_unreachable_engine_exits_3_with_advice(tmp_path, command):
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    result = run_cli(*command, cwd=tmp_path, env=NO_ENGINE, timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot reach the Docker engine" in result.stderr
    assert "is the Docker engine running? DOCKER_HOST=tcp://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) in (["platform.yaml"], [".mindscape", "platform.yaml"])


@pytest.mark.parametrize("command", [["up"], ["down", "--volumes", "--yes"]], ids=" ".join)
def test_a_change_refused_for_want_of_an_engine_is_audited_as_such(tmp_path, command):
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    assert run_cli(*command, cwd=tmp_path, env=NO_ENGINE, timeout=60).returncode == 3
    [entry] = [json.loads(line) for line in (tmp_path / ".mindscape/audit.log").read_text().splitlines()]
    assert entry["command"] == command[0]
    assert entry["outcome"].startswith("failed (exit 3): connecting: cannot reach the Docker engine")
