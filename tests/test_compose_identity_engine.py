"""The compose export of a platform with the identity service, run with Debian's docker-compose
1.29 on the local images, as a user who leaves mindscape would: its init steps make Kratos'
role and database and apply its migrations, so Kratos answers /health/ready; a second `up -d`
runs the steps again (both are idempotent), keeps Kratos as it is, and it still answers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mindscape_ops.adapters.docker import Engine

from .conftest import need, remove_project, run_cli, unique_project

pytestmark = [pytest.mark.engine, pytest.mark.tools]
POSTGRES, KRATOS = "mindscape-local/postgres:15", "mindscape-local/identity:1.3.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose(root: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    """docker-compose as the export's header says: from deploy/, the secrets by --env-file."""
    env_file = root / ".mindscape" / "secrets.env"
    return subprocess.run(
        ["docker-compose", "-p", project, "--env-file", str(env_file), *args],
        cwd=root / "deploy",
        text=True,
        capture_output=True,
        timeout=600,
    )


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_ready(port: int, patience: float = 120.0) -> int:
    deadline = time.monotonic() + patience
    status = ready_status(port)
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status = ready_status(port)
    return status


def test_kratos_serves_from_the_compose_export_and_a_second_up_changes_nothing(tmp_path, docker_client):
    import docker.errors

    if not shutil.which("docker-compose"):
        need("docker-compose is not installed (apt-get install docker-compose)")
    for ref in (POSTGRES, KRATOS):
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            need(f"image {ref} missing: run `mindscape images build {ref.split('/')[1].split(':')[0]}`")
    project = unique_project("cid")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        f'  postgres: {{image: "{POSTGRES}", port: auto}}\n'
        f'  identity: {{image: "{KRATOS}", port: auto, admin_port: {free_port()}}}\n'
    )
    result = run_cli("render", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    secrets = dict(
        line.split("=", 1) for line in (tmp_path / ".mindscape" / "secrets.env").read_text().splitlines() if "=" in line
    )
    exported = (tmp_path / "deploy" / "compose.yaml").read_text()
    assert secrets["IDENTITY_DB_PASSWORD"] and secrets["IDENTITY_DB_PASSWORD"] not in exported
    try:
        first = compose(tmp_path, project, "up", "-d")
        assert first.returncode == 0, first.stderr[-3000:]
        kratos = docker_client.containers.get(f"{project}-identity")
        binding = kratos.attrs["NetworkSettings"]["Ports"][f"{4433}/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        port = int(binding["HostPort"])
        status = wait_ready(port)
        assert status == 200, docker_client.containers.get(f"{project}-identity").logs(tail=30).decode()
        # mindscape (status, down) finds each service's container, not a step's of the same image
        observed = Engine().containers(project)
        assert {name: found.name for name, found in observed.items()} == {
            name: f"{project}-{name}" for name in ("postgres", "identity", "identity-database", "identity-migrate")
        }
        for step in ("database", "migrate"):  # one-offs: ran to completion, well
            state = docker_client.containers.get(f"{project}-identity-{step}").attrs["State"]
            assert state["Status"] == "exited" and state["ExitCode"] == 0, step
        migrated = docker_client.containers.get(f"{project}-postgres").exec_run(
            ["psql", "-h", "127.0.0.1", "-U", "identity", "-d", "identity", "-tAc", "SELECT count(*) FROM identities"],
            environment={"PGPASSWORD": secrets["IDENTITY_DB_PASSWORD"]},
        )
        assert migrated.exit_code == 0 and migrated.output.decode().strip() == "0", migrated.output

        second = compose(tmp_path, project, "up", "-d")
        assert second.returncode == 0, second.stderr[-3000:]
        assert f"{project}-identity is up-to-date" in second.stderr  # not recreated nor restarted
        assert docker_client.containers.get(f"{project}-identity").id == kratos.id
        for step in ("database", "migrate"):  # ran again, and found nothing to do
            state = docker_client.containers.get(f"{project}-identity-{step}").attrs["State"]
            assert state["Status"] == "exited" and state["ExitCode"] == 0, step
        assert wait_ready(port) == 200
    finally:
        down = compose(tmp_path, project, "down", "-v")
        remove_project(docker_client, project)
        assert down.returncode == 0, down.stderr[-2000:]
