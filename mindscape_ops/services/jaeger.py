"""Jaeger v2: the trace store. OTLP receivers (gRPC and HTTP) for the applications, the query
API (and, in the official image, the UI) on its port, spans in memory (a bounded number of
traces) or in Badger on the data volume (for a bounded time). Its own metrics go to
Prometheus. Applications get `deploy/otel/app.env` to send their traces here."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from mindscape_ops.services.contract import HTTP_TIMEOUT_S, Failed, Gate, GateContext, HttpProbe, Skipped
from mindscape_ops.services.definition import Artifact, KubeShape, Metrics, Problem, ServiceDef, deploy
from mindscape_ops.services.spec import Container, Mount, wget_healthcheck
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Duration, Name

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

# Where Jaeger listens inside its container (the collector's usual ports).
OTLP_GRPC, OTLP_HTTP, QUERY_HTTP, QUERY_GRPC, METRICS, HEALTH = 4317, 4318, 16686, 16685, 8888, 13133
CONFIG = "/etc/jaeger/config.yaml"
BADGER_DIR = "/tmp"  # the image's own volume; writable by its non-root user

FixedPort = Annotated[int, Field(ge=1, le=65535)]


class Jaeger(Service):
    """The trace store: OTLP in, the query API (and UI) on `port`."""

    image: ImageRef = "jaegertracing/jaeger:2.13.0"
    port: PortSpec = QUERY_HTTP
    otlp_grpc_port: FixedPort | None = OTLP_GRPC
    otlp_http_port: FixedPort | None = OTLP_HTTP
    storage: Literal["memory", "badger"] = "memory"
    max_traces: int = Field(100_000, ge=100, le=10_000_000)
    retention: Duration = Duration("72h")
    service_name: Name | None = None
    sample_ratio: float = Field(1.0, ge=0, le=1)


def container(platform: Platform) -> Container:
    jaeger = platform.services.jaeger
    published = {OTLP_GRPC: jaeger.otlp_grpc_port, OTLP_HTTP: jaeger.otlp_http_port}
    return Container(
        container_port=QUERY_HTTP,
        extra_ports={inside: host for inside, host in published.items() if host is not None},
        command=(f"--config={CONFIG}",),
        mounts=(Mount(f"{platform.paths.deploy}/jaeger/config.yaml", CONFIG),),
        volume_target=BADGER_DIR if jaeger.storage == "badger" else None,
        healthcheck=wget_healthcheck(HEALTH, "/status"),
        also_listens=(METRICS, HEALTH),  # its own metrics (config.yaml), the health check's extension
    )


def problems(platform: Platform) -> list[Problem]:
    """The OTLP ports are published beside `port`: none may be another published port."""
    jaeger = platform.services.jaeger
    taken: dict[int, str] = {}
    for name, service in platform.services.enabled().items():
        if isinstance(service.port, int):
            taken.setdefault(service.port, f"services.{name}.port")
    found: list[Problem] = []
    for key in ("otlp_grpc_port", "otlp_http_port"):
        port = getattr(jaeger, key)
        if port is None:
            continue
        if port in taken:
            found.append((("services", "jaeger", key), f"port {port} is already used by {taken[port]}"))
        taken[port] = f"services.jaeger.{key}"
    return found


def otlp_endpoint(platform: Platform, protocol: Literal["grpc", "http"]) -> str | None:
    """Where an application on this machine sends OTLP (None: that receiver is not published)."""
    jaeger = platform.services.jaeger
    port = jaeger.otlp_http_port if protocol == "http" else jaeger.otlp_grpc_port
    if port is None:
        return None
    host = "127.0.0.1" if jaeger.bind == "0.0.0.0" else jaeger.bind
    return f"http://{host}:{port}"


# -- its `mindscape check` gate (traces group): a span sent to Jaeger over OTLP (HTTP, as an
# application would send it) is found through Jaeger's query API within a few seconds ---------------

FIND_MAX_S = 10.0
POLL_S = 0.1  # the collector's batch processor hands spans on every 200 ms
CHECK_SERVICE = "mindscape-check"


def probe_span(trace_id: str, span_id: str, now_ns: int) -> dict[str, Any]:
    """Pure: one OTLP/JSON export request holding one span of service `mindscape-check`."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": CHECK_SERVICE}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "mindscape.check"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "traces.ingesting",
                                "kind": 1,
                                "startTimeUnixNano": str(now_ns - 1_000_000),
                                "endTimeUnixNano": str(now_ns),
                            }
                        ],
                    }
                ],
            }
        ]
    }


def spans_of(answer: Any, trace_id: str) -> list[dict[str, Any]]:
    """Pure: the spans of `trace_id` in an answer of Jaeger's GET /api/traces/<id>."""
    found = []
    for trace in (answer or {}).get("data") or []:
        if str(trace.get("traceID", "")).lstrip("0") == trace_id.lstrip("0"):
            found.extend(trace.get("spans") or [])
    return found


def send_otlp_http(endpoint: str, body: dict[str, Any]) -> None:
    import urllib.error  # here: the service definitions import this module, and every command them
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/v1/traces", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 - this machine only
            response.read()
    except urllib.error.HTTPError as exc:
        raise Failed(f"OTLP receiver at {endpoint} answered {exc.code}") from None
    except OSError as exc:
        raise Failed(f"OTLP receiver at {endpoint}: {getattr(exc, 'reason', None) or exc}") from None


def find_trace(ctx: GateContext, trace_id: str) -> list[dict[str, Any]]:
    """The trace's spans once the query API returns them (it answers 404 until then)."""
    deadline = time.monotonic() + FIND_MAX_S
    while True:
        try:
            spans = spans_of(ctx.get_json("jaeger", f"/api/traces/{trace_id}"), trace_id)
        except Failed as exc:
            if "answered 404" not in exc.message:
                raise
            spans = []
        if spans or time.monotonic() > deadline:
            return spans
        time.sleep(POLL_S)


def ingesting(ctx: GateContext) -> str:
    endpoint = otlp_endpoint(ctx.platform, "http")
    if endpoint is None:
        raise Skipped("services.jaeger.otlp_http_port is null: no OTLP receiver is published to send a span to")
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    started = time.monotonic()
    send_otlp_http(endpoint, probe_span(trace_id, span_id, time.time_ns()))
    spans = find_trace(ctx, trace_id)
    if not any(span.get("spanID") == span_id for span in spans):
        raise Failed(f"a span sent to {endpoint} (trace {trace_id}) was not found within {FIND_MAX_S:g}s")
    return f"a span sent over OTLP/HTTP was found by trace id in {(time.monotonic() - started) * 1000:.0f} ms"


GATES = (
    Gate(
        "traces.ingesting",
        ingesting,
        "`mindscape logs jaeger` says why spans are not stored; `mindscape up jaeger` restarts it",
        timeout=FIND_MAX_S + 2 * HTTP_TIMEOUT_S + 2,
    ),
)


SERVICE = ServiceDef(
    name="jaeger",
    summary="trace store: OTLP in, query API out",
    settings=Jaeger,
    container=container,
    probe=HttpProbe("/api/services", expect='"data"'),
    metrics=Metrics(METRICS),
    artifacts=(
        Artifact("jaeger/config.yaml.j2", deploy("jaeger/config.yaml")),
        Artifact("otel/app.env.j2", deploy("otel/app.env")),
        Artifact("runbooks/tracing.md.j2", lambda platform: f"{platform.paths.runbooks}/tracing.md"),
    ),
    problems=problems,
    gates=GATES,
    kubernetes=KubeShape(clients=True),  # the application's pods send it OTLP (4317, 4318)
)
