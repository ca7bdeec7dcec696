"""The log store end to end on a real engine: `mindscape up` of VictoriaLogs, Postgres and the
gateway (mindscape-local images); a request through the gateway is found by its request id with
its fields, a Postgres error line by its service, `logs --query` returns what the store holds,
`docker logs` still works, the audit entry of `up` is there, the logs.ingesting gate passes, and
with the store stopped `logs` falls back to the engine. Without the store, `up` makes json-file
containers as before."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindscape_ops.adapters.logstore import query
from mindscape_ops.services.victorialogs_gates import SETTLE_S

from .conftest import remove_project, run_cli, unique_project
from .test_render_gateway import free_port

pytestmark = pytest.mark.engine

IMAGES = {
    "victorialogs": "mindscape-local/victorialogs:1.52",
    "postgres": "mindscape-local/postgres:15",
    "gateway": "mindscape-local/gateway:1.22",
}
FIND_S = 20.0  # the engine's splunk driver posts every 5 s


def platform_text(project: str, store: bool) -> str:
    services = {
        "postgres": f"{{image: {IMAGES['postgres']}, port: auto}}",
        "gateway": f"{{image: {IMAGES['gateway']}, port: auto, upstream: 'http://127.0.0.1:9'}}",
    }
    if store:
        services = {
            # the ingest port picked by `up` (other platforms ship beside this one)
            "victorialogs": f"{{image: {IMAGES['victorialogs']}, port: auto, ingest_port: auto}}",
            **services,
        }
    listed = "".join(f"  {name}: {value}\n" for name, value in services.items())
    return f"version: 1\nproject: {project}\nservices:\n{listed}"


def state_port(root: Path, service: str) -> int:
    return json.loads((root / ".mindscape" / "state.json").read_text())["ports"][service]


@pytest.fixture(scope="module")
def stack(docker_client, local_images, tmp_path_factory) -> Iterator[tuple[Path, str]]:
    for image in IMAGES.values():
        docker_client.images.get(image)  # built by `mindscape images build` (make test: setup-test-env)
    project = unique_project("lg")
    root = tmp_path_factory.mktemp("logstore")
    (root / "platform.yaml").write_text(platform_text(project, store=True))
    try:
        up = run_cli("up", cwd=root, timeout=300)
        assert up.returncode == 0, up.stderr
        yield root, project
    finally:
        remove_project(docker_client, project)


def store(root: Path) -> str:
    return f"http://127.0.0.1:{state_port(root, 'victorialogs')}"


def wait_for(root: Path, logsql: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + FIND_S
    while True:
        rows = query(store(root), logsql)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_a_gateway_request_is_found_by_its_request_id_with_its_fields(stack):
    root, project = stack
    request_id = f"req-{uuid.uuid4().hex}"
    gateway = state_port(root, "gateway")
    request = urllib.request.Request(f"http://127.0.0.1:{gateway}/orders/7", headers={"X-Request-ID": request_id})
    with pytest.raises(urllib.error.HTTPError) as answer:  # nothing upstream: 502, still logged
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 502
    [row] = wait_for(root, f'"event.line.request_id":="{request_id}"')
    assert row["event.line.status"] == "502" and row["event.line.method"] == "GET"
    assert row["_msg"] == "/orders/7"  # the URI is the message (its field renamed to _msg)
    assert float(row["event.line.duration"]) >= 0 and row["event.line.remote_addr"]
    assert row["event.attrs.io.mindscape.project"] == project
    assert row["event.attrs.io.mindscape.service"] == "gateway" and row["event.tag"] == f"{project}-gateway"
    assert request_id in run_cli("logs", "gateway", cwd=root).stdout  # shown from the store
    # docker logs still works with the splunk driver (the engine's dual-logging cache)
    [container] = [c for c in _containers(project) if c.name == f"{project}-gateway"]
    assert container.attrs["HostConfig"]["LogConfig"]["Type"] == "splunk"
    # `ingest_port: auto`: the port up picked and kept is the one the store publishes and the
    # driver posts to
    ingest = state_port(root, "victorialogs.ingest_port")
    assert container.attrs["HostConfig"]["LogConfig"]["Config"]["splunk-url"] == f"http://127.0.0.1:{ingest}"
    [vl] = [c for c in _containers(project) if c.name == f"{project}-victorialogs"]
    assert vl.attrs["HostConfig"]["PortBindings"]["9429/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(ingest)}]
    assert request_id in container.logs().decode()


def test_a_postgres_error_line_is_found_by_service(stack):
    root, project = stack
    table = f"no_such_table_{uuid.uuid4().hex[:12]}"
    [container] = [c for c in _containers(project) if c.name == f"{project}-postgres"]
    done = container.exec_run(["psql", "-U", "app", "-d", "app", "-c", f"SELECT * FROM {table}"], user="postgres")
    assert done.exit_code != 0 and b"does not exist" in done.output
    shown = _wait_cli(root, "postgres", f'"{table}" AND ERROR')
    assert any("ERROR" in row["_msg"] and table in row["_msg"] for row in shown)
    assert {row["event.attrs.io.mindscape.service"] for row in shown} == {"postgres"}
    assert {row["event.source"] for row in shown} <= {"stdout", "stderr"}


def test_logs_query_returns_what_the_store_holds(stack):
    root, project = stack
    gateway = state_port(root, "gateway")
    ids = [f"q-{uuid.uuid4().hex}" for _ in range(3)]
    for request_id in ids:
        request = urllib.request.Request(f"http://127.0.0.1:{gateway}/q", headers={"X-Request-ID": request_id})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
    filter_ = " OR ".join(f'"event.line.request_id":="{i}"' for i in ids)
    wait_for(root, f"({filter_})", count=3)
    direct = query(store(root), f'"event.attrs.io.mindscape.service":="gateway" AND ({filter_}) | sort by (_time)')
    shown = run_cli("logs", "gateway", "--query", filter_, "--since", "10m", "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == direct and len(direct) == 3
    last = json.loads(run_cli("logs", "gateway", "--query", filter_, "--tail", "1", "--json", cwd=root).stdout)
    assert last == direct[-1:]
    text = run_cli("logs", "gateway", "--query", filter_, cwd=root).stdout.splitlines()
    assert [line.split()[0] for line in text] == [row["_time"] for row in direct]
    refused = run_cli("logs", "gateway", "--query", "x | no_such_pipe", cwd=root)
    assert refused.returncode == 1 and "refused the query" in refused.stderr and "Traceback" not in refused.stderr
    unpaired = run_cli("logs", "gateway", "--query", "status:(", cwd=root)  # refused before the store
    assert unpaired.returncode == 2 and "the ( at column 8 is not closed" in unpaired.stderr


def test_the_audit_entry_of_up_is_in_the_store(stack):
    root, project = stack
    rows = wait_for(
        root, f'"event.attrs.io.mindscape.project":="{project}" AND "event.attrs.io.mindscape.service":="mindscape"'
    )
    assert any(row.get("audit.command") == "up" and row.get("audit.outcome") == "ok" for row in rows), rows


def logs_gate(root: Path) -> dict:
    done = run_cli("check", "--only", "logs", "--json", cwd=root, timeout=120)
    [result] = json.loads(done.stdout)
    assert result["id"] == "logs.ingesting" and done.returncode == (0 if result["status"] == "pass" else 1)
    return result


def a_due_gateway_line(root: Path) -> None:
    """A line of the gateway's that the log driver has had time to deliver."""
    with pytest.raises(urllib.error.HTTPError):  # nothing upstream: 502, still logged
        urllib.request.urlopen(f"http://127.0.0.1:{state_port(root, 'gateway')}/due", timeout=10)
    time.sleep(SETTLE_S + 0.5)


def test_the_logs_gate_passes_without_waiting_for_the_drivers_next_post(stack):
    root, _ = stack
    a_due_gateway_line(root)
    result = logs_gate(root)
    assert result["status"] == "pass", result
    assert "(gateway, postgres)" in result["message"] or "(gateway)" in result["message"], result
    assert result["duration_ms"] < 2500, result  # no wait for the driver's next post (every 5 s); a loaded CI runner


def test_the_logs_gate_fails_when_a_containers_log_driver_does_not_deliver(stack, docker_client):
    """The gateway's container replaced by one like it whose driver posts where nothing listens:
    its lines never reach the store, and the gate names it."""
    root, project = stack
    a_due_gateway_line(root)
    assert "gateway" in logs_gate(root)["message"]  # the store holds lines of the gateway's, older ones
    name = f"{project}-gateway"
    original = docker_client.containers.get(name)
    labels, image = original.labels, original.image.tags[0]
    options = {**original.attrs["HostConfig"]["LogConfig"]["Config"], "splunk-url": f"http://127.0.0.1:{free_port()}"}
    original.remove(force=True)
    try:
        docker_client.containers.run(
            image,
            ["sh", "-c", "echo a line nobody stores; sleep 600"],
            name=name,
            labels=labels,
            detach=True,
            log_config={"Type": "splunk", "Config": options},
        )
        time.sleep(SETTLE_S + 0.5)
        result = logs_gate(root)
        assert result["status"] == "fail", (result["message"], result)
        assert "gateway's newest due line" in result["message"] and "does not deliver" in result["message"], result
        assert "postgres" not in result["message"], result  # its driver delivers
    finally:
        docker_client.containers.get(name).remove(force=True)
        assert run_cli("up", cwd=root, timeout=300).returncode == 0
    a_due_gateway_line(root)
    assert logs_gate(root)["status"] == "pass"


def test_the_logs_gate_fails_at_once_when_the_store_stops_taking_lines(stack, docker_client, monkeypatch):
    """The store replaced by one like it (same image, ports and volume) that takes no new line:
    its free-disk floor is above any disk's free space, so it is read-only. It answers, and it
    serves every line it held, the gateway's due line included: the lines alone would pass (shown
    with the gate's own post left out); the line the gate posts now does not move the store's
    count, and the gate fails at once. With the store back, it passes."""
    from mindscape_ops.check.context import CheckContext
    from mindscape_ops.services import victorialogs_gates as logs
    from mindscape_ops.workspace.project import open_project

    root, project = stack
    a_due_gateway_line(root)
    assert logs_gate(root)["status"] == "pass"
    original = docker_client.containers.get(f"{project}-victorialogs")
    bindings = original.attrs["HostConfig"]["PortBindings"]
    ports = {port: (b[0]["HostIp"], int(b[0]["HostPort"])) for port, b in bindings.items()}
    [volume] = [m for m in original.attrs["Mounts"] if m["Type"] == "volume"]
    command = [*original.attrs["Config"]["Cmd"], "-storage.minFreeDiskSpaceBytes=1000000000000000000"]
    original.stop(timeout=10)
    replacement = docker_client.containers.run(
        original.image.id,
        command,
        name=f"{project}-readonly-store",
        ports=ports,
        volumes={volume["Name"]: {"bind": volume["Destination"], "mode": "rw"}},
        detach=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if query(store(root), '"event.attrs.io.mindscape.service":="gateway"', limit=1):
                    break
            except Exception:  # noqa: BLE001 - not answering yet
                pass
            time.sleep(0.3)
        ctx = CheckContext(open_project([root / "platform.yaml"]))
        with monkeypatch.context() as without_the_post:
            without_the_post.setattr(logs, "takes_a_line_now", lambda ctx, base, ingest: None)
            assert "(gateway" in logs.ingesting(ctx)  # old lines alone: a pass
        result = logs_gate(root)
        assert result["status"] == "fail", result
        assert "stores no new lines" in result["message"], result
        assert result["duration_ms"] < 3000, result
    finally:
        replacement.remove(force=True)
        original.start()
    deadline = time.monotonic() + 30
    while logs_gate(root)["status"] != "pass" and time.monotonic() < deadline:
        time.sleep(1)
    assert logs_gate(root)["status"] == "pass"


def test_with_the_store_stopped_logs_falls_back_to_the_engine(stack):
    root, project = stack
    a_due_gateway_line(root)  # a request line in the engine's copy, whatever ran before
    [store_container] = [c for c in _containers(project) if c.name == f"{project}-victorialogs"]
    store_container.stop(timeout=10)
    try:
        shown = run_cli("logs", "gateway", cwd=root)
        assert shown.returncode == 0 and "request_id" in shown.stdout  # the engine's raw JSON lines
        assert shown.stdout.lstrip().startswith("{")
        refused = run_cli("logs", "gateway", "--query", "x", cwd=root)
        assert refused.returncode == 1 and "--query needs the log store" in refused.stderr
        gate = logs_gate(root)
        assert gate["status"] == "fail" and "does not answer" in gate["message"], gate
        assert gate["duration_ms"] < 3000, gate  # nothing to wait for
    finally:
        store_container.start()


def test_up_without_the_store_makes_json_file_containers_as_before(docker_client, local_images, tmp_path):
    project = unique_project("lg")
    (tmp_path / "platform.yaml").write_text(platform_text(project, store=False))
    try:
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stderr
        for container in _containers(project, docker_client):
            config = container.attrs["HostConfig"]["LogConfig"]
            assert config == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
        shown = run_cli("logs", "postgres", "--tail", "5", cwd=tmp_path)
        assert shown.returncode == 0 and shown.stdout.strip()
        assert run_cli("logs", "postgres", "--query", "x", cwd=tmp_path).returncode == 1
        again = run_cli("plan", "--json", cwd=tmp_path)
        assert {action["action"] for action in json.loads(again.stdout)} == {"unchanged"}
    finally:
        remove_project(docker_client, project)


def _containers(project: str, client=None):
    import docker

    client = client or docker.from_env()
    return client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"})


def _wait_cli(root: Path, service: str, logsql: str) -> list[dict]:
    deadline = time.monotonic() + FIND_S
    while True:
        done = run_cli("logs", service, "--query", logsql, "--json", cwd=root)
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def test_the_store_serves_its_ui_and_counts_what_the_driver_sent(stack):
    root, _ = stack
    with urllib.request.urlopen(f"{store(root)}/select/vmui/", timeout=10) as response:
        assert response.status == 200 and b"<html" in response.read().lower()
    # a line of this test's own: the store may have restarted since (its counters with it)
    request_id = f"m-{uuid.uuid4().hex}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{state_port(root, 'gateway')}/m", headers={"X-Request-ID": request_id}
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10)
    assert wait_for(root, f'"event.line.request_id":="{request_id}"')
    with urllib.request.urlopen(f"{store(root)}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    [line] = [m for m in metrics.splitlines() if m.startswith('vl_rows_ingested_total{type="splunk"}')]
    assert float(line.split()[-1]) > 0  # what LogIngestionStopped watches


def test_the_logs_gate_writes_through_a_one_off_container_when_no_service_lets_it(
    docker_client, local_images, tmp_path, monkeypatch
):
    """With nothing due in the store (here: a window of no length), the gate writes a marker line
    and waits for it; Postgres' PID 1 runs as postgres: its output cannot be reopened by an exec."""
    from mindscape_ops.check.context import CheckContext
    from mindscape_ops.services import victorialogs_gates as logs
    from mindscape_ops.workspace.project import open_project

    project = unique_project("lg")
    store_line = f"{{image: {IMAGES['victorialogs']}, port: auto, ingest_port: {free_port()}}}"
    postgres = f"{{image: {IMAGES['postgres']}, port: auto}}"
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  victorialogs: {store_line}\n  postgres: {postgres}\n"
    )
    try:
        assert run_cli("up", cwd=tmp_path, timeout=300).returncode == 0
        monkeypatch.setattr(logs, "WINDOW_S", 0.0)
        message = logs.ingesting(CheckContext(open_project([tmp_path / "platform.yaml"])))
        assert "mindscape-check" in message and "no container wrote a line" in message, message
        assert {c.name for c in _containers(project, docker_client)} == {
            f"{project}-victorialogs",
            f"{project}-postgres",
        }
        assert json.loads(run_cli("plan", "--json", cwd=tmp_path).stdout)[0]["action"] == "unchanged"
    finally:
        remove_project(docker_client, project)
