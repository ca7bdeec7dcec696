"""The gateway's W3C trace context, proven by the real nginx in front of an echo application:
with the trace store enabled, the upstream always gets a valid `traceparent` (the caller's when
it is valid, a new one otherwise) and the access log carries its trace id beside the request
id; with it disabled, the gateway's config is the one rendered without any of this."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from mindscape_ops.render import artifacts
from mindscape_ops.render.artifacts import render_platform

from .render_support import deploy, nginx_test, platform_from, tool
from .test_render_gateway import _App, fetch, free_port

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def gateway_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render the gateway's file alone: other families have their own tests."""
    every = artifacts.artifacts
    monkeypatch.setattr(artifacts, "artifacts", lambda p: [a for a in every(p) if a.template.startswith("gateway/")])


def gateway_data(app_port: int, jaeger: bool) -> dict:
    services: dict = {"gateway": {"upstream": f"http://127.0.0.1:{app_port}"}}
    if jaeger:
        services["jaeger"] = {}
    return {"version": 1, "project": "tp", "services": services}


@pytest.fixture
def traced_gateway(tmp_path: Path):
    """nginx serving the rendered nginx.conf (only its listen port and pid path changed) in
    front of an application that echoes the headers it received."""
    nginx = tool("nginx")
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    platform = platform_from(tmp_path / "p", gateway_data(app.server_address[1], jaeger=True))
    port = free_port()
    text = render_platform(platform)[deploy(platform, "gateway/nginx.conf")]
    text = text.replace("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    (tmp_path / "logs").mkdir()
    log = tmp_path / "access.log"
    with log.open("w") as out:
        command = [nginx, "-e", "stderr", "-p", f"{tmp_path}/", "-c", str(conf), "-g", "daemon off;"]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if fetch(port, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert process.poll() is None, f"nginx did not start: {process.stderr.read()}"
                assert time.monotonic() < deadline, "nginx did not answer /healthz within 10s"
                time.sleep(0.05)
            yield port, log
        finally:
            process.terminate()
            process.wait(timeout=10)
            app.shutdown()


def log_entry(log: Path, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # nginx logs after it answers
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry["request_id"] == request_id:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no access-log line with request id {request_id}")


def echoed(port: int, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """(headers the application received, request id the gateway answered with)."""
    status, answer, body = fetch(port, "GET", "/x", headers)
    assert status == 200
    return {k.lower(): v for k, v in json.loads(body)["headers"].items()}, answer["X-Request-ID"]


@pytest.mark.tools
def test_gateway_starts_a_trace_and_logs_its_id(traced_gateway) -> None:
    port, log = traced_gateway
    seen = set()
    for _ in range(3):
        received, request_id = echoed(port, {"tracestate": "vendor=1"})
        match = TRACEPARENT.match(received["traceparent"])
        assert match, received["traceparent"]
        trace_id, parent_id = match.groups()
        assert trace_id.strip("0") and parent_id.strip("0")
        assert "tracestate" not in received  # a new trace drops the caller's state
        assert log_entry(log, request_id)["trace_id"] == trace_id
        seen.add(trace_id)
    assert len(seen) == 3  # a new trace per request


@pytest.mark.tools
def test_gateway_continues_a_valid_trace_and_replaces_a_bad_one(traced_gateway) -> None:
    port, log = traced_gateway
    received, request_id = echoed(port, {"traceparent": VALID, "tracestate": "vendor=1", "X-Request-ID": "r-1"})
    assert (received["traceparent"], received["tracestate"], request_id) == (VALID, "vendor=1", "r-1")
    assert log_entry(log, "r-1")["trace_id"] == VALID.split("-")[1]

    bad = [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"x',  # trailing junk
    ]
    for index, value in enumerate(bad):
        received, _ = echoed(port, {"traceparent": value, "X-Request-ID": f"bad-{index}"})
        match = TRACEPARENT.match(received["traceparent"])
        assert match and received["traceparent"] != value, value
        assert log_entry(log, f"bad-{index}")["trace_id"] == match.group(1)


@pytest.mark.tools
def test_gateway_without_the_trace_store_renders_as_before(tmp_path: Path) -> None:
    """jaeger disabled (or absent): no trace context in nginx.conf, and the file still passes nginx -t."""
    plain = platform_from(tmp_path / "a", gateway_data(8000, jaeger=False))
    data = gateway_data(8000, jaeger=True)
    data["services"]["jaeger"] = {"enabled": False}
    disabled = platform_from(tmp_path / "b", data)
    texts = [render_platform(p)[deploy(p, "gateway/nginx.conf")] for p in (plain, disabled)]
    assert texts[0] == texts[1]
    assert "traceparent" not in texts[0] and "trace_id" not in texts[0]
    conf = tmp_path / "nginx.conf"
    conf.write_text(texts[0].replace("127.0.0.1:8000", "127.0.0.1:9"))
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
