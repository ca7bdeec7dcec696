"""The log store's HTTP API (VictoriaLogs), as mindscape uses it: is it up, run a LogsQL
query, write rows. Standard library only; everything here talks to this machine."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from mindscape_ops.errors import OperationFailed

QUERY_TIMEOUT_S = 10.0


def quoted(value: str) -> str:
    """A LogsQL string literal (also for a field name with dots)."""
    return json.dumps(value)


def stream_filter(fields: Mapping[str, str]) -> str:
    """A stream filter selecting the streams whose fields have exactly these values (the
    LogsQL form: a bare `{...}` in extra_stream_filters is read as JSON)."""
    return "_stream:{" + ",".join(f"{quoted(name)}={quoted(value)}" for name, value in fields.items()) + "}"


def healthy(base: str, timeout: float = 1.0) -> bool:
    """True when the store answers its health check."""
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            return response.status == 200
    except (OSError, ValueError):
        return False


def accepting(ingest_url: str, timeout: float = 1.0) -> bool:
    """True when the listener the engine's log driver posts to answers its HEC health check."""
    try:
        with urllib.request.urlopen(f"{ingest_url}/services/collector/health", timeout=timeout) as response:  # noqa: S310
            return response.status == 200
    except (OSError, ValueError):
        return False


def parse_rows(body: bytes) -> list[dict[str, Any]]:
    """Pure: the rows of a /select/logsql/query answer (one JSON object per line)."""
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def query(
    base: str,
    logsql: str,
    limit: int | None = None,
    timeout: float = QUERY_TIMEOUT_S,
    stream: str | None = None,
) -> list[dict[str, Any]]:
    """Rows matching a LogsQL query; a query the store refuses is a clear error. `stream` (a
    stream filter, `_stream:{field="value",...}`) goes in the store's `extra_stream_filters`:
    the store ANDs it with the whole query itself, subqueries (`union`, `join`, `in(...)`)
    included, so no query text can widen it."""
    form = {"query": logsql}
    if limit is not None:
        form["limit"] = str(limit)
    if stream is not None:
        form["extra_stream_filters"] = stream
    request = urllib.request.Request(f"{base}/select/logsql/query", data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            return parse_rows(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode(errors="replace").strip().splitlines()
        raise OperationFailed(
            f"the log store refused the query: {detail[-1] if detail else exc.code}", "check the LogsQL syntax"
        ) from None
    except (OSError, ValueError) as exc:
        raise OperationFailed(f"log store at {base}: {getattr(exc, 'reason', None) or exc}") from None


def insert(
    base: str, rows: Iterable[Mapping[str, Any]], stream_fields: Iterable[str] = (), timeout: float = 2.0
) -> None:
    """Write rows (each with `_msg`; `_time` optional) through the JSON-lines endpoint."""
    params = urllib.parse.urlencode({"_stream_fields": ",".join(stream_fields)})
    body = "".join(json.dumps(dict(row), sort_keys=True) + "\n" for row in rows).encode()
    # not urllib's default form type: the store would read the body as form fields
    headers = {"Content-Type": "application/stream+json"}
    request = urllib.request.Request(f"{base}/insert/jsonline?{params}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
        response.read()


def counter(base: str, series: str, timeout: float = 2.0) -> float | None:
    """The value of one series (`name{labels}` exactly as the store prints it) of the store's
    own /metrics; 0 when the store does not print it (nothing counted yet), None when the
    metrics cannot be read."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return series_value(text, series)


def series_value(text: str, series: str) -> float:
    """Pure: the value of `series` in Prometheus' text format (0 when it is not there)."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 0.0


def post_event(ingest_url: str, event: Mapping[str, Any], timeout: float = 2.0) -> int | None:
    """Post one event to the listener the engine's splunk log drivers post to, as they do (HTTP
    Event Collector JSON); the HTTP status, or None when nothing answered."""
    body = json.dumps(event).encode()
    headers = {"Authorization": "Splunk mindscape", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{ingest_url}/services/collector/event/1.0", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None
