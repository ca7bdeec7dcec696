"""`up`, `plan`, `status`, `down` on a real Docker engine with the local images.

One platform (examples/local under a unique project name) is brought up once for the module;
the tests then change it the way users do and check what the engine really holds.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import EXAMPLES, local_image_refs, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


def platform_text(project: str, extra: str = "") -> str:
    text = (EXAMPLES / "local" / "platform.yaml").read_text().replace("project: local", f"project: {project}")
    return text + extra


def status_of(directory: Path, code: int = 0) -> dict[str, dict]:
    """Rows of `status --json`; it exits 1 when an enabled service is down or not ready."""
    result = run_cli("status", "--json", cwd=directory)
    assert result.returncode == code, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


def plan_of(directory: Path) -> dict[str, dict]:
    result = run_cli("plan", "--json", cwd=directory)
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


def host_port(row: dict) -> int:
    return int(row["ports"][0].split("->")[0].rsplit(":", 1)[1])


def psql(directory: Path, sql: str):
    import psycopg

    secrets = dict(
        line.split("=", 1)
        for line in (directory / ".mindscape/secrets.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    port = host_port(status_of(directory)["postgres"])
    with psycopg.connect(
        host="127.0.0.1", port=port, user="app", password=secrets["POSTGRES_PASSWORD"], dbname="app", autocommit=True
    ) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else None


@pytest.fixture(scope="module")
def platform_dir(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("platform")
    project = unique_project("up")
    (directory / "platform.yaml").write_text(platform_text(project))
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory
    finally:
        remove_project(docker_client, project)


def test_cold_up_reaches_really_ready(platform_dir):
    rows = status_of(platform_dir)
    assert set(rows) == set(local_image_refs()) and "postgres" in rows
    for row in rows.values():
        assert row["state"] == "running" and row["up_to_date"] is True, row
        assert row["ports"][0].startswith("127.0.0.1:")
    assert psql(platform_dir, "SELECT 1") == [(1,)]
    gateway = host_port(rows["gateway"])
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway}/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP: HSTS only over TLS


def test_prometheus_scrapes_every_service_that_has_metrics(platform_dir):
    """Each registered service with a metrics endpoint is a Prometheus target, and it is up."""
    import time

    from mindscape_ops.services.registry import BY_NAME

    expected = {name for name in status_of(platform_dir) if BY_NAME[name].metrics}
    assert {"prometheus", "postgres_exporter", "redis_exporter"} <= expected
    port = host_port(status_of(platform_dir)["prometheus"])
    deadline, health = time.monotonic() + 90, {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets?state=active", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if all(health.get(job) == "up" for job in expected):
            break
        time.sleep(1)
    assert {job: health.get(job) for job in expected} == dict.fromkeys(expected, "up")


def test_pgbouncer_pools_connections_with_the_platform_user(platform_dir):
    import psycopg

    rows = status_of(platform_dir)
    secrets = (platform_dir / ".mindscape/secrets.env").read_text()
    password = next(line.split("=", 1)[1] for line in secrets.splitlines() if line.startswith("POSTGRES_PASSWORD="))
    with psycopg.connect(
        host="127.0.0.1",
        port=host_port(rows["pgbouncer"]),
        user="app",
        password=password,
        dbname="app",
        autocommit=True,
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    userlist = (platform_dir / ".mindscape/pgbouncer/userlist.txt").read_text()
    assert password not in userlist and "SCRAM-SHA-256$" in userlist
    for path in (platform_dir / "deploy").rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path


def test_second_up_changes_nothing(platform_dir, docker_client):
    project = status_of(platform_dir)["postgres"]["container"].rsplit("-", 1)[0]
    label = {"label": f"io.mindscape.project={project}"}
    before = {c.name: c.id for c in docker_client.containers.list(filters=label)}
    assert {row["action"] for row in plan_of(platform_dir).values()} == {"unchanged"}
    result = run_cli("up", cwd=platform_dir)
    assert result.returncode == 0, result.stderr
    assert "0 changed" in result.stderr
    assert {c.name: c.id for c in docker_client.containers.list(filters=label)} == before


def test_editing_a_rendered_config_recreates_only_its_service(platform_dir):
    rules = platform_dir / "deploy/prometheus/rules/services.yml"
    original = rules.read_text()
    rules.write_text(original + "# tuned by hand\n")
    try:
        plan = plan_of(platform_dir)
        assert plan["prometheus"] == {"service": "prometheus", "action": "recreate", "reason": "mounted config changed"}
        assert {row["action"] for name, row in plan.items() if name != "prometheus"} == {"unchanged"}
        result = run_cli("up", cwd=platform_dir)
        assert result.returncode == 0, result.stderr
        assert "1 changed" in result.stderr
        assert "kept 1 hand-edited" in result.stderr or "hand-edited" in result.stderr
    finally:
        assert run_cli("render", "--force", cwd=platform_dir).returncode == 0
        assert run_cli("up", cwd=platform_dir).returncode == 0


def test_data_survives_down_up_and_recreate(platform_dir):
    psql(platform_dir, "CREATE TABLE IF NOT EXISTS keep (v text); INSERT INTO keep VALUES ('survives')")
    assert run_cli("down", cwd=platform_dir).returncode == 0
    assert run_cli("up", cwd=platform_dir).returncode == 0
    assert psql(platform_dir, "SELECT v FROM keep") == [("survives",)]
    text = (platform_dir / "platform.yaml").read_text()
    (platform_dir / "platform.yaml").write_text(
        text.replace(
            'postgres: {image: "mindscape-local/postgres:15", port: auto}',
            'postgres: {image: "mindscape-local/postgres:15", port: auto, settings: {max_connections: 120}}',
        )
    )
    assert plan_of(platform_dir)["postgres"]["action"] == "recreate"
    assert run_cli("up", cwd=platform_dir).returncode == 0
    assert psql(platform_dir, "SHOW max_connections") == [("120",)]
    assert psql(platform_dir, "SELECT v FROM keep") == [("survives",)]


def test_killed_container_shows_and_comes_back(platform_dir, docker_client):
    name = status_of(platform_dir)["redis"]["container"]
    docker_client.containers.get(name).kill()
    assert status_of(platform_dir, code=1)["redis"]["state"] == "exited"
    assert plan_of(platform_dir)["redis"]["action"] == "start"
    result = run_cli("up", cwd=platform_dir)
    assert result.returncode == 0, result.stderr
    assert status_of(platform_dir)["redis"]["state"] == "running"


def test_down_volumes_without_yes_deletes_nothing(platform_dir, docker_client):
    project = status_of(platform_dir)["postgres"]["container"].rsplit("-", 1)[0]
    volumes = {v.name for v in docker_client.volumes.list(filters={"label": f"io.mindscape.project={project}"})}
    assert f"{project}-postgres-data" in volumes
    result = run_cli("down", "--volumes", cwd=platform_dir, input="")
    assert result.returncode == 2 and "--yes" in result.stderr and "Traceback" not in result.stderr
    assert status_of(platform_dir)["postgres"]["state"] == "running"
    after = {v.name for v in docker_client.volumes.list(filters={"label": f"io.mindscape.project={project}"})}
    assert after == volumes


def test_down_keeps_volumes_and_down_volumes_yes_deletes_them(platform_dir, docker_client):
    project = status_of(platform_dir)["postgres"]["container"].rsplit("-", 1)[0]
    label = {"label": f"io.mindscape.project={project}"}
    assert run_cli("down", cwd=platform_dir).returncode == 0
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.networks.list(filters=label) == []
    assert docker_client.volumes.list(filters=label)
    result = run_cli("down", "--volumes", "--yes", cwd=platform_dir)
    assert result.returncode == 0, result.stderr
    assert docker_client.volumes.list(filters=label) == []
    audit = [json.loads(line) for line in (platform_dir / ".mindscape/audit.log").read_text().splitlines()]
    assert [e["command"] for e in audit].count("down") >= 2


# -- refusals: nothing is created --------------------------------------------------------------


def test_taken_port_is_refused_before_anything_is_created(tmp_path, docker_client, local_images):
    project = unique_project("port")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "platform.yaml").write_text(
            f"version: 1\nproject: {project}\nservices:\n"
            f"  redis: {{image: 'mindscape-local/redis:7', port: auto}}\n"
            f"  postgres: {{image: 'mindscape-local/postgres:15', port: {port}}}\n"
        )
        result = run_cli("up", cwd=tmp_path)
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"services.postgres.port: {port} on 127.0.0.1 is already in use by " in result.stderr
        assert f"(pid {os.getpid()})" in result.stderr
        assert "port: auto" in result.stderr and "Traceback" not in result.stderr
        assert docker_client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"}) == []
    finally:
        remove_project(docker_client, project)


def test_missing_image_exits_3_and_names_it(tmp_path, docker_client):
    project = unique_project("img")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  redis: {{image: 'mindscape-local/nope:1', port: auto}}\n"
    )
    result = run_cli("up", cwd=tmp_path, timeout=120)
    try:
        assert result.returncode == 3, result.stderr
        assert "mindscape-local/nope:1" in result.stderr and "mindscape images build SERVICE" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        remove_project(docker_client, project)


def test_migrate_on_up_applies_pending_migrations_once_postgres_is_ready(tmp_path, docker_client, local_images):
    project = unique_project("mig")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: 'mindscape-local/postgres:15', port: auto}}\n"
        "database: {migrate_on_up: true}\n"
    )
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations/20260101000000_widgets.sql").write_text(
        "-- migrate:up\nCREATE TABLE widgets (id int);\n-- migrate:down\nDROP TABLE widgets;\n"
    )
    try:
        # a production URL exported in the shell must not be what `up` migrates
        elsewhere = {"DATABASE_URL": "postgresql://prod:secret@127.0.0.1:9/prod"}
        result = run_cli("up", cwd=tmp_path, timeout=300, env=elsewhere)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 migration(s) applied" in result.stderr
        assert psql(tmp_path, "SELECT count(*) FROM widgets") == [(0,)]
        (tmp_path / "migrations/20260102000000_broken.sql").write_text("-- migrate:up\nSELEC 1;\n")
        result = run_cli("up", cwd=tmp_path, timeout=300)
        assert result.returncode == 1 and "20260102000000_broken.sql:2" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    finally:
        remove_project(docker_client, project)


def test_logs_shows_a_services_output(platform_dir):
    assert run_cli("up", cwd=platform_dir).returncode == 0
    # examples/local runs the log store: `logs` reads it, and the engine's log driver posts its
    # lines there in batches (every 5 s), so right after `up` the newest may still be on their way
    deadline = time.monotonic() + 30
    while True:
        result = run_cli("logs", "postgres", "--tail", "5", cwd=platform_dir)
        assert result.returncode == 0, result.stderr
        if result.stdout.strip() or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert 0 < len(result.stdout.strip().splitlines()) <= 5
    assert "database system is ready to accept connections" in run_cli("logs", "postgres", cwd=platform_dir).stdout
    unknown = run_cli("logs", "nope", cwd=platform_dir)
    assert unknown.returncode == 2 and "not an enabled service: nope" in unknown.stderr


def test_service_not_ready_in_time_fails_with_its_last_log_lines(tmp_path, docker_client, local_images):
    project = unique_project("slow")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        "  postgres: {image: 'mindscape-local/postgres:15', port: auto, health: {timeout: 200ms, interval: 50ms}}\n"
    )
    try:
        result = run_cli("up", cwd=tmp_path, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "postgres: not ready after 0.2s" in result.stderr
        assert f"last log lines of {project}-postgres" in result.stderr
        assert "health.timeout" in result.stderr and "Traceback" not in result.stderr
    finally:
        remove_project(docker_client, project)


def test_exporter_reads_postgres_through_pgbouncer(tmp_path, docker_client, local_images):
    project = unique_project("pool")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        "  postgres: {image: 'mindscape-local/postgres:15', port: auto}\n"
        "  pgbouncer: {image: 'mindscape-local/pgbouncer:1.18', port: auto}\n"
        "  postgres_exporter: {image: 'mindscape-local/postgres_exporter:0.11', port: auto, via_pgbouncer: true}\n"
    )
    try:
        result = run_cli("up", cwd=tmp_path, timeout=300)
        # the exporter is ready only when its /metrics shows pg_up 1: it reached postgres via pgbouncer
        assert result.returncode == 0, result.stdout + result.stderr
        exporter = status_of(tmp_path)["postgres_exporter"]
        with urllib.request.urlopen(f"http://127.0.0.1:{host_port(exporter)}/metrics", timeout=5) as response:
            assert "pg_up 1" in response.read().decode()
    finally:
        remove_project(docker_client, project)


def test_adding_pgbouncer_later_leaves_postgres_alone(tmp_path, docker_client, local_images):
    project = unique_project("addpool")
    base = (
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: 'mindscape-local/postgres:15', port: auto}}\n"
    )
    (tmp_path / "platform.yaml").write_text(base)
    try:
        assert run_cli("up", cwd=tmp_path, timeout=300).returncode == 0
        (tmp_path / "platform.yaml").write_text(
            base + "  pgbouncer: {image: 'mindscape-local/pgbouncer:1.18', port: auto}\n"
        )
        plan = plan_of(tmp_path)
        assert plan["postgres"]["action"] == "unchanged" and plan["pgbouncer"]["action"] == "create"
        # the database predates pgbouncer's verifier: up copies the one postgres really stores
        result = run_cli("up", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert status_of(tmp_path)["pgbouncer"]["state"] == "running"
    finally:
        remove_project(docker_client, project)
