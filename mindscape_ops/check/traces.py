"""traces gates: a span sent to Jaeger over OTLP (HTTP, as an application would send it) is
found through Jaeger's query API within a few seconds."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mindscape_ops.check.context import HTTP_TIMEOUT_S, CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped

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


def find_trace(ctx: CheckContext, trace_id: str) -> list[dict[str, Any]]:
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


def ingesting(ctx: CheckContext) -> str:
    from mindscape_ops.services.jaeger import otlp_endpoint

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


TRACES_GATES = (
    Gate(
        "traces.ingesting",
        ingesting,
        "`mindscape logs jaeger` says why spans are not stored; `mindscape up jaeger` restarts it",
        timeout=FIND_MAX_S + 2 * HTTP_TIMEOUT_S + 2,
    ),
)
