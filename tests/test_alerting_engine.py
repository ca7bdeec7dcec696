"""The alerting path on a real platform (`mindscape up` of the local images): `up` says loudly
that alerts reach nobody, every exporter the built-in alerts read serves its metrics
(pgbouncer's waiting clients, the gateway's requests by status, Postgres' start time, the
last backup's time through node_exporter), Prometheus scrapes them all and loads every rule
group without an evaluation error, and `check` warns that no receiver is set."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import EXAMPLES, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

LOCAL = {
    "pgbouncer_exporter": "mindscape-local/pgbouncer_exporter:1",
    "gateway_exporter": "mindscape-local/gateway_exporter:3.0",
}
ALERTING = {"prometheus", "alertmanager", "postgres", "pgbouncer", "gateway", "node_exporter", "postgres_exporter"}


def platform_text(project: str) -> str:
    lines = [f"version: 1\nproject: {project}\nservices:\n"]
    for line in (EXAMPLES / "local" / "platform.yaml").read_text().splitlines():
        name = line.strip().split(":")[0]
        if name in ALERTING:
            lines.append(line.replace("prometheus: {image: ", "prometheus: {scrape_interval: 1s, image: ") + "\n")
    lines += [f'  {name}: {{image: "{image}", port: auto}}\n' for name, image in LOCAL.items()]
    return "".join(lines)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    import docker.errors

    for image in LOCAL.values():
        try:
            docker_client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{image} is missing: run `mindscape images build --all`")
    directory = tmp_path_factory.mktemp("alerting")
    project = unique_project("alrt")
    (directory / "platform.yaml").write_text(platform_text(project))
    try:
        up = run_cli("up", cwd=directory, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        yield directory, project, up
    finally:
        remove_project(docker_client, project)


def ports(directory: Path) -> dict[str, int]:
    """service -> host port: every service here has `port: auto`, picked by `up` and kept in state."""
    return json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return answer.read().decode()


def eventually(read, wanted: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = read()
        except (urllib.error.URLError, ConnectionError, OSError):
            text = ""
        if wanted in text:
            return text
        time.sleep(1)
    raise AssertionError(f"{wanted!r} never showed; last answer:\n{text[-2000:]}")


def test_up_says_alerts_reach_nobody(platform):
    _, _, up = platform
    assert "warning: alerts reach nobody: no receiver is set" in up.stderr


def test_every_exporter_serves_what_the_alerts_read(platform):
    directory, _, _ = platform
    port = ports(directory)
    eventually(lambda: get(port["postgres_exporter"], "/metrics"), "pg_postmaster_start_time_seconds{")
    eventually(lambda: get(port["pgbouncer_exporter"], "/metrics"), 'pgbouncer_waiting_clients{database="pgbouncer"')
    # Through the gateway (its upstream is not running: 502), counted by status by mtail.
    for _ in range(3):
        try:
            get(port["gateway"], "/anything?token=secret")
        except urllib.error.HTTPError as error:
            assert error.code >= 500
    metrics = eventually(lambda: get(port["gateway_exporter"], "/metrics"), "gateway_http_requests_total{")
    assert 'status="502"' in metrics and "gateway_http_request_duration_seconds_bucket" in metrics
    assert "secret" not in metrics
    created = run_cli("backup", "create", "--service", "postgres", cwd=directory, timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    eventually(
        lambda: get(port["node_exporter"], "/metrics"),
        'mindscape_backup_last_success_timestamp_seconds{service="postgres"}',
    )


def test_prometheus_scrapes_them_and_evaluates_every_rule(platform):
    directory, _, _ = platform
    prometheus = ports(directory)["prometheus"]

    def query(expr: str) -> str:
        return get(prometheus, "/api/v1/query?query=" + urllib.request.quote(expr))

    eventually(lambda: query("pgbouncer_waiting_clients"), '"database":"pgbouncer"')
    eventually(lambda: query("gateway_http_requests_total"), '"status":"502"')
    eventually(lambda: query("mindscape_backup_last_success_timestamp_seconds"), '"service":"postgres"')
    eventually(lambda: query('ALERTS{alertname="Watchdog"}'), '"alertstate":"firing"')
    rules = json.loads(get(prometheus, "/api/v1/rules"))["data"]["groups"]
    assert {"platform", "postgres", "pgbouncer", "gateway", "node", "backups"} <= {g["name"] for g in rules}
    errors = [r["name"] for g in rules for r in g["rules"] if r.get("health") == "err" or r.get("lastError")]
    assert not errors


def test_check_warns_that_no_receiver_is_set(platform):
    directory, _, _ = platform
    done = run_cli("check", "--json", "--only", "monitoring", cwd=directory, timeout=180)
    rows = json.loads(done.stdout)
    rows = rows["gates"] if isinstance(rows, dict) else rows
    by_id = {row["id"]: row for row in rows}
    receivers = by_id["monitoring.receivers"]
    assert (receivers["status"], receivers["severity"]) == ("fail", "warning")
    assert "alerts reach nobody" in receivers["message"]
    assert by_id["monitoring.targets"]["status"] == "pass", by_id["monitoring.targets"]
    assert by_id["monitoring.rules"]["status"] == "pass", by_id["monitoring.rules"]
    assert done.returncode == 0, done.stdout  # a warning does not fail `check`
