"""How `status` decides "ready" and lays out its table, without an engine."""

from __future__ import annotations

import subprocess
import sys

from rich.console import Console

from mindscape_ops.cli.lifecycle import _short, _status_table
from mindscape_ops.provision import proof, status
from mindscape_ops.provision.convergence import Observed
from mindscape_ops.workspace.store import Workspace

STARTED = "2026-01-02T03:04:05.123456789Z"


class FakeEngine:
    def __init__(self, states):
        self.states, self.inspected = states, []

    def state(self, container):
        self.inspected.append(container)
        return self.states[container]


def seen(service="redis", health=None, state="running", cid="c1"):
    return Observed(f"p-{service}", service, state, health, container_id=cid, image="reg/x/redis:7")


def decide(observed, proofs, started=STARTED, answer=True):
    asked = []
    engine = FakeEngine({"c1": {"Running": observed.state == "running", "StartedAt": started}})

    def prober(service):
        asked.append(service)
        return answer

    found = status.row("redis", observed, True, "redis:7", engine, proofs, prober)
    return found["ready"], found["ready_by"], asked


def test_docker_health_once_spoken_then_ups_proof_then_a_probe():
    proved = {"redis": {"container": "c1", "started_at": STARTED}}
    assert decide(seen(health="healthy"), {}) == (True, "healthcheck", [])
    assert decide(seen(health="unhealthy"), proved) == (False, "healthcheck", [])
    assert decide(seen(health="starting"), proved) == (True, "up", [])
    assert decide(seen(health=None), proved) == (True, "up", [])
    # another start of the same container, or another container: probed, not trusted
    assert decide(seen(health="starting"), proved, started="2026-01-02T03:09:00Z") == (True, "probe", ["redis"])
    other = {"redis": {"container": "c0", "started_at": STARTED}}
    assert decide(seen(health="starting"), other, answer=False) == (False, "probe", ["redis"])
    assert decide(seen(state="exited"), proved) == (False, None, [])


def test_failing_names_enabled_services_down_or_not_ready():
    rows = [
        {"service": "a", "state": "running", "ready": True},
        {"service": "b", "state": "exited", "ready": False},
        {"service": "c", "state": "running", "ready": False},
        {"service": "d", "state": "not created", "ready": False},
        {"service": "old", "state": "running (no longer in platform.yaml)", "ready": None},
    ]
    assert status.failing(rows) == ["b", "c", "d"]


def test_proofs_of_the_wrong_shape_are_dropped_and_records_merge(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.update_state(ready_proof={"a": {"container": "x"}, "b": "y", "c": {"container": "z", "started_at": "t"}})
    assert proof.read(workspace.read_state()) == {"c": {"container": "z", "started_at": "t"}}
    proof.record(workspace, {"d": {"container": "w", "started_at": "u"}, "c": None})
    assert proof.read(workspace.read_state()) == {"d": {"container": "w", "started_at": "u"}}


def test_a_proof_is_taken_only_of_a_running_container_that_answers_again():
    from mindscape_ops.provision.readiness import NotReady

    engine = FakeEngine({"c1": {"Running": True, "StartedAt": STARTED}, "c2": {"Running": False}})
    assert proof.take(engine, "c1", lambda: None) == {"container": "c1", "started_at": STARTED}
    assert proof.take(engine, "c2", lambda: None) is None

    def refuses():
        raise NotReady("no")

    assert proof.take(engine, "c1", refuses) is None


def test_the_table_keeps_one_line_a_service_at_80_columns():
    rows = [
        {
            "service": name,
            "state": "running",
            "health": "starting",
            "ready": True,
            "ready_by": "up",
            "ports": ["127.0.0.1:41234->9187/tcp", "[::1]:41234->9187/tcp"],
            "image": f"registry.example.com/mindscape-local/{name}:0.11.1",
            "up_to_date": False,
        }
        for name in ("postgres_exporter", "redis_exporter", "alertmanager")
    ]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(_status_table("a-rather-long-project-name", rows))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ("postgres_exporter", "redis_exporter", "alertmanager"):
        (line,) = [line for line in lines if name in line]
        # only the image may be cut (by an ellipsis) to make room
        assert line.split()[:4] == [name, "running", "ready", "41234"] and f"{name}:0." in line
        assert line.split()[-1] == "changed"


def test_short_images():
    assert _short("mindscape-local/postgres:15") == "postgres:15"
    assert _short("ghcr.io/org/app@sha256:" + "ab" * 32) == "app@abababababab"
    assert _short(None) == "-"


def test_the_quick_status_path_loads_no_model():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mindscape_ops.provision import status\n"
        "status.quick([Path('does-not-exist.yaml')])\n"
        "print(sorted(m for m in ('pydantic', 'jinja2', 'mindscape_ops.config.models') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_status_command_fits_its_table_to_80_columns(tmp_path, monkeypatch):
    """Through the CLI's own console (soft wrap on for other output): five long rows at 80."""
    from typer.testing import CliRunner

    from mindscape_ops.cli import app

    rows = [
        {
            "service": name,
            "state": "running",
            "health": "healthy",
            "ready": True,
            "ready_by": "healthcheck",
            "ports": ["127.0.0.1:26432->6432/tcp"],
            "image": f"mindscape-local/{name}:0.11",
            "up_to_date": True,
        }
        for name in ("pgbouncer", "postgres", "postgres_exporter", "redis", "redis_exporter")
    ]
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: wide\nservices: {postgres: {}}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(status, "quick", lambda paths: ("wide", rows))
    result = CliRunner().invoke(app, ["status"], env={"COLUMNS": "80", "MINDSCAPE_FILE": None})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    running = [line for line in lines if "running" in line]
    assert len(running) == 5 and all(line.rstrip().endswith("up to date") for line in running)
