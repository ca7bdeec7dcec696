"""The Redis exporter on a real engine (mindscape-local images): `docker inspect` of its
container shows the path of its password file and never the password, and it still scrapes
Redis (redis_up 1) through that file, odd characters in the password included. `plan` after
`up` finds it unchanged."""

from __future__ import annotations

import json
import uuid

import pytest

from .conftest import remove_project, run_cli
from .exporter_support import assert_plan_unchanged, metrics_of, platform_with_password

pytestmark = pytest.mark.engine

IMAGES = {"redis": "mindscape-local/redis:7", "redis_exporter": "mindscape-local/redis_exporter:1"}


def test_the_exporter_scrapes_redis_with_no_password_in_its_container(docker_client, tmp_path):
    # odd characters, to go through the JSON map whole; the token is what is looked for
    token = uuid.uuid4().hex
    password = f"r#d = 'x' \"y\" $PATH \\ \u00fc {token}"
    project = platform_with_password(docker_client, tmp_path, "rx", IMAGES, ("REDIS_PASSWORD", password))
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

        lines = metrics_of(tmp_path, "redis_exporter")
        assert "redis_up 1" in lines

        assert_plan_unchanged(tmp_path)
    finally:
        remove_project(docker_client, project)
