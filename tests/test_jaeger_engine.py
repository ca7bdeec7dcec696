"""The trace store on a real engine (`mindscape up` of the local Jaeger image): traces sent by the
OpenTelemetry Python SDK over OTLP/HTTP and OTLP/gRPC come back through Jaeger's query API with
their spans; `check` proves `traces.ingesting` (and fails it when Jaeger is stopped); Prometheus
scrapes Jaeger's metrics; badger keeps spans across a recreated container; the gateway's
`traceparent` reaches an echo upstream with the trace id its access log carries; and a platform
with jaeger disabled comes up as before. Only 127.0.0.1 is contacted."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from .conftest import EXAMPLES, need, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

JAEGER = "mindscape-local/jaeger:2.13.0"
GATEWAY = "mindscape-local/gateway:1.22"
PROMETHEUS = "mindscape-local/prometheus:2"
# The upstream the gateway forwards to: nginx answering with the traceparent it received.
ECHO_CONF = """pid /tmp/echo.pid;
events {}
http {
    access_log off;
    server {
        listen 8000;
        location / { default_type text/plain; return 200 "$http_traceparent"; }
    }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def images(docker_client, go_image):
    import docker.errors

    go_image("jaeger")  # built in the background by `make test`: waits for it
    for ref in (JAEGER, GATEWAY, PROMETHEUS):
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            need(f"image {ref} missing: run `mindscape images build {ref.split('/')[1].split(':')[0]}`")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        return json.loads(response.read())


def published(docker_client, container: str, port: int) -> int:
    details = docker_client.api.inspect_container(container)
    return int(details["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


def wait_for(what: str, probe, patience: float = 20.0):
    deadline = time.monotonic() + patience
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {patience:g}s"
        time.sleep(0.25)


def trace_of(query_port: int, trace_id: str) -> list[dict]:
    """The trace's spans through Jaeger's query API ([] while it answers 404)."""
    try:
        answer = get_json(f"http://127.0.0.1:{query_port}/api/traces/{trace_id}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    return [span for trace in answer["data"] for span in trace["spans"]] if answer["data"] else []


def send_with_sdk(protocol: str, endpoint: str, service: str) -> tuple[str, set[str]]:
    """A trace of two spans (parent, child) sent by the SDK's own OTLP exporter; (trace id, names)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("mindscape.tests")
    with (
        tracer.start_as_current_span(f"{protocol}-parent") as parent,
        tracer.start_as_current_span(f"{protocol}-child", attributes={"test.protocol": protocol}),
    ):
        pass
    provider.shutdown()
    return format(parent.get_span_context().trace_id, "032x"), {f"{protocol}-parent", f"{protocol}-child"}


def platform_text(project: str, jaeger: str, grpc: int, http: int, prometheus: bool = True) -> str:
    scraping = f'  prometheus: {{image: "{PROMETHEUS}", port: auto, scrape_interval: 1s}}\n' if prometheus else ""
    return f"""version: 1
project: {project}
services:
{scraping}  gateway: {{image: "{GATEWAY}", port: auto, upstream: "http://echo:8000"}}
  jaeger: {{image: "{JAEGER}", port: auto, otlp_grpc_port: {grpc}, otlp_http_port: {http}, {jaeger}}}
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, images):
    directory = tmp_path_factory.mktemp("jaeger")
    project = unique_project("jgr")
    grpc, http = free_port(), free_port()
    (directory / "platform.yaml").write_text(platform_text(project, "storage: badger, retention: 2h", grpc, http))
    try:
        result = run_cli("up", cwd=directory, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory, project, published(docker_client, f"{project}-jaeger", 16686), grpc, http
    finally:
        remove_project(docker_client, project)


def test_the_rendered_app_env_is_what_the_sdk_needs(platform):
    directory, _, _, _, http = platform
    env = dict(
        line.split("=", 1)
        for line in (directory / "deploy/otel/app.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://127.0.0.1:{http}"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_trace_sent_by_the_sdk_is_returned_with_its_spans(platform, protocol):
    _, _, query, grpc, http = platform
    port = http if protocol == "http" else grpc
    trace_id, names = send_with_sdk(protocol, f"http://127.0.0.1:{port}", f"shop-{protocol}")

    # The SDK exports each span as it ends (the child first, in its own request): the trace can
    # be found while its parent is still on its way, so wait for every span sent.
    def whole() -> list[dict]:
        spans = trace_of(query, trace_id)
        return spans if {span["operationName"] for span in spans} >= names else []

    spans = wait_for("the trace in Jaeger with every span sent", whole)
    assert {span["operationName"] for span in spans} == names
    parent = next(s for s in spans if s["operationName"].endswith("parent"))
    child = next(s for s in spans if s["operationName"].endswith("child"))
    assert child["references"][0]["spanID"] == parent["spanID"]
    assert {"key": "test.protocol", "type": "string", "value": protocol} in child["tags"]
    services = get_json(f"http://127.0.0.1:{query}/api/services")["data"]
    assert f"shop-{protocol}" in services


def test_check_proves_ingestion_and_fails_when_jaeger_stops(platform, docker_client):
    directory, project, _, _, _ = platform
    result = run_cli("check", "--json", "--only", "traces", cwd=directory, timeout=120)
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert result.returncode == 0 and rows["traces.ingesting"]["status"] == "pass", rows
    docker_client.containers.get(f"{project}-jaeger").stop(timeout=5)
    try:
        result = run_cli("check", "--json", "--only", "traces", cwd=directory, timeout=120)
        row = {row["id"]: row for row in json.loads(result.stdout)}["traces.ingesting"]
        assert result.returncode == 1 and row["status"] == "fail" and "OTLP receiver" in row["message"], row
        assert "mindscape logs jaeger" in row["remedy"]
    finally:
        assert run_cli("up", cwd=directory, timeout=300).returncode == 0


def test_prometheus_scrapes_jaegers_metrics(platform, docker_client):
    _, project, _, _, _ = platform
    port = published(docker_client, f"{project}-prometheus", 9090)

    def jaeger_up():
        targets = get_json(f"http://127.0.0.1:{port}/api/v1/targets?state=active")["data"]["activeTargets"]
        return [t for t in targets if t["labels"]["job"] == "jaeger" and t["health"] == "up"]

    wait_for("Prometheus scraping jaeger:8888", jaeger_up, patience=30)
    answer = get_json(f"http://127.0.0.1:{port}/api/v1/query?query=up%7Bjob%3D%22jaeger%22%7D")
    assert answer["data"]["result"][0]["value"][1] == "1"


def test_badger_keeps_traces_when_the_container_is_recreated(platform, docker_client):
    directory, project, query, _, http = platform
    trace_id, _ = send_with_sdk("http", f"http://127.0.0.1:{http}", "kept")
    wait_for("the trace in Jaeger", lambda: trace_of(query, trace_id))
    docker_client.containers.get(f"{project}-jaeger").remove(force=True)
    assert run_cli("up", cwd=directory, timeout=300).returncode == 0
    query = published(docker_client, f"{project}-jaeger", 16686)
    assert wait_for("the trace after the restart", lambda: trace_of(query, trace_id))


def test_the_gateways_traceparent_reaches_the_upstream_and_its_log(platform, docker_client):
    directory, project, _, _, _ = platform
    conf = directory / "echo.conf"
    conf.write_text(ECHO_CONF)
    echo = docker_client.containers.run(
        GATEWAY,
        ["nginx", "-c", "/etc/echo.conf", "-g", "daemon off;"],
        name=f"{project}-echo",
        detach=True,
        network=project,
        volumes={str(conf): {"bind": "/etc/echo.conf", "mode": "ro"}},
        labels={"io.mindscape.project": project},  # removed with the platform
    )
    docker_client.networks.get(project).disconnect(echo)  # back, known as `echo` on the network
    docker_client.networks.get(project).connect(echo, aliases=["echo"])
    port = published(docker_client, f"{project}-gateway", 8080)

    def through_gateway(headers: dict[str, str]):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/orders", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
                return response.read().decode(), response.headers["X-Request-ID"]
        except urllib.error.HTTPError as exc:
            if exc.code in (502, 504):  # the echo container is still starting
                return None
            raise

    received, request_id = wait_for("the echo upstream", lambda: through_gateway({}))
    match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", received)
    assert match, received
    given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert through_gateway({"traceparent": given, "X-Request-ID": "traced-1"})[0] == given

    def logged():
        lines = docker_client.containers.get(f"{project}-gateway").logs(stdout=True, stderr=False).decode()
        entries = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
        return {e["request_id"]: e["trace_id"] for e in entries if e["request_id"] in (request_id, "traced-1")}

    found = wait_for("both access-log lines", lambda: (f := logged()) and len(f) == 2 and f)
    assert found == {request_id: match.group(1), "traced-1": given.split("-")[1]}


def test_up_with_jaeger_disabled_is_as_before(tmp_path, docker_client, images):
    project = unique_project("jgo")
    text = platform_text(project, "enabled: false", free_port(), free_port(), prometheus=False)
    (tmp_path / "platform.yaml").write_text(text)
    try:
        result = run_cli("up", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        names = {
            c.name
            for c in docker_client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"})
        }
        assert names == {f"{project}-gateway"}
        assert not (tmp_path / "deploy/jaeger").exists() and not (tmp_path / "deploy/otel").exists()
        assert "traceparent" not in (tmp_path / "deploy/gateway/nginx.conf").read_text()
        result = run_cli("check", "--json", "--only", "traces", cwd=tmp_path, timeout=120)
        assert result.returncode == 0 and json.loads(result.stdout) == []
    finally:
        remove_project(docker_client, project)


def test_the_local_example_takes_the_trace_store_as_an_overlay():
    from mindscape_ops.config.loader import load

    files = [EXAMPLES / "local" / "platform.yaml", EXAMPLES / "local" / "tracing.yaml"]
    platform = load(files, env={}).platform
    assert platform.services.jaeger.image == JAEGER
