"""The Redis exporter on a real engine (mindscape-local images): `docker inspect` of its
container shows the path of its password file and never the password, and it still scrapes
Redis (redis_up 1) through that file, odd characters in the password included. `plan` after
`up` finds it unchanged."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from mindscape_ops.workspace.store import dotenv_line

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

IMAGES = {"redis": "mindscape-local/redis:7", "redis_exporter": "mindscape-local/redis_exporter:1"}


def test_the_exporter_scrapes_redis_with_no_password_in_its_container(docker_client, tmp_path):
    for image in IMAGES.values():
        docker_client.images.get(image)  # built by scripts/build-local-images
    project = unique_project("rx")
    services = "".join(f"  {name}: {{image: '{image}', port: auto}}\n" for name, image in IMAGES.items())
    (tmp_path / "platform.yaml").write_text(f"version: 1\nproject: {project}\nservices:\n{services}")
    # odd characters, to go through the JSON map whole; the token is what is looked for
    token = uuid.uuid4().hex
    password = f"r#d = 'x' \"y\" $PATH \\ \u00fc {token}"
    (tmp_path / ".mindscape").mkdir(mode=0o700)
    secrets = tmp_path / ".mindscape" / "secrets.env"
    secrets.write_text(dotenv_line("REDIS_PASSWORD", password))
    secrets.chmod(0o600)
    try:
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr

        exporter = docker_client.containers.get(f"{project}-redis_exporter")
        inspected = json.dumps(docker_client.api.inspect_container(exporter.id), ensure_ascii=False)
        assert token not in inspected and password not in inspected
        env = dict(item.split("=", 1) for item in exporter.attrs["Config"]["Env"])
        assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_exporter-passwords.json"
        assert not any("PASSWORD" in name and not name.endswith("_FILE") for name in env)
        [mount] = [m for m in exporter.attrs["Mounts"] if m["Destination"] == env["REDIS_PASSWORD_FILE"]]
        assert mount["RW"] is False

        port = json.loads((tmp_path / ".mindscape" / "state.json").read_text())["ports"]["redis_exporter"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert "redis_up 1" in metrics.splitlines()

        again = run_cli("plan", "--json", cwd=tmp_path)
        assert {action["action"] for action in json.loads(again.stdout)} == {"unchanged"}, again.stdout
    finally:
        remove_project(docker_client, project)
