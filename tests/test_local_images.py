"""The mindscape-local/* images (`mindscape images build`) against a real Docker engine.

Each test starts an image the way the runtime will: the official images' environment
variables, command-line arguments and mounts, ports published on 127.0.0.1 only. It waits
for real readiness from the host (a query, a PING, an HTTP probe) and checks the contract.
Everything created is labelled io.mindscape.test=1 plus a per-run label, and removed at the end.

No engine: skipped, except under CI=true, where that is a failure. The module is
self-contained: `image_engine` (engine + images built on demand) is the fixture to swap for a
shared one later.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import psycopg
import pytest
import redis

from .conftest import local_image_refs

REPO = Path(__file__).resolve().parents[1]

IMAGES = local_image_refs()  # service -> mindscape-local/<service>:<version>, as examples/local uses them

pytestmark = pytest.mark.engine

RUN_ID = uuid.uuid4().hex[:8]
RUN_LABEL = "io.mindscape.test.run"
LABELS = {"io.mindscape.test": "1", RUN_LABEL: RUN_ID}
READY_TIMEOUT = 60.0
PG_USER, PG_PASSWORD, PG_DB = "app", "pg-" + uuid.uuid4().hex, "appdb"
REDIS_PASSWORD = "redis-" + uuid.uuid4().hex

# service -> seconds from `docker run` to first successful readiness probe (reported at the end)
ready_seconds: dict[str, float] = {}
_run_at: dict[str, float] = {}  # container id -> time.monotonic() just before `docker run`


def _engine_unusable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: these tests need a Docker engine)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image_engine(request: pytest.FixtureRequest) -> Iterator[docker.DockerClient]:
    """A client of a reachable engine with the local images built (a no-op when they are)."""
    problem = None
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        problem = f"no Docker engine ({exc}); run scripts/ensure-docker"
    if problem:  # outside the except: no chained traceback
        _engine_unusable(problem)
    # the images examples/local uses, built by the product as a user builds them (not the Go-built
    # trace store: its tests wait for it, tests/conftest.py `go_image`)
    example = str(REPO / "examples" / "local" / "platform.yaml")
    build = subprocess.run(
        [sys.executable, "-m", "mindscape_ops", "-f", example, "images", "build"], capture_output=True, text=True
    )
    if build.returncode == 3:
        _engine_unusable(f"cannot build local images: {build.stderr.strip()}")
    assert build.returncode == 0, f"mindscape images build failed:\n{build.stdout}\n{build.stderr}"
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={RUN_ID}"}):
        container.remove(force=True, v=True)
    for net in client.networks.list(filters={"label": f"{RUN_LABEL}={RUN_ID}"}):
        net.remove()
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None and ready_seconds:
        times = ", ".join(f"{name} {secs:.1f}s" for name, secs in ready_seconds.items())
        with capture.global_and_fixture_disabled():  # shown even when the tests pass
            reporter.write_line(f"\nlocal images, time to ready: {times}")


@pytest.fixture(scope="module")
def network(image_engine: docker.DockerClient):
    return image_engine.networks.create(f"mindscape-test-{RUN_ID}", labels=LABELS)


def run(client: docker.DockerClient, service: str, name: str, ports: tuple[str, ...] = (), **kwargs):
    """Start IMAGES[service] detached, labelled, its ports on random 127.0.0.1 host ports."""
    started = time.monotonic()
    container = client.containers.run(
        IMAGES[service],
        name=f"ms-test-{RUN_ID}-{name}",
        detach=True,
        labels=LABELS,
        ports={port: ("127.0.0.1", None) for port in ports},
        **kwargs,
    )
    _run_at[container.id] = started
    return container


def host_port(container, port: str) -> int:
    container.reload()
    return int(container.ports[port][0]["HostPort"])


def wait_ready(container, probe: Callable[[], bool], what: str) -> float:
    """Poll probe() until it returns True; seconds since `docker run` (or since now)."""
    started = _run_at.pop(container.id, time.monotonic())
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if probe():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - "not ready yet" comes in many shapes
            pass
        container.reload()
        if container.status in ("exited", "dead"):
            pytest.fail(f"{what} exited before ready:\n{logs(container)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {READY_TIMEOUT:.0f}s:\n{logs(container)}")
        time.sleep(0.1)


def logs(container) -> str:
    return container.logs().decode(errors="replace")


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read().decode(errors="replace")


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    """A file to bind-mount: readable by the container's non-root users."""
    path.write_text(text)
    path.chmod(mode)
    return path


def pg_connect(port: int, password: str = PG_PASSWORD) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=PG_USER,
        password=password,
        dbname=PG_DB,
        connect_timeout=2,
    )


def pg_ready(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with pg_connect(port) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    return probe


def metrics_contain(port: int, needle: str) -> Callable[[], bool]:
    return lambda: needle in http_get(f"http://127.0.0.1:{port}/metrics")[1]


@dataclass
class Started:
    container: object
    name: str  # DNS name on the test network
    port: int  # host port on 127.0.0.1


@pytest.fixture(scope="module")
def postgres(image_engine, network, tmp_path_factory) -> Started:
    initdb = tmp_path_factory.mktemp("initdb")
    initdb.chmod(0o755)
    write(initdb / "01-schema.sql", "CREATE TABLE seeded (id int); INSERT INTO seeded VALUES (1);\n")
    write(
        initdb / "02-more.sh",
        '#!/bin/sh\nset -e\npsql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
        "-c 'CREATE TABLE from_sh ()'\n",
        mode=0o755,
    )
    container = run(
        image_engine,
        "postgres",
        "pg",
        ports=("5432/tcp",),
        network=network.name,
        environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": PG_DB},
        volumes={str(initdb): {"bind": "/docker-entrypoint-initdb.d", "mode": "ro"}},
        command=["-c", "max_connections=50"],  # extra args go to postgres, as in the official image
    )
    port = host_port(container, "5432/tcp")
    ready_seconds["postgres"] = wait_ready(container, pg_ready(port), "postgres")
    return Started(container, container.name, port)


@pytest.fixture(scope="module")
def redis_server(image_engine, network, tmp_path_factory) -> Started:
    conf = write(tmp_path_factory.mktemp("redis") / "redis.conf", "maxmemory 10mb\nappendonly yes\n")
    container = run(
        image_engine,
        "redis",
        "redis",
        ports=("6379/tcp",),
        network=network.name,
        volumes={str(conf): {"bind": "/usr/local/etc/redis/redis.conf", "mode": "ro"}},
        command=["redis-server", "/usr/local/etc/redis/redis.conf", "--requirepass", REDIS_PASSWORD],
    )
    port = host_port(container, "6379/tcp")
    client = redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD, socket_timeout=2)
    ready_seconds["redis"] = wait_ready(container, client.ping, "redis")
    return Started(container, container.name, port)


def test_postgres_follows_the_official_contract(postgres: Started) -> None:
    with pg_connect(postgres.port) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('max_connections'),"
            " current_setting('password_encryption'), (SELECT count(*) FROM seeded),"
            " to_regclass('from_sh') IS NOT NULL"
        ).fetchone()
    assert row == (PG_USER, PG_DB, "50", "scram-sha-256", 1, True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg_connect(postgres.port, password="wrong")
    # postgres itself is PID 1 (signals reach it), not running as root
    assert postgres.container.exec_run("cat /proc/1/comm").output.decode().strip() == "postgres"
    top = postgres.container.top(ps_args="-o pid,user,args")
    assert all(proc[1] != "root" for proc in top["Processes"])
    # the init-time server listened on the unix socket only
    init_part = logs(postgres.container).split("PostgreSQL init process complete")[0]
    assert "listening on Unix socket" in init_part
    assert "listening on IPv4" not in init_part and "listening on IPv6" not in init_part


def test_postgres_stops_on_sigterm_and_restarts_without_reinit(image_engine) -> None:
    container = run(
        image_engine,
        "postgres",
        "pg-restart",
        ports=("5432/tcp",),
        environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": PG_DB},
    )
    wait_ready(container, pg_ready(host_port(container, "5432/tcp")), "postgres")
    container.kill(signal="SIGTERM")
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert "database system is shut down" in logs(container).splitlines()[-1]
    container.start()
    wait_ready(container, pg_ready(host_port(container, "5432/tcp")), "restarted postgres")
    assert logs(container).count("PostgreSQL init process complete") == 1
    container.stop(timeout=10)  # the image's STOPSIGNAL (SIGINT, fast shutdown)
    assert container.wait(timeout=30)["StatusCode"] == 0


def test_redis_follows_the_official_contract(redis_server: Started) -> None:
    anonymous = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=2)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, password=REDIS_PASSWORD, socket_timeout=2)
    assert client.config_get("maxmemory") == {"maxmemory": str(10 * 1024 * 1024)}
    assert client.config_get("dir") == {"dir": "/data"}
    assert redis_server.container.exec_run("cat /proc/1/comm").output.decode().strip() == "redis-server"
    assert redis_server.container.exec_run("stat -c %U /proc/1").output.decode().strip() == "redis"


def test_redis_defaults_and_other_commands(image_engine) -> None:
    # No args: like the official image, reachable without protected mode (Debian's default).
    container = run(image_engine, "redis", "redis-default", ports=("6379/tcp",))
    client = redis.Redis(host="127.0.0.1", port=host_port(container, "6379/tcp"), socket_timeout=2)
    wait_ready(container, client.ping, "redis (defaults)")
    # A first argument that is not a redis-server option runs as a command.
    shell = run(image_engine, "redis", "redis-sh", command=["sh", "-c", "echo hello from $(id -un)"])
    assert shell.wait(timeout=30)["StatusCode"] == 0
    assert logs(shell).strip() == "hello from root"


@pytest.mark.parametrize(("service", "port"), [("prometheus", "9090/tcp"), ("alertmanager", "9093/tcp")])
def test_prometheus_and_alertmanager_get_ready(image_engine, service: str, port: str) -> None:
    container = run(image_engine, service, service, ports=(port,))
    url = f"http://127.0.0.1:{host_port(container, port)}/-/ready"
    ready_seconds[service] = wait_ready(container, lambda: http_get(url)[0] == 200, service)
    assert container.attrs["Config"]["User"] == "nobody"


def test_gateway_serves_the_mounted_config(image_engine, tmp_path) -> None:
    # Shaped like a config written for the official image: `user nginx`, logs to /var/log/nginx.
    conf = write(
        tmp_path / "nginx.conf",
        """
user nginx;
events {}
http {
    access_log /var/log/nginx/access.log;
    server {
        listen 8080;
        location = /healthz { return 200 "ok\\n"; }
    }
}
""",
    )
    container = run(
        image_engine,
        "gateway",
        "gateway",
        ports=("8080/tcp",),
        volumes={str(conf): {"bind": "/etc/nginx/nginx.conf", "mode": "ro"}},
    )
    url = f"http://127.0.0.1:{host_port(container, '8080/tcp')}/healthz"
    ready_seconds["gateway"] = wait_ready(container, lambda: http_get(url) == (200, "ok\n"), "gateway")
    # access log on stdout (nginx writes the line once the response is sent: it may come just after)
    wait_ready(container, lambda: "GET /healthz" in container.logs(stderr=False).decode(), "gateway's access log")


def test_pgbouncer_pools_postgres(image_engine, network, postgres: Started, tmp_path) -> None:
    ini = write(
        tmp_path / "pgbouncer.ini",
        f"""
[databases]
{PG_DB} = host={postgres.name} port=5432 dbname={PG_DB}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
pool_mode = session
""",
    )
    userlist = write(tmp_path / "userlist.txt", f'"{PG_USER}" "{PG_PASSWORD}"\n')
    container = run(
        image_engine,
        "pgbouncer",
        "pgbouncer",
        ports=("6432/tcp",),
        network=network.name,
        volumes={
            str(ini): {"bind": "/etc/pgbouncer/pgbouncer.ini", "mode": "ro"},
            str(userlist): {"bind": "/etc/pgbouncer/userlist.txt", "mode": "ro"},
        },
    )
    port = host_port(container, "6432/tcp")
    ready_seconds["pgbouncer"] = wait_ready(container, pg_ready(port), "pgbouncer")
    with pg_connect(port) as conn:
        assert conn.execute("SELECT count(*) FROM seeded").fetchone() == (1,)
    assert container.exec_run("stat -c %U /proc/1").output.decode().strip() == "postgres"


def test_postgres_exporter_sees_postgres(image_engine, network, postgres: Started) -> None:
    dsn = f"postgresql://{PG_USER}:{PG_PASSWORD}@{postgres.name}:5432/{PG_DB}?sslmode=disable"
    container = run(
        image_engine,
        "postgres_exporter",
        "pg-exporter",
        ports=("9187/tcp",),
        network=network.name,
        environment={"DATA_SOURCE_NAME": dsn},
    )
    port = host_port(container, "9187/tcp")
    ready_seconds["postgres_exporter"] = wait_ready(
        container, metrics_contain(port, "\npg_up 1\n"), "postgres_exporter"
    )


def test_redis_exporter_sees_redis(image_engine, network, redis_server: Started) -> None:
    container = run(
        image_engine,
        "redis_exporter",
        "redis-exporter",
        ports=("9121/tcp",),
        network=network.name,
        environment={"REDIS_ADDR": f"redis://{redis_server.name}:6379", "REDIS_PASSWORD": REDIS_PASSWORD},
    )
    port = host_port(container, "9121/tcp")
    ready_seconds["redis_exporter"] = wait_ready(container, metrics_contain(port, "\nredis_up 1\n"), "redis_exporter")


def test_node_exporter_reports_the_hosts_filesystems(image_engine) -> None:
    """The disk alerts' source: with the host's / at /host, as `up` mounts it, filesystem
    metrics come out, and the exporter runs as nobody, read-only."""
    container = run(
        image_engine,
        "node_exporter",
        "node-exporter",
        ports=("9100/tcp",),
        command=["--path.rootfs=/host"],
        volumes={"/": {"bind": "/host", "mode": "ro"}},
    )
    port = host_port(container, "9100/tcp")
    ready_seconds["node_exporter"] = wait_ready(
        container, metrics_contain(port, "node_filesystem_avail_bytes{"), "node_exporter"
    )
    assert container.exec_run("cat /proc/1/comm").output.decode().strip().startswith("prometheus-node")
    assert container.exec_run("stat -c %U /proc/1").output.decode().strip() == "nobody"
