"""`mindscape check` against a real platform from `mindscape up` (the local images): every gate
passes on a healthy platform, and each fails, with its remedy, when its condition is broken
the way it breaks in life. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import EXAMPLES, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

ORIGIN = "https://app.example.com"
EXTRA = f"""security:
  cors:
    allowed_origins: ["{ORIGIN}"]
monitoring:
  receivers:
    - {{name: ops, kind: webhook, url: "http://127.0.0.1:9/alerts"}}
"""
MIGRATION = "-- migrate:up\nCREATE TABLE notes (id int);\n\n-- migrate:down\nDROP TABLE notes;\n"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
NOT_APPLICABLE = {
    "monitoring.grafana",
    "backups.wal_archiving",
    "backups.restorable_window",
}  # no Grafana; backups.pitr off


def platform_text(project: str) -> str:
    text = (EXAMPLES / "local" / "platform.yaml").read_text().replace("project: local", f"project: {project}")
    # a scrape every second: a target taken down shows within the test's patience
    text = text.replace("prometheus: {image: ", "prometheus: {scrape_interval: 1s, image: ")
    return text + EXTRA


def git(directory: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(directory), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("check")
    project = unique_project("chk")
    (directory / "platform.yaml").write_text(platform_text(project))
    try:
        result = run_cli("up", cwd=directory, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        (directory / "migrations").mkdir()
        (directory / "migrations" / "20260101000000_create_notes.sql").write_text(MIGRATION)
        result = run_cli("migrate", "up", cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
        git(directory, "init", "-q")
        git(directory, "add", ".")
        git(directory, "commit", "-q", "-m", "platform")
        for backup in backed_up(directory, "create"):
            assert run_cli("backup", "verify", backup, cwd=directory).returncode == 0
        yield directory, project
    finally:
        remove_project(docker_client, project)


def backed_up(directory: Path, *create: str) -> list[str]:
    """`mindscape backup create` (when asked), then the ids of the newest backup of each service."""
    if create:
        result = run_cli("backup", "create", cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(run_cli("backup", "list", "--json", cwd=directory).stdout)
    newest: dict[str, str] = {}
    for backup in listed:
        newest.setdefault(backup["service"], backup["id"])
    return list(newest.values())


def check(directory: Path, *args: str, env: dict[str, str] | None = None):
    result = run_cli("check", "--json", *args, cwd=directory, env=env, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    rows = json.loads(result.stdout)
    return result.returncode, {row["id"]: row for row in rows}


def check_until(directory: Path, gate: str, status: str, patience: float = 30.0, *args: str) -> dict:
    """Run check until `gate` reaches `status` (Prometheus and nginx notice changes a moment later)."""
    deadline = time.monotonic() + patience
    while True:
        _, rows = check(directory, *args)
        if rows[gate]["status"] == status or time.monotonic() > deadline:
            assert rows[gate]["status"] == status, rows[gate]
            return rows
        time.sleep(0.5)


def secrets_of(directory: Path) -> dict[str, str]:
    lines = (directory / ".mindscape/secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def assert_failed(row: dict, *words: str) -> None:
    assert row["status"] == "fail" and row["severity"] == "error", row
    for word in words:
        assert word in row["message"], row
    assert row["remedy"], row


def test_every_gate_passes_on_a_healthy_platform_and_the_three_outputs_agree(platform, tmp_path):
    directory, _ = platform
    junit = tmp_path / "reports" / "check.xml"
    code, rows = check(directory, "--junit", str(junit))
    assert code == 0, rows
    for gate, row in rows.items():
        expected = "skip" if gate in NOT_APPLICABLE else "pass"
        assert row["status"] == expected, row
        assert row["group"] == gate.split(".")[0] and isinstance(row["duration_ms"], int)
    services = {gate.split(".")[1] for gate in rows if gate.startswith("services.")}
    assert {"postgres", "redis", "pgbouncer", "gateway", "prometheus", "redis_memory"} <= services
    assert "through pgbouncer" in rows["services.pgbouncer"]["message"]
    assert "1 migration(s) applied" in rows["database.migrations"]["message"]
    assert ORIGIN in rows["security.cors"]["message"] and "429" in rows["security.rate_limit"]["message"]

    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == set(rows)
    for gate, case in cases.items():
        assert (case.find("skipped") is not None) == (rows[gate]["status"] == "skip")
        assert case.find("failure") is None

    table = run_cli("check", cwd=directory)
    assert table.returncode == 0, table.stdout + table.stderr
    for gate, row in rows.items():
        line = next(line for line in table.stdout.splitlines() if f" {gate} " in line)
        assert row["status"] in line
    everything = table.stdout + table.stderr + junit.read_text() + json.dumps(rows)
    assert not [key for key, value in secrets_of(directory).items() if value in everything]


def test_only_skip_and_unknown_groups(platform):
    directory, _ = platform
    code, rows = check(directory, "--only", "security", "--only", "config", "--skip", "config")
    assert code == 0 and {row["group"] for row in rows.values()} == {"security"}
    result = run_cli("check", "--only", "nonsense", cwd=directory)
    assert result.returncode == 2 and "unknown gate group: nonsense" in result.stderr


def test_stopped_redis_fails_its_gates_and_an_unreachable_engine_says_why(platform, docker_client):
    directory, project = platform
    container = docker_client.containers.get(f"{project}-redis")
    container.stop(timeout=2)
    try:
        code, rows = check(directory, "--only", "services")
        assert code == 1
        assert_failed(rows["services.redis"], f"{project}-redis is exited")
        assert "mindscape up" in rows["services.redis"]["remedy"]
        assert_failed(rows["services.redis_memory"])
        assert rows["services.postgres"]["status"] == "pass"
        code, rows = check(directory, "--only", "services", env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
        assert code == 1
        assert_failed(rows["services.redis"], "could not run:")
        assert rows["services.postgres"]["status"] == "pass"  # a passing probe needs no engine
    finally:
        container.start()
    check_until(directory, "services.redis", "pass", 30, "--only", "services")


def test_redis_memory_changed_at_runtime(platform):
    import redis

    directory, _ = platform
    status = json.loads(run_cli("status", "--json", cwd=directory).stdout)
    port = next(int(r["ports"][0].split("->")[0].rsplit(":", 1)[1]) for r in status if r["service"] == "redis")
    client = redis.Redis(host="127.0.0.1", port=port, password=secrets_of(directory)["REDIS_PASSWORD"])
    client.config_set("maxmemory-policy", "noeviction")
    try:
        code, rows = check(directory, "--only", "services")
        assert code == 1
        assert_failed(rows["services.redis_memory"], "maxmemory-policy is 'noeviction'", "'allkeys-lru'")
    finally:
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.close()


def test_a_scrape_target_down(platform, docker_client):
    directory, project = platform
    container = docker_client.containers.get(f"{project}-node_exporter")
    container.stop(timeout=2)
    try:
        rows = check_until(directory, "monitoring.targets", "fail", 30, "--only", "monitoring")
        assert_failed(rows["monitoring.targets"], "node_exporter")
        assert "mindscape status" in rows["monitoring.targets"]["remedy"]
    finally:
        container.start()
    check_until(directory, "monitoring.targets", "pass", 30, "--only", "monitoring")


def test_loose_secrets_file_mode(platform):
    directory, _ = platform
    secrets = directory / ".mindscape/secrets.env"
    secrets.chmod(0o644)
    try:
        code, rows = check(directory, "--only", "security")
        assert code == 1
        assert_failed(rows["security.secrets_mode"], "0644")
        assert "chmod 600" in rows["security.secrets_mode"]["remedy"]
    finally:
        secrets.chmod(0o600)


def test_a_secret_in_a_tracked_file(platform):
    directory, _ = platform
    password = secrets_of(directory)["POSTGRES_PASSWORD"]
    leak = directory / "notes.txt"
    leak.write_text(f"db: postgresql://app:{password}@localhost/app\n")
    git(directory, "add", "notes.txt")
    try:
        result = run_cli("check", "--json", "--only", "security", cwd=directory)
        assert result.returncode == 1 and password not in result.stdout + result.stderr
        row = {r["id"]: r for r in json.loads(result.stdout)}["security.secrets_in_files"]
        assert_failed(row, "notes.txt holds POSTGRES_PASSWORD")
        assert "rotate" in row["remedy"]
    finally:
        git(directory, "rm", "-q", "--cached", "notes.txt")
        leak.unlink()


def test_a_hand_edited_rendered_file(platform):
    directory, _ = platform
    runbook = directory / "docs/runbooks/daily-checks.md"
    original = runbook.read_text()
    runbook.write_text(original + "\nA line someone added.\n")
    try:
        code, rows = check(directory, "--only", "config")
        assert code == 1
        assert_failed(rows["config.rendered"], "docs/runbooks/daily-checks.md (hand-edited)")
        assert "mindscape render" in rows["config.rendered"]["remedy"]
    finally:
        runbook.write_text(original)


def test_a_pending_migration_and_the_junit_failure_agrees(platform, tmp_path):
    directory, _ = platform
    pending = directory / "migrations" / "20260202000000_add_column.sql"
    pending.write_text(MIGRATION.replace("CREATE TABLE notes (id int)", "ALTER TABLE notes ADD c int"))
    junit = tmp_path / "check.xml"
    try:
        code, rows = check(directory, "--only", "database", "--only", "config", "--junit", str(junit))
        assert code == 1
        row = rows["database.migrations"]
        assert_failed(row, "20260202000000_add_column.sql pending")
        assert "mindscape migrate up" in row["remedy"]
    finally:
        pending.unlink()
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == (str(len(rows)), "1")
    (failure,) = root.iter("failure")
    assert failure.get("message") == row["message"] and row["remedy"] in failure.text


def test_gateway_without_a_header_a_rate_limit_or_its_cors_policy(platform, docker_client):
    directory, project = platform
    conf = directory / "deploy/gateway/nginx.conf"
    original = conf.read_text()
    broken = "\n".join(
        line
        for line in original.splitlines()
        if "add_header X-Frame-Options" not in line and "limit_req zone=" not in line
    ).replace(
        'map $http_origin $cors_origin {\n        default "";',
        "map $http_origin $cors_origin {\n        default $http_origin;",
    )
    assert broken.count("\n") < original.count("\n") and "default $http_origin;" in broken
    gateway = docker_client.containers.get(f"{project}-gateway")
    conf.write_text(broken + "\n")  # in place: the container sees this very file (a bind mount)
    try:
        assert gateway.exec_run(["nginx", "-s", "reload"]).exit_code == 0
        rows = check_until(directory, "security.headers", "fail", 15, "--only", "security", "--only", "config")
        assert_failed(rows["security.headers"], "X-Frame-Options missing")
        assert_failed(rows["security.rate_limit"], "none answered 429")
        assert_failed(rows["security.cors"], "another origin got Access-Control-Allow-Origin")
        assert_failed(rows["config.rendered"], "deploy/gateway/nginx.conf (hand-edited)")
        assert rows["security.healthz"]["status"] == "pass"
    finally:
        conf.write_text(original)
        gateway.exec_run(["nginx", "-s", "reload"])
    check_until(directory, "security.headers", "pass", 15, "--only", "security")


def test_the_newest_backup_old_or_unverified(platform):
    directory, project = platform
    manifest = directory / "backups" / project / f"{backed_up(directory)[0]}.manifest.json"
    original = manifest.read_text()
    data = json.loads(original)
    data["created_at"] = "2020-01-01T03:00:00+00:00"
    manifest.write_text(json.dumps(data))
    try:
        code, rows = check(directory, "--only", "backups")
        assert code == 1
        assert_failed(rows["backups.fresh"], f"{data['service']}: ", "old", "grace")
        assert "mindscape backup create" in rows["backups.fresh"]["remedy"]
    finally:
        manifest.write_text(original)

    fresh = backed_up(directory, "create")
    code, rows = check(directory, "--only", "backups")
    assert code == 1 and rows["backups.fresh"]["status"] == "pass"
    assert_failed(rows["backups.verified"], *(f"{backup} never verified" for backup in fresh))
    assert rows["backups.destination"]["status"] == "pass"
    for backup in fresh:
        assert run_cli("backup", "verify", backup, cwd=directory).returncode == 0
    code, rows = check(directory, "--only", "backups")
    assert code == 0 and rows["backups.verified"]["status"] == "pass"
