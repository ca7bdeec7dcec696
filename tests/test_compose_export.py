"""The escape hatch: the rendered deploy/compose.yaml, brought up by pytest-docker with
Debian's docker-compose 1.29 on the local images, serves every service."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from mindscape_ops.config import load
from mindscape_ops.provision.readiness import Credentials, NotReady, check_http, check_postgres, check_redis
from mindscape_ops.workspace.store import Workspace

from .conftest import EXAMPLES, need, run_cli, unique_project

pytestmark = pytest.mark.engine
PROJECT = unique_project("compose")


@pytest.fixture(scope="session")
def compose_platform(tmp_path_factory) -> Path:
    if not shutil.which("docker-compose"):
        need("docker-compose is not installed (apt-get install docker-compose)")
    root = tmp_path_factory.mktemp("compose")
    text = (EXAMPLES / "local" / "platform.yaml").read_text().replace("project: local", f"project: {PROJECT}")
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


def wait_for(docker_services, check):
    def ready() -> bool:
        try:
            check()
        except NotReady:
            return False
        return True

    docker_services.wait_until_responsive(check=ready, timeout=120, pause=0.5)


def test_every_service_of_the_compose_file_answers(docker_services, compose_platform):
    host = "127.0.0.1"  # the compose file publishes there; never another address
    secrets = Workspace(compose_platform).read_secrets()
    pg = Credentials("app", secrets["POSTGRES_PASSWORD"], "app")
    checks = {
        "postgres": lambda: check_postgres(host, docker_services.port_for("postgres", 5432), pg),
        "pgbouncer": lambda: check_postgres(host, docker_services.port_for("pgbouncer", 6432), pg),
        "redis": lambda: check_redis(
            host, docker_services.port_for("redis", 6379), Credentials(password=secrets["REDIS_PASSWORD"])
        ),
        "prometheus": lambda: check_http(host, docker_services.port_for("prometheus", 9090), "/-/ready"),
        "alertmanager": lambda: check_http(host, docker_services.port_for("alertmanager", 9093), "/-/ready"),
        "gateway": lambda: check_http(host, docker_services.port_for("gateway", 8080), "/healthz"),
        "postgres_exporter": lambda: check_http(
            host, docker_services.port_for("postgres_exporter", 9187), "/metrics", "pg_up 1"
        ),
        "redis_exporter": lambda: check_http(
            host, docker_services.port_for("redis_exporter", 9121), "/metrics", "redis_up 1"
        ),
    }
    for check in checks.values():
        wait_for(docker_services, check)
    gateway = docker_services.port_for("gateway", 8080)
    with urllib.request.urlopen(f"http://{host}:{gateway}/healthz", timeout=5) as response:
        assert response.headers["X-Frame-Options"] == "DENY"
    assert set(checks) == set(load([compose_platform / "platform.yaml"], env={}).platform.services.enabled())
