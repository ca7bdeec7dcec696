"""The project's log store: where it answers, the LogsQL that selects one service's lines,
how a row reads as text, and mindscape's own audit entries sent there."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mindscape_ops.adapters import logstore
from mindscape_ops.errors import MindscapeError
from mindscape_ops.services.contract import LogFields
from mindscape_ops.services.registry import SERVICES
from mindscape_ops.workspace.project import Project

AUDIT_SERVICE = "mindscape"  # the service label of mindscape's own audit entries


def _fields() -> LogFields:
    """What the registry's log store (ServiceDef.log_fields) calls a line's project, service
    and container, and the prefix of a JSON line's keys."""
    return next(service.log_fields for service in SERVICES if service.log_fields is not None)


def store_base(project: Project) -> str | None:
    """The store's base URL when it is enabled and has a port (None otherwise)."""
    store = project.platform.services.log_store()
    if store is None:
        return None
    from mindscape_ops.provision.endpoints import service_address

    try:
        address = service_address(project, store)
    except MindscapeError:  # `port: auto` never picked: it never ran
        return None
    return f"http://{address.host}:{address.port}"


def running_store(project: Project) -> str | None:
    """The base URL when the store is enabled and answers its health check now."""
    base = store_base(project)
    return base if base is not None and logstore.healthy(base) else None


def ships(project: Project, service: str) -> bool:
    """Whether this service's output goes to the store (not the store's own, not with
    ingest_port null)."""
    from mindscape_ops.services.spec import container_specs

    spec = container_specs(project.platform).get(service)
    return spec is not None and spec.log_driver != "json-file"


def service_stream(project: str, service: str) -> str:
    """Pure: the stream filter of one service's lines of one project. `logs` hands it to the
    store beside the query (not inside it), so a user's query can narrow it, never widen it."""
    fields = _fields()
    return logstore.stream_filter({fields.project: project, fields.service: service})


def service_query(project: str, service: str, query: str = "", since: str = "") -> str:
    """Pure: LogsQL for one service's lines of one project, narrowed by a user query and a
    window. A query whose parentheses or quotes do not pair is refused (it could close the
    scope's parenthesis and OR its way out of it)."""
    check_query(query)
    fields = _fields()
    parts = [
        f"{logstore.quoted(fields.project)}:={logstore.quoted(project)}",
        f"{logstore.quoted(fields.service)}:={logstore.quoted(service)}",
    ]
    if since:
        parts.append(f"_time:{since}")
    filters, pipes = split_pipes(query)
    if filters.strip():
        parts.append(f"({filters})")
    return " AND ".join(parts) + (f" | {pipes}" if pipes else "")


def check_query(query: str) -> None:
    """A user's query whose parentheses or quotes do not pair is a usage error."""
    problem = unbalanced(query)
    if problem:
        from mindscape_ops.errors import UsageError

        raise UsageError(f"--query: {problem}", "pair every ( with a ) and close every quote")


def _outside_quotes(query: str) -> tuple[list[tuple[int, str, int]], tuple[int, str] | None]:
    """Pure: each character outside quotes as (index, character, parenthesis depth before it),
    and the quote left open at the end (its index and character), if any."""
    outside: list[tuple[int, str, int]] = []
    depth, quote, opened, escaped = 0, "", 0, False
    for index, char in enumerate(query):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":  # LogsQL escapes in "..." and '...', not in `...`
                escaped = True
            elif char == quote:
                quote = ""
            continue
        outside.append((index, char, depth))
        if char in "\"'`":
            quote, opened = char, index
        elif char in "()":
            depth += 1 if char == "(" else -1
    return outside, ((opened, quote) if quote else None)


def split_pipes(query: str) -> tuple[str, str]:
    """Pure: a LogsQL query cut at its first `|` outside quotes and parentheses: the filters
    (scoped to the service) and the pipes (`| limit 5`, `| fields ...`), which follow the scope."""
    for index, char, depth in _outside_quotes(query)[0]:
        if char == "|" and depth == 0:
            return query[:index], query[index + 1 :].strip()
    return query, ""


def unbalanced(query: str) -> str | None:
    """Pure: what does not pair in a query (None when every parenthesis and quote does)."""
    outside, open_quote = _outside_quotes(query)
    opened: list[int] = []
    for index, char, _ in outside:
        if char == "(":
            opened.append(index)
        elif char == ")" and not opened:
            return f"the ) at column {index + 1} closes no ("
        elif char == ")":
            opened.pop()
    if open_quote is not None:
        return f"the quote {open_quote[1]} at column {open_quote[0] + 1} is not closed"
    return f"the ( at column {opened[-1] + 1} is not closed" if opened else None


def as_text(row: Mapping[str, Any]) -> str:
    """Pure: a row as one line: time, message, then the fields of a JSON line as key=value."""
    prefix = _fields().line_prefix
    extra = " ".join(f"{k[len(prefix) :]}={v}" for k, v in sorted(row.items()) if k.startswith(prefix))
    return " ".join(part for part in (str(row.get("_time", "")), str(row.get("_msg", "")), extra) if part)


def engine_since(window_seconds: float, now: float) -> int:
    """Pure: the Unix time `docker logs --since` starts at; a window longer than the epoch
    means every line (the engine refuses a time before 1970)."""
    return max(1, int(now - window_seconds))


def audit_rows(path: Path, tail: int | str, window_seconds: float | None, now: float) -> list[dict[str, Any]]:
    """mindscape's own audit entries from the local audit log (`logs mindscape` while the store
    is not running): the last `tail`, only those within the window."""
    from mindscape_ops.workspace import audit

    rows = audit.read(path)
    if window_seconds is not None:
        rows = [row for row in rows if (audit.entry_time(row) or 0.0) >= now - window_seconds]
    return rows[max(0, len(rows) - tail) :] if isinstance(tail, int) else rows


def ship_audit(project: Project, entry: Mapping[str, Any]) -> bool:
    """Send one audit entry to the store when it runs; never fails the command (False: not sent)."""
    base = store_base(project)
    if base is None:
        return False
    fields = _fields()
    row = {
        "_msg": f"{entry.get('command', '')}: {entry.get('outcome', '')}",
        "_time": entry.get("time", ""),
        fields.project: project.platform.project,
        fields.service: AUDIT_SERVICE,
        fields.container: "",
        **{f"audit.{key}": value for key, value in entry.items() if key != "time"},
    }
    try:
        logstore.insert(base, [row], fields.stream, timeout=1.0)
    except (OSError, ValueError):
        return False
    return True


def read_store(
    project: Project, service: str, query: str, since: str | None, tail: int | str
) -> list[dict[str, Any]] | None:
    """A service's lines from the store, oldest first (the last `tail`); None when the store
    does not hold them now (not enabled, not running, or a service that is not shipped)."""
    from mindscape_ops.errors import UsageError

    enabled = project.platform.services.enabled()
    if service not in enabled and service != AUDIT_SERVICE:
        raise UsageError(f"not an enabled service: {service}", f"enabled: {', '.join(enabled) or 'none'}")
    if service in enabled and not ships(project, service):
        return None
    base = running_store(project)
    if base is None:
        return None
    logsql = service_query(project.platform.project, service, query, since or "")
    stream = service_stream(project.platform.project, service)
    if isinstance(tail, int):
        return list(reversed(logstore.query(base, f"{logsql} | sort by (_time desc) limit {tail}", stream=stream)))
    return logstore.query(base, f"{logsql} | sort by (_time)", stream=stream)
