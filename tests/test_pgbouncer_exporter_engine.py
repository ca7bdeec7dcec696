"""The pgbouncer exporter on a real engine (mindscape-local images): `docker inspect` of its
container holds no password (neither in its environment nor its command: a path to a libpq
password file), the file it reads is 0600 and belongs to the user it runs as, and it still logs in
to pgbouncer's admin console through that file (pgbouncer_up 1 from the official image; from
Debian's, which has no such series, the pools and users it read there). `plan` after `up` finds it
unchanged."""

from __future__ import annotations

import json
import uuid

import pytest

from .conftest import remove_project, run_cli
from .exporter_support import assert_plan_unchanged, metrics_of, platform_with_password

pytestmark = pytest.mark.engine

IMAGES = {
    "postgres": "mindscape-local/postgres:15",
    "pgbouncer": "mindscape-local/pgbouncer:1.18",
    "pgbouncer_exporter": "mindscape-local/pgbouncer_exporter:1",
}


def test_the_exporter_reads_pgbouncer_with_no_password_in_its_container(docker_client, tmp_path):
    # a `:` and a `\` go through the password file's escaping; the token is what is looked for
    token = uuid.uuid4().hex
    password = f"p:w\\{token}"
    project = platform_with_password(docker_client, tmp_path, "pbx", IMAGES, ("POSTGRES_PASSWORD", password))
    try:
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr

        exporter = docker_client.containers.get(f"{project}-pgbouncer_exporter")
        inspected = json.dumps(docker_client.api.inspect_container(exporter.id), ensure_ascii=False)
        assert token not in inspected
        env = dict(item.split("=", 1) for item in exporter.attrs["Config"]["Env"])
        assert "PGPASSWORD" not in env
        assert env["PGPASSFILE"] == "/run/secrets/pgbouncer_exporter.pgpass"
        [mount] = [m for m in exporter.attrs["Mounts"] if m["Destination"] == env["PGPASSFILE"]]
        assert mount["RW"] is False
        # libpq's rule: 0600, and the reader is its owner (not root)
        run_as = exporter.attrs["Config"]["User"]
        found = exporter.exec_run(["stat", "-c", "%a %u:%g", env["PGPASSFILE"]]).output.decode().split()
        assert found == ["600", run_as] and not run_as.startswith("0:")

        lines = metrics_of(tmp_path, "pgbouncer_exporter")
        # The official image says pgbouncer_up 1; Debian's exporter (the local image) has no such
        # series, and what it read from the admin console once logged in is the proof: its pool
        # and user counts.
        assert (
            "pgbouncer_up 1" in lines
            or "pgbouncer_up 1.0" in lines
            or not any(line.startswith("pgbouncer_up ") for line in lines)
        ), [line for line in lines if line.startswith("pgbouncer_up")]
        assert any(line.startswith("pgbouncer_") and 'database="pgbouncer"' in line for line in lines), lines[-40:]
        up_or_users = [line for line in lines if line.startswith("pgbouncer_up ")] or [
            line for line in lines if line.startswith("pgbouncer_users ")
        ]
        assert up_or_users and float(up_or_users[0].split()[-1]) >= 1, up_or_users

        assert_plan_unchanged(tmp_path)
    finally:
        remove_project(docker_client, project)
