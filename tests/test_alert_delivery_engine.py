"""Alerts reach a person, live: a platform of the local images whose Alertmanager sends to a
webhook served by this test, and whose Watchdog pings another. The Watchdog arrives on its own
receiver (and only there); stopping a service makes its InstanceDown alert arrive on the
webhook, with an absolute runbook_url. Short intervals (1s scrapes and evaluations, 1s group
waits) keep it to the rule's own `for: 1m`.

Alertmanager runs in a container: it reaches the test's servers through host.docker.internal,
the host's address on Docker's bridge, so they listen there (that address is this machine's
alone; nothing listens on a public interface)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import EXAMPLES, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

SERVICES = ("prometheus", "alertmanager", "redis", "redis_exporter")
RUNBOOKS = "https://git.example.com/shop/blob/main"


class Inbox:
    """A webhook receiver: every JSON body POSTed to it, by path."""

    def __init__(self, address: str) -> None:
        received: list[tuple[str, dict]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path: str) -> list[dict]:
        return [alert for where, body in list(self.received) if where == path for alert in body.get("alerts", [])]

    def wait_for(self, path: str, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.alerts(path) if a["labels"].get("alertname") == name]
            if found:
                return found[-1]
            time.sleep(1)
        raise AssertionError(f"{name} never reached {path}; received: {self.received[-5:]}")


def bridge_gateway(docker_client) -> str:
    """The host's address on Docker's default bridge: where host.docker.internal leads (the
    subnet's first address when the engine does not say)."""
    import ipaddress

    config = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def platform_text(project: str, hook: int, deadman: int) -> str:
    lines = [f"version: 1\nproject: {project}\nservices:\n"]
    for line in (EXAMPLES / "local" / "platform.yaml").read_text().splitlines():
        if line.strip().split(":")[0] in SERVICES:
            lines.append(
                line.replace(
                    "prometheus: {image: ", "prometheus: {scrape_interval: 1s, evaluation_interval: 1s, image: "
                )
                + "\n"
            )
    lines.append(
        "backups: {enabled: false}\n"
        "monitoring:\n"
        f"  runbook_base_url: {RUNBOOKS}\n"
        f"  receivers: [{{name: hook, url: 'http://host.docker.internal:{hook}/alerts'}}]\n"
        f"  watchdog: {{url: 'http://host.docker.internal:{deadman}/ping', repeat_interval: 5s}}\n"
        "  route: {group_wait: 1s, group_interval: 1s, repeat_interval: 1m}\n"
    )
    return "".join(lines)


@pytest.fixture(scope="module")
def delivery(tmp_path_factory, docker_client, local_images) -> Iterator[tuple[Path, str, Inbox, Inbox, object]]:
    address = bridge_gateway(docker_client)
    hook, deadman = Inbox(address), Inbox(address)
    directory = tmp_path_factory.mktemp("delivery")
    project = unique_project("dlv")
    (directory / "platform.yaml").write_text(platform_text(project, hook.port, deadman.port))
    try:
        up = run_cli("up", cwd=directory, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        yield directory, project, hook, deadman, docker_client
    finally:
        remove_project(docker_client, project)
        hook.server.shutdown()
        deadman.server.shutdown()


def test_the_watchdog_reaches_its_own_receiver(delivery):
    _, _, hook, deadman, _ = delivery
    alert = deadman.wait_for("/ping", "Watchdog", timeout=120)
    assert alert["status"] == "firing"
    assert all(a["labels"].get("alertname") != "Watchdog" for a in hook.alerts("/alerts"))


def test_a_stopped_service_pages_the_webhook(delivery):
    _, project, hook, _, docker_client = delivery
    containers = docker_client.containers.list(
        filters={"label": [f"io.mindscape.project={project}", "io.mindscape.service=redis_exporter"]}
    )
    assert containers, "redis_exporter is not running"
    containers[0].stop(timeout=5)
    alert = hook.wait_for("/alerts", "InstanceDown", timeout=240)  # its `for: 1m`, then 1s waits
    assert alert["status"] == "firing" and alert["labels"]["job"] == "redis_exporter"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOKS}/docs/runbooks/alerts.md#instancedown"
