"""Shared fixtures. Tests that need a real engine use `engine`/`local_platform`: without an
engine they skip at a desk, and FAIL in CI (CI=true), never pass by skipping. Under CI=true
every skip fails, however it was asked for (`need()`, `pytest.skip`, a skip mark, a module
that skips itself): see the two hooks below."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The Ctrl-C tests send SIGINT to a mindscape they started. A runner started with SIGINT ignored
# (a background job of a shell without job control, nohup) would hand that on to every child,
# and Python leaves an inherited "ignore" be: a handler here is reset to the default at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def need(reason: str) -> None:
    """Skip locally, fail in CI: a missing engine or tool must not look like a pass."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required here)")
    pytest.skip(reason)


def _ci_refuses(reason: object) -> str:
    if isinstance(reason, tuple) and len(reason) == 3:  # a skip's (path, line, "Skipped: why")
        path, line, why = reason
        reason = f"{why} ({path}:{line + 1 if isinstance(line, int) else line})"
    return f"skipped under CI=true, where nothing may skip: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI=true a skipped test is a failed one (an expected failure, xfail, stays one)."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = _ci_refuses(report.longrepr)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """...and so is a module that skips itself whole (`allow_module_level`, `importorskip`)."""
    report = yield
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = _ci_refuses(report.longrepr)
    return report


# The modules that run longest (a clean clone's `make test`, --durations): first among the engine
# ones, so that none of them is what one worker still runs while the other has nothing left.
LONGEST = ("test_pitr_s3_engine", "test_kubernetes_pitr_engine", "test_alert_delivery_engine")


def _run_order(module_items: list[pytest.Item]) -> tuple[int, int]:
    """Where a module runs: the ALONE modules first (the longest unit of work, see below), then the
    modules that need the engine, then those that wait for an image built from a Go module in the
    background while the others run (see `go_image`), and last the engine-free ones: many short
    modules that fill in for the workers that free up. Inside ALONE the same classes, the
    engine-free ones first and the Go-built ones last."""
    if any("go_image" in item.fixturenames for item in module_items):
        kind = 2
    elif any(item.get_closest_marker("engine") for item in module_items):
        kind = 1
    else:
        kind = 0
    if unit_of_work(module_items[0].nodeid) == ALONE:
        return (0, kind)
    if _module_name(module_items[0].nodeid) in LONGEST:
        return (1, 0)
    return (2, kind or 3)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules in the order of `_run_order`; a module moves whole, so its module-scoped
    fixtures are set up once, and xdist hands units out in this order (see the scheduler)."""
    modules: dict[object, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.module, []).append(item)
    order = {module: _run_order(module_items) for module, module_items in modules.items()}
    items[:] = sorted(items, key=lambda item: order[item.module])  # stable: each module keeps its order


# `make test` runs the suite on N pytest-xdist workers with `--dist loadfile`: a unit of work is a
# whole module, run by one worker test after test, so its module-scoped platform is brought up
# once; units are handed out in the order above as workers free up. The modules below are one
# unit together, ALONE: one worker runs them one after another, so none of them ever runs beside
# another of them (the other workers still run the rest). Each would fail, or measure nothing,
# beside its like. (A scheduler of our own rather than `xdist_group` marks and `--dist loadgroup`:
# xdist 3.8 puts a test's group in its node id by setting `item._nodeid`, which pytest 9.2 no
# longer reads, so every marked test became a unit of its own.)
ALONE = "alone"
ALONE_MODULES = {
    "test_check_model": "times concurrent gates to a fraction of a second",
    "test_check_logs": "times the logs gate's answers to half a second",
    "test_logstore_engine": "times the logs gate on a live store (under 2.5 s)",
    "test_identity_engine": "a logged-out session must fail within the 3 s session cache",
    "test_identity_idle_engine": "sessions live 6 s idle and 24 s in all, used every 2 s",
    "test_backup_faults_engine": "Ctrl-C and SIGKILL at a chosen moment of a real dump",
    "test_pitr_faults_engine": "kills mindscape (-9) during a restore, a physical backup and the swap",
    "test_pitr_disk_engine": "fills a filesystem to its last byte",
    "test_provision_engine": "kills a platform's container and reads the plan and status that follow",
    "test_backup_s3_projects": "a hanging endpoint must fail within 20 s",
}


def _module_name(nodeid: str) -> str:
    """test_x of tests/test_x.py::test_y."""
    return Path(nodeid.split("::", 1)[0]).stem


def unit_of_work(nodeid: str) -> str:
    """The module of a test (tests/test_x.py::test_y), or ALONE for the modules above."""
    return ALONE if _module_name(nodeid) in ALONE_MODULES else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent when it is not installed
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own
    # In the collection's order (above), not xdist's default of the most tests first: that put
    # the few-test modules, the longest ones (a PITR drill on S3 runs 6 minutes), last, with one
    # worker idle while another ran them.
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadScopeScheduling

    class Modules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    return Modules(config, log)


BACKGROUND_LOG = REPO / ".venv" / "background-images.log"  # scripts/setup-test-env writes it


@pytest.fixture(scope="session")
def go_image():
    """`go_image(SERVICE)`: its local image built, waiting for a build already running (the one
    `make test` started in the background) through the builder's lock. A failed build fails here,
    with the background build's log, under CI=true."""
    built: set[str] = set()

    def wait_for(service: str) -> None:
        if service in built:
            return
        done = run_cli("images", "build", service, cwd=REPO, timeout=3600)
        if done.returncode != 0:
            background = BACKGROUND_LOG.read_text(errors="replace")[-3000:] if BACKGROUND_LOG.is_file() else "(none)"
            need(
                f"the local image of {service} could not be built (exit {done.returncode}):\n{done.stderr[-3000:]}\n"
                f"background build's log ({BACKGROUND_LOG}):\n{background}"
            )
        built.add(service)

    return wait_for


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m mindscape_ops ARGS` as a user would run it."""
    base = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"}
    full_env = {**base, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mindscape_ops", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine
        need(f"no Docker engine: {exc}")
    return client


def local_image_refs() -> dict[str, str]:
    """service -> image, as examples/local/platform.yaml uses them (built by `mindscape images build`)."""
    import yaml

    services = yaml.safe_load((EXAMPLES / "local" / "platform.yaml").read_text())["services"]
    prefix = os.environ.get("MINDSCAPE_LOCAL_IMAGES")  # images built under another prefix, to test those
    images = {name: settings["image"] for name, settings in services.items()}
    return {name: f"{prefix}/{image.split('/', 1)[1]}" if prefix else image for name, image in images.items()}


@pytest.fixture(scope="session")
def local_images(docker_client):
    import docker.errors

    missing = []
    refs = local_image_refs()
    for ref in refs.values():
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
    if missing:
        need(f"local images missing ({', '.join(missing)}): run `mindscape images build --all`")
    return refs


@pytest.fixture(scope="session")
def postgres_image(docker_client) -> str:
    """The local postgres image (it has pgBackRest), as examples/local names it."""
    import docker.errors

    ref = local_image_refs()["postgres"]
    try:
        docker_client.images.get(ref)
    except docker.errors.ImageNotFound:
        need(f"local image {ref} missing: run `mindscape images build postgres`")
    return ref


def unique_project(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path


def write_platform(directory: Path, text: str) -> Path:
    path = directory / "platform.yaml"
    path.write_text(text)
    return path


def remove_project(docker_client, project: str) -> None:
    """Remove everything a test platform made: containers, network, volumes."""
    label = f"io.mindscape.project={project}"
    for container in docker_client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True, v=False)
    for network in docker_client.networks.list(filters={"label": label}):
        network.remove()
    for volume in docker_client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


# -- Postgres for test_migrate_postgres.py ------------------------------------------------

PG_IMAGE = "mindscape-local/postgres:15"
PG_USER, PG_PASSWORD = "app", "pw-" + uuid.uuid4().hex
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class PgDatabase:
    server: PgServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One Postgres container for the whole session, removed at the end."""
    try:
        import docker
        import docker.errors

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the reason, there is no usable engine
        need(f"no Docker engine: {exc}")
    try:
        client.images.get(PG_IMAGE)
    except docker.errors.ImageNotFound:
        need(f"image {PG_IMAGE} missing: run `mindscape images build postgres`")
    container = client.containers.run(
        PG_IMAGE,
        detach=True,
        name=f"mindscape-test-pg-{uuid.uuid4().hex[:8]}",
        environment={"POSTGRES_USER": PG_USER, "POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": "postgres"},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels={"io.mindscape.test": "1"},
    )
    try:
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"])
        server = PgServer("127.0.0.1", port, PG_USER, PG_PASSWORD)
        _wait_until_ready(server, container)
        yield server
    finally:
        container.remove(force=True, v=True)


def _wait_until_ready(server: PgServer, container) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(server.url("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as exc:
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                logs = container.logs(tail=40).decode(errors="replace")
                pytest.fail(f"postgres did not accept connections ({exc}); container logs:\n{logs}")
            time.sleep(0.2)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[PgDatabase]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield PgDatabase(pg_server, name)
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
