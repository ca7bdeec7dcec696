"""`status` and the no-op `up` trust what `up` proved (its probe's answer) while Docker's
healthcheck still says "starting", and only for the container start it proved; `status` and
`plan --exit-code` exit 1 when something is down or would change; the table fits 80 columns."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from mindscape_ops.cli import app

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


@pytest.fixture
def platform(tmp_path, docker_client, local_images):
    project = unique_project("st")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        f"  redis: {{image: '{local_images['redis']}', port: auto}}\n"
        f"  redis_exporter: {{image: '{local_images['redis_exporter']}', port: auto}}\n"
    )
    try:
        yield tmp_path, project
    finally:
        remove_project(docker_client, project)


def docker_health(docker_client, name: str) -> str | None:
    return docker_client.api.inspect_container(name)["State"].get("Health", {}).get("Status")


def status_rows(directory) -> tuple[int, dict[str, dict]]:
    result = run_cli("status", "--json", cwd=directory)
    return result.returncode, {row["service"]: row for row in json.loads(result.stdout)}


def slow_docker_up(directory, monkeypatch) -> None:
    """`up` in this process, with Docker's own healthcheck every 120 s instead of 5 s: Docker
    then says "starting" for two minutes, while `up`'s probes prove the services ready."""
    monkeypatch.setattr("mindscape_ops.services.spec.HEALTHCHECK", {"interval_s": 120, "timeout_s": 3, "retries": 3})
    monkeypatch.chdir(directory)
    monkeypatch.delenv("MINDSCAPE_FILE", raising=False)
    result = CliRunner().invoke(app, ["up"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def test_right_after_up_status_and_no_op_up_show_the_probes_answer(platform, docker_client, monkeypatch):
    directory, project = platform
    slow_docker_up(directory, monkeypatch)
    code, rows = status_rows(directory)
    assert code == 0, rows
    assert rows["redis"]["health"] == "starting"  # Docker's word ...
    assert rows["redis"]["ready"] is True and rows["redis"]["ready_by"] == "up"  # ... and the probe's answer
    assert rows["redis_exporter"]["health"] is None and rows["redis_exporter"]["ready_by"] == "up"
    # the no-op path answers (a full up names the project), Docker still saying "starting"
    noop = run_cli("-v", "up", cwd=directory)
    assert noop.returncode == 0 and "platform is up (2 services, 0 changed)" in noop.stderr, noop.stderr
    assert "debug: no-op:" not in noop.stderr
    assert docker_health(docker_client, f"{project}-redis") == "starting"
    state = json.loads((directory / ".mindscape" / "state.json").read_text())
    assert set(state["ready_proof"]) == {"redis", "redis_exporter"}


def test_a_restarted_container_is_probed_again_not_trusted(platform, docker_client, monkeypatch):
    directory, project = platform
    slow_docker_up(directory, monkeypatch)
    docker_client.api.restart(f"{project}-redis", timeout=2)
    deadline = time.monotonic() + 20
    while True:
        code, rows = status_rows(directory)
        assert rows["redis"]["health"] == "starting" and rows["redis"]["ready_by"] == "probe", rows["redis"]
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0 and rows["redis"]["ready"] is True
    assert rows["redis_exporter"]["ready_by"] == "up"  # not restarted: its proof holds
    noop = run_cli("-v", "up", cwd=directory)  # no proof for this start: the full up probes it
    assert noop.returncode == 0
    assert "debug: no-op: redis is not as the last up left it" in noop.stderr
    assert f"platform {project} is up" in noop.stderr


def test_status_and_plan_exit_1_when_a_service_is_down(platform, docker_client):
    directory, project = platform
    assert run_cli("up", cwd=directory).returncode == 0
    assert run_cli("plan", "--exit-code", cwd=directory).returncode == 0
    docker_client.api.stop(f"{project}-redis", timeout=2)
    result = run_cli("status", cwd=directory)
    assert result.returncode == 1
    assert "not running or not ready: redis" in result.stderr
    code, rows = status_rows(directory)
    assert code == 1 and rows["redis"]["state"] == "exited" and rows["redis"]["ready"] is False
    plan = run_cli("plan", "--exit-code", cwd=directory)
    assert plan.returncode == 1 and "start" in plan.stdout
    assert run_cli("plan", cwd=directory).returncode == 0  # without --exit-code, a plan is a plan
    assert run_cli("up", cwd=directory).returncode == 0
    assert run_cli("status", cwd=directory).returncode == 0


def test_the_table_keeps_one_line_a_service_at_80_columns(platform):
    directory, project = platform
    assert run_cli("up", cwd=directory).returncode == 0
    result = run_cli("status", cwd=directory, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for service, image in (("redis", "redis:"), ("redis_exporter", "redis_exporter:")):
        (line,) = [line for line in lines if line.split() and line.split()[0] == service]
        words = line.split()
        assert words[1] == "running" and words[2] in ("ready", "healthy"), line
        assert words[3].isdigit() and words[4].startswith(image) and "mindscape-local" not in line


def test_the_light_engine_client_answers_as_the_sdk_adapter(platform, docker_client, monkeypatch):
    """The fast paths read the engine over its socket without the Docker SDK: same answers."""
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.adapters.engine_socket import SocketEngine, reader

    directory, project = platform
    assert run_cli("up", cwd=directory).returncode == 0
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    light, sdk = reader(), Engine()
    assert isinstance(light, SocketEngine)
    assert light.containers(project) == sdk.containers(project)
    assert set(light.containers(project)) == {"redis", "redis_exporter"}
    refs = [row["image"] for row in status_rows(directory)[1].values()] + ["no-such-image:1"]
    assert light.image_ids(refs) == sdk.image_ids(refs) and light.image_ids(refs)["no-such-image:1"] is None
    cid = sdk.containers(project)["redis"].container_id
    assert light.state(cid) == sdk.state(cid)
    monkeypatch.setattr("mindscape_ops.adapters.docker.Engine", lambda **options: ("sdk", options))
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")  # not a socket: the SDK's adapter
    assert reader()[0] == "sdk"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")
    assert reader().path == "/run/other.sock"


def test_status_and_no_op_up_load_neither_the_sdk_nor_the_model(platform):
    directory, _ = platform
    assert run_cli("up", cwd=directory).returncode == 0
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from mindscape_ops.provision import noop, status\n"
        "name, rows = status.quick([Path('platform.yaml')])\n"
        "assert noop.try_noop([Path('platform.yaml')], status.DEFAULT_UP) == [r['service'] for r in rows]\n"
        "heavy = ('docker', 'requests', 'pydantic', 'jinja2', 'yaml')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=directory, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
