"""The workspace under loss and odd input, on a real engine: state.json corrupt, secrets.env
deleted while the data lives on, the same `project:` in two folders, and passwords with
characters a shell or a dotenv parser could mangle."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


def platform_text(project: str, images: dict[str, str]) -> str:
    return (
        f"version: 1\nproject: {project}\nservices:\n"
        f"  postgres: {{image: {images['postgres']}, port: auto}}\n"
        f"  redis: {{image: {images['redis']}, port: auto}}\n"
    )


def containers(docker_client, project: str) -> dict[str, str]:
    found = docker_client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"})
    return {c.labels["io.mindscape.service"]: c.id for c in found}


def ports(directory) -> dict[str, list[str]]:
    result = run_cli("status", "--json", cwd=directory)
    assert result.returncode == 0, result.stderr
    return {row["service"]: row["ports"] for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("workspace")
    project = unique_project("ws")
    (directory / "platform.yaml").write_text(platform_text(project, local_images))
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory, project
    finally:
        remove_project(docker_client, project)


@pytest.mark.parametrize("garbage", ["not json at all {", "", '{"ports": {"postgres": 4'])
def test_corrupt_state_is_set_aside_and_ports_come_back_from_the_containers(platform, docker_client, garbage):
    directory, project = platform
    before, ids = ports(directory), containers(docker_client, project)
    (directory / ".mindscape" / "state.json").write_text(garbage)
    result = run_cli("up", cwd=directory, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "was not valid state" in result.stderr and "Traceback" not in result.stderr
    assert list((directory / ".mindscape").glob("state.json.corrupt-*"))
    assert ports(directory) == before and containers(docker_client, project) == ids  # nothing recreated
    saved = json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]
    assert {f"127.0.0.1:{port}" for port in saved.values()} == {p[0].split("->")[0] for p in before.values()}


def test_lost_secrets_with_data_left_stop_up_before_anything_changes(platform, docker_client):
    directory, project = platform
    secrets = directory / ".mindscape" / "secrets.env"
    kept = secrets.with_name("secrets.env.kept")
    ids = containers(docker_client, project)
    secrets.rename(kept)
    try:
        result = run_cli("up", cwd=directory, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "has no POSTGRES_PASSWORD, REDIS_PASSWORD" in result.stderr
        assert f"{project}-postgres-data" in result.stderr and "down --volumes" in result.stderr
        assert not secrets.exists()  # no new passwords were written
        assert containers(docker_client, project) == ids  # nothing recreated
    finally:
        kept.rename(secrets)
    assert run_cli("up", cwd=directory, timeout=300).returncode == 0


def test_secrets_made_anew_while_the_data_lives_on_stop_up(platform, docker_client):
    """secrets.env deleted, then made anew (by `init`, or by hand): the volumes remember which
    passwords they were made with, and up stops before recreating anything."""
    directory, project = platform
    secrets = directory / ".mindscape" / "secrets.env"
    kept = secrets.read_text()
    ids = containers(docker_client, project)
    secrets.write_text("POSTGRES_PASSWORD=brand-new-1\nREDIS_PASSWORD=brand-new-2\n")
    try:
        result = run_cli("up", cwd=directory, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "were made with other passwords" in result.stderr and f"{project}-postgres-data" in result.stderr
        assert "brand-new" not in result.stderr
        assert containers(docker_client, project) == ids
    finally:
        secrets.write_text(kept)
    assert run_cli("up", cwd=directory, timeout=300).returncode == 0


def test_the_same_project_in_another_folder_is_refused_naming_the_owner(platform, docker_client, tmp_path):
    directory, project = platform
    shutil.copy(directory / "platform.yaml", tmp_path / "platform.yaml")
    ids = containers(docker_client, project)
    for command in (["down"], ["down", "--volumes", "--yes"], ["up"]):
        result = run_cli(*command, cwd=tmp_path, timeout=300)
        assert result.returncode == 1, (command, result.stderr)
        assert f"belongs to another folder, {directory.resolve()}" in result.stderr
        assert containers(docker_client, project) == ids
    assert {v.name for v in docker_client.volumes.list(filters={"label": f"io.mindscape.project={project}"})} == {
        f"{project}-postgres-data",
        f"{project}-redis-data",
    }


ODD_PASSWORDS = {"POSTGRES_PASSWORD": "p#g = 'x' \"y\" $HOME", "REDIS_PASSWORD": "r#d = 'x' \"y\" $PATH"}


def test_passwords_with_odd_characters_reach_the_services_whole(tmp_path, docker_client, local_images):
    import psycopg
    import redis

    from mindscape_ops.workspace.store import dotenv_line

    project = unique_project("odd")
    (tmp_path / "platform.yaml").write_text(platform_text(project, local_images))
    (tmp_path / ".mindscape").mkdir(mode=0o700)
    secrets = tmp_path / ".mindscape" / "secrets.env"
    secrets.write_text("".join(dotenv_line(key, value) for key, value in ODD_PASSWORDS.items()))
    secrets.chmod(0o600)
    try:
        result = run_cli("up", cwd=tmp_path, timeout=600)
        assert result.returncode == 0, result.stderr
        published = {name: int(p[0].split("->")[0].rsplit(":", 1)[1]) for name, p in ports(tmp_path).items()}
        with psycopg.connect(
            host="127.0.0.1",
            port=published["postgres"],
            user="app",
            dbname="app",
            password=ODD_PASSWORDS["POSTGRES_PASSWORD"],
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        client = redis.Redis(host="127.0.0.1", port=published["redis"], password=ODD_PASSWORDS["REDIS_PASSWORD"])
        assert client.ping()
        client.close()
    finally:
        remove_project(docker_client, project)


def test_passwords_are_not_in_what_docker_inspect_shows(platform, docker_client):
    """Postgres and Redis get their passwords as files (and Redis checks a hash): the container
    config, labels and command line hold a path at most, never a password."""
    from mindscape_ops.workspace.store import Workspace

    directory, project = platform
    secrets = set(Workspace(directory).read_secrets().values())
    assert secrets
    for container in docker_client.containers.list(filters={"label": f"io.mindscape.project={project}"}):
        shown = json.dumps(container.attrs["Config"]) + json.dumps(container.attrs["HostConfig"])
        assert not any(secret in shown for secret in secrets), container.name
    postgres = docker_client.containers.get(f"{project}-postgres")
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD" in postgres.attrs["Config"]["Env"]
