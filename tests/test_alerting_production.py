"""With `environment: production`, alerts that reach nobody (no receiver, a severity no receiver
takes, no Alertmanager, a Watchdog without url) make platform.yaml invalid: `validate`, `render`
and `check` exit 2 naming monitoring.receivers, unless `monitoring.receivers_optional: true`
opts out on purpose. Elsewhere they are warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli

HEAD = "version: 1\nproject: alerts\n"
BOTH = "services: {prometheus: {}, alertmanager: {}}\n"
HOOK = "  receivers: [{name: hook, url: 'http://alerts.internal:9000/'}]\n"
DEADMAN = "  watchdog: {url: 'https://deadman.example.com/ping'}\n"


def _write(tmp_path: Path, text: str) -> None:
    (tmp_path / "platform.yaml").write_text(HEAD + text)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (BOTH, "no receiver is set"),
        (BOTH + "monitoring:\n" + DEADMAN, "no receiver is set"),
        (BOTH + "monitoring:\n" + HOOK, "monitoring.watchdog.url is not set"),
        (
            BOTH + "monitoring:\n" + DEADMAN + HOOK.replace("'}]", "', severities: [critical]}]"),
            "no receiver takes severity warning",
        ),
        ("services: {prometheus: {}}\n", "services.alertmanager is not enabled"),
    ],
)
@pytest.mark.parametrize("command", [("validate",), ("render",), ("check", "--json")])
def test_production_alerts_that_reach_nobody_are_an_error(tmp_path: Path, body: str, says: str, command: tuple):
    _write(tmp_path, "environment: production\n" + body)
    done = run_cli(*command, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    # check: the failed config.valid gate, its message in --json
    said = json.loads(done.stdout)[0]["message"] if command[0] == "check" else done.stderr
    assert "monitoring.receivers:" in said and says in said, said
    assert "monitoring.receivers_optional: true" in said  # the way out is named
    assert not (tmp_path / "deploy").exists()  # nothing half-written


def test_production_with_a_receiver_and_a_dead_mans_switch_renders(tmp_path: Path):
    _write(tmp_path, "environment: production\n" + BOTH + "monitoring:\n" + DEADMAN + HOOK)
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "alerts reach nobody" not in done.stderr and "watchdog" not in done.stderr


def test_the_opt_out_turns_the_error_into_the_warning(tmp_path: Path):
    _write(tmp_path, "environment: production\n" + BOTH + "monitoring:\n  receivers_optional: true\n")
    assert run_cli("validate", cwd=tmp_path).returncode == 0
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: alerts reach nobody: no receiver is set" in done.stderr
    assert "warning: monitoring.watchdog.url is not set" in done.stderr


@pytest.mark.parametrize("environment", ["", "environment: staging\n"])
def test_elsewhere_it_is_a_warning(tmp_path: Path, environment: str):
    _write(tmp_path, environment + BOTH)
    done = run_cli("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: alerts reach nobody: no receiver is set" in done.stderr
