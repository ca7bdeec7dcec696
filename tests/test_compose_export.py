"""The escape hatch: the rendered deploy/compose.yaml, brought up by pytest-docker with
Debian's docker-compose 1.29 on the local images, serves every service. The gateway, whose
application (on host.docker.internal) is not up, answers 502, and gateway_exporter counts it."""

from __future__ import annotations

import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mindscape_ops.config.loader import load
from mindscape_ops.provision.readiness import Credentials, NotReady
from mindscape_ops.services.registry import BY_NAME
from mindscape_ops.services.spec import container_specs
from mindscape_ops.workspace.store import Workspace

from .conftest import EXAMPLES, local_image_refs, need, run_cli, unique_project

pytestmark = [pytest.mark.engine, pytest.mark.tools]  # docker-compose, on the engine
PROJECT = unique_project("compose")


@pytest.fixture(scope="session")
def compose_platform(tmp_path_factory) -> Path:
    if not shutil.which("docker-compose"):
        need("docker-compose is not installed (apt-get install docker-compose)")
    root = tmp_path_factory.mktemp("compose")
    text = (EXAMPLES / "local" / "platform.yaml").read_text().replace("project: local", f"project: {PROJECT}")
    # This platform stays up for the whole session (pytest-docker): compose cannot pick the log
    # store's ingest port (every container's log driver names it; `auto` exports as 9429), so a
    # free one is written, as other platforms may run beside it.
    vl = '  victorialogs: {image: "mindscape-local/victorialogs:1.52", port: auto, ingest_port: auto}'
    assert vl in text, "examples/local changed: update this test"
    text = text.replace(vl, vl.replace("ingest_port: auto", f"ingest_port: {free_port()}"))
    # the application on the Docker host, on a port nothing listens on
    gw = '  gateway: {image: "mindscape-local/gateway:1.22", port: auto}'
    assert gw in text, "examples/local changed: update this test"
    text = text.replace(gw, gw[:-1] + f', upstream: "http://host.docker.internal:{free_port()}"}}')
    (root / "platform.yaml").write_text(text)
    # what a user who leaves does: render once (files, secrets, derived files), then use compose
    result = run_cli("render", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="session")
def docker_compose_command(docker_client, local_images, compose_platform) -> str:
    # The secrets reach compose as its header says: through --env-file, never the environment.
    return f"docker-compose --env-file {compose_platform / '.mindscape' / 'secrets.env'}"


@pytest.fixture(scope="session")
def docker_compose_file(compose_platform) -> str:
    return str(compose_platform / "deploy" / "compose.yaml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup():
    return ["up -d"]  # compose 1.29 has no --wait: readiness is checked below, from the host


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(docker_services, check):
    def ready() -> bool:
        try:
            check()
        except NotReady:
            return False
        return True

    docker_services.wait_until_responsive(check=ready, timeout=120, pause=0.5)


def test_every_service_of_the_compose_file_answers(docker_services, compose_platform):
    """Each service passes its own readiness probe (from the registry), as `up` would ask it."""
    host = "127.0.0.1"  # the compose file publishes there; never another address
    secrets = Workspace(compose_platform).read_secrets()
    platform = load([compose_platform / "platform.yaml"], env={}).platform
    specs = container_specs(platform)
    assert set(specs) == set(local_image_refs())
    for name, spec in specs.items():
        service = BY_NAME[name]
        creds = service.credentials(platform, secrets) if service.credentials else Credentials()
        port = docker_services.port_for(name, spec.container_port)
        wait_for(docker_services, lambda s=service, p=port, c=creds: s.probe.check(host, p, c))
    gateway = docker_services.port_for("gateway", 8080)
    with urllib.request.urlopen(f"http://{host}:{gateway}/healthz", timeout=5) as response:
        assert response.headers["X-Frame-Options"] == "DENY"


def test_the_gateway_answers_502_until_its_application_is_up_and_the_exporter_counts_it(docker_services):
    """Nothing listens on the Docker host's port of the application: the gateway (started, reading
    host.docker.internal from the hosts entry compose gives it) answers 502, and its request line
    reaches gateway_exporter through the gateway's relay, which looks the exporter up per line."""
    gateway = docker_services.port_for("gateway", 8080)
    exporter = docker_services.port_for("gateway_exporter", 3903)
    deadline = time.monotonic() + 30
    counted = 0.0
    while counted < 1 and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{gateway}/compose-probe", timeout=5)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 502
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter}/metrics", timeout=5) as response:
            text = response.read().decode()
        found = re.findall(r'^gateway_http_requests_total\{[^}]*status="502"[^}]*\} (\S+)$', text, re.MULTILINE)
        counted = sum(float(value) for value in found)
        time.sleep(0.5)
    assert counted >= 1
