"""The log store's gate (group logs): every running container's output is in the log store, labelled with its project
and service, without waiting for the engine's next post.

The engine's splunk driver posts each container's lines every 5 s, and the store shows a row
within a second of receiving it. So a line a container wrote more than SETTLE_S ago is in the
store when its driver delivers, and missing when it does not. The gate asks the engine (its
dual-logging cache) for the time of the newest such line of each running shipped container,
written since that container last started (an older line proves an earlier delivery only), and
the store, in one query, whether it holds a line of that service from then on; and the
listener the drivers post to must answer now. Only when no container wrote anything that is
due (right after `up`, or a silent platform) does it write a marker line and wait for it.

Those lines prove the drivers delivered when they were written, which on a quiet platform may be
hours ago: a store that has stopped taking lines since (its disk full, say) would still hold
them. So the store must also take a line now: the gate posts one to the drivers' listener, as a
driver does, and the store's own count of lines taken that way must move (no batch to wait for)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mindscape_ops.adapters.engine_rows import rfc3339_seconds
from mindscape_ops.errors import MindscapeError, OperationFailed
from mindscape_ops.services.contract import Failed, Gate, Skipped
from mindscape_ops.services.contract import GateContext as CheckContext

SETTLE_S = 7.0  # the driver's 5 s batch, its post, and the store's 1 s before a row is searchable
START_SLACK_S = 1.0  # see newest_line_due
LATE_S = 8.0  # more grace (a loaded machine) before a due line that is missing counts as lost
WINDOW_S = 86400.0  # older lines are not compared: the store keeps at least a day
TAIL = 50  # lines asked of each container (the engine takes the tail first, then the window)
LONG_TAIL = 2000
FIND_MAX_S = 15.0  # the marker: the driver posts every 5 s
POLL_S = 0.5
WRITE = 'echo "$0" > /proc/1/fd/1'  # the container's own stdout, which its log driver reads
CHECK_SERVICE = "mindscape-check"  # the one-off container's name in its log options
INGESTED = 'vl_rows_ingested_total{type="splunk"}'  # the store's count of lines its drivers' listener took
TAKE_S = 1.0  # the count moves as the post is answered; a little grace for a loaded machine


# -- pure decisions ------------------------------------------------------------------------


def newest_due(times: Iterable[float], now: float) -> float | None:
    """Pure: the time of the newest line written at least SETTLE_S before `now` and within
    WINDOW_S of it (None when there is none)."""
    due = [t for t in times if now - WINDOW_S <= t <= now - SETTLE_S]
    return max(due) if due else None


def store_time(seconds: float) -> str:
    """Pure: a LogsQL absolute time, to the microsecond the engine's driver sends."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delivered_query(project: str, due: Mapping[str, float]) -> str:
    """Pure: LogsQL counting, per service, the project's stored lines from each service's due
    line on (a millisecond earlier: the driver rounds the time to the microsecond)."""
    from mindscape_ops.adapters.logstore import quoted
    from mindscape_ops.services.victorialogs import PROJECT_FIELD, SERVICE_FIELD

    per_service = " OR ".join(
        f"({quoted(SERVICE_FIELD)}:={quoted(service)} AND _time:>={store_time(t - 0.001)})"
        for service, t in sorted(due.items())
    )
    return (
        f"{quoted(PROJECT_FIELD)}:={quoted(project)} AND ({per_service})"
        f" | stats by ({quoted(SERVICE_FIELD)}) count() as found"
    )


def delivered(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Pure: the services that have a row in the answer to `delivered_query`."""
    from mindscape_ops.services.victorialogs import SERVICE_FIELD

    return {str(row.get(SERVICE_FIELD)) for row in rows if int(row.get("found") or 0) > 0}


def clock_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")


# -- the gate ------------------------------------------------------------------------------


def store_base(ctx: CheckContext) -> str | None:
    """The store's base URL from the host (None when its `port: auto` was never picked)."""
    try:
        address = ctx.address("victorialogs")
    except MindscapeError:
        return None
    return f"http://{address.host}:{address.port}"


def ships(ctx: CheckContext, service: str) -> bool:
    """Whether this service's output goes to the store (not the store's own)."""
    from mindscape_ops.services.spec import container_specs

    spec = container_specs(ctx.platform).get(service)
    return spec is not None and spec.log_driver != "json-file"


def ingesting(ctx: CheckContext) -> str:
    from mindscape_ops.adapters.logstore import accepting
    from mindscape_ops.services.victorialogs import log_sink

    if ctx.platform.services.victorialogs.ingest_port is None:
        raise Skipped("services.victorialogs.ingest_port is null: container logs are not shipped")
    base = store_base(ctx)
    if base is None:
        raise Failed("the log store has no port yet", "run `mindscape up`")
    if ctx.as_run().services.victorialogs.ingest_port == "auto":
        raise Failed("services.victorialogs.ingest_port is auto and no port was picked yet", "run `mindscape up`")
    ingest = log_sink(ctx.as_run(), CHECK_SERVICE)[1]["splunk-url"]  # type: ignore[index]
    if not accepting(ingest):
        raise Failed(f"the log store does not answer at {ingest}, where the engine posts every container's output")
    takes_a_line_now(ctx, base, ingest)
    now = time.time()
    newest = due_lines(ctx, now)
    due = {service: t for service, t in newest.items() if t is not None}
    if not due:
        return by_marker(ctx, base)
    proven = compare(ctx, base, due, now)
    silent = sorted(service for service, t in newest.items() if t is None)
    return proven + (f"; nothing due from {', '.join(silent)}" if silent else "")


def probe_event(project: str, container: str, now: float) -> dict[str, Any]:
    """Pure: one line as the engine's splunk driver posts it (JSON format: the line, the
    container's name as its tag, its labels), from the project's `mindscape-check`."""
    from mindscape_ops.adapters.labels import LABEL_PROJECT, LABEL_SERVICE

    return {
        "event": {
            "line": f"mindscape check: the log store takes lines ({uuid.uuid4().hex})",
            "source": "stdout",
            "tag": container,
            "attrs": {LABEL_PROJECT: project, LABEL_SERVICE: CHECK_SERVICE},
        },
        "time": f"{now:.6f}",
        "host": "mindscape",
    }


def takes_a_line_now(ctx: CheckContext, base: str, ingest: str) -> None:
    """The store takes a line now: one posted to the listener must be answered 200 and move
    the store's own count of lines taken through it (INGESTED), within TAKE_S."""
    from mindscape_ops.adapters.logstore import counter, post_event

    before = counter(base, INGESTED)
    if before is None:
        raise Failed(f"the log store's metrics ({base}/metrics) cannot be read")
    event = probe_event(ctx.platform.project, ctx.platform.container_name(CHECK_SERVICE), time.time())
    status = post_event(ingest, event)
    if status != 200:
        answered = "nothing answered" if status is None else f"it answered HTTP {status}"
        raise Failed(f"the log store did not take a line posted to {ingest} ({answered}): it stores no new lines")
    deadline = time.monotonic() + TAKE_S
    while (after := counter(base, INGESTED)) is not None and after <= before:
        if time.monotonic() > deadline:
            raise Failed(
                f"the log store answered a line posted to {ingest} but its count of lines taken "
                f"({INGESTED}) did not move: it stores no new lines"
            )
        time.sleep(0.05)


def due_lines(ctx: CheckContext, now: float) -> dict[str, float | None]:
    """Per running shipped service, the time of its container's newest line that is due in
    the store (from the engine's own copy of the output); None when it wrote none."""
    from mindscape_ops.adapters.engine_socket import reader

    containers = ctx.containers()
    engine = reader(timeout=5)
    due: dict[str, float | None] = {}
    for service in ctx.platform.services.enabled():
        observed = containers.get(service)
        if observed is not None and observed.running and ships(ctx, service):
            try:
                started = rfc3339_seconds(str(engine.state(observed.name).get("StartedAt", "")))
                due[service] = newest_line_due(engine, observed.name, now, started)
            except OperationFailed:  # no copy to read (the engine's cache disabled), or just removed
                due[service] = None
    return due


def newest_line_due(engine: Any, container: str, now: float, started: float | None = None) -> float | None:
    """The engine takes the tail first, then the window: when a container's last lines are all
    too new (a burst: the gateway's during this very check), a longer tail, then the seconds
    before they were due (a container that is always busy). Only lines of the container's
    current run count (from `started` on): older ones in the store prove an earlier delivery,
    not that its driver delivers now."""
    # A second before the recorded start still counts: the engine records StartedAt after the
    # process is running, and a line written at once can be stamped before it.
    since, until = max(now - WINDOW_S, (started or 0.0) - START_SLACK_S), now - SETTLE_S
    if since > until:
        return None  # started too recently for any line to be due
    for start, tail in ((since, TAIL), (since, LONG_TAIL), (max(since, until - SETTLE_S), "all")):
        newest = newest_due(engine.output_times(container, start, until, tail=tail), now)
        if newest is not None:
            return newest
    return None


def compare(ctx: CheckContext, base: str, due: Mapping[str, float], now: float) -> str:
    """Every due line is in the store by its labels; a missing one gets until it is LATE_S
    overdue (the store or the engine may be slow) before the gate fails."""
    from mindscape_ops.adapters.logstore import query

    logsql = delivered_query(ctx.platform.project, due)
    while True:
        missing = sorted(set(due) - delivered(query(base, logsql)))
        if not missing or time.time() > max(due[s] for s in missing) + SETTLE_S + LATE_S:
            break
        time.sleep(POLL_S)
    if missing:
        lines = "; ".join(
            f"{s}'s newest due line, of {clock_of(due[s])} UTC ({time.time() - due[s]:.0f} s ago)" for s in missing
        )
        raise Failed(f"not in the store: {lines}: the container's log driver does not deliver")
    freshest = now - max(due.values())
    return (
        f"the newest line of each of {len(due)} running services written {SETTLE_S:g} s ago or earlier "
        f"({', '.join(sorted(due))}) is in the store by its labels; the freshest is {freshest:.0f} s old"
    )


# -- nothing due: a marker line, and the wait for the driver's next post ---------------------


def write_marker(ctx: CheckContext, marker: str) -> str:
    """Write the marker through the first shipped running container that has a shell; its service."""
    from mindscape_ops.adapters.docker import Engine

    containers = ctx.containers()
    engine = Engine(timeout=10)
    for service in ctx.platform.services.enabled():
        observed = containers.get(service)
        if observed is None or not observed.running or not ships(ctx, service):
            continue
        # Works where PID 1 runs as root (the gateway, ...); where it has dropped to another user
        # (postgres, redis) its output pipe cannot be reopened, and the next service is tried.
        run = engine.exec_output(observed.name, ["sh", "-c", WRITE, marker], user="0")
        for _ in run:
            pass
        if run.exit_code == 0:
            return service
    return write_through_one_off(ctx, engine, marker)


def write_through_one_off(ctx: CheckContext, engine, marker: str) -> str:
    """No running container lets its output be written to: a throwaway container of the store's
    image, with the same log driver, prints the marker. It carries the project's label (not a
    service's, so `up` never takes it for one of the platform's)."""
    from mindscape_ops.services.victorialogs import log_sink

    store = ctx.platform.services.victorialogs
    log = log_sink(ctx.as_run(), CHECK_SERVICE)
    labels = {"io.mindscape.project": ctx.platform.project, "io.mindscape.check": "1"}
    if engine.run_once(store.image, ["sh", "-c", 'echo "$0"', marker], labels, log) != 0:
        raise Failed(f"a one-off container of {store.image} could not print a marker line", "run `mindscape up`")
    return CHECK_SERVICE


def by_marker(ctx: CheckContext, base: str) -> str:
    from mindscape_ops.adapters.logstore import query, quoted
    from mindscape_ops.services.victorialogs import CONTAINER_FIELD, PROJECT_FIELD, SERVICE_FIELD

    marker = f"mindscape-check-{uuid.uuid4().hex}"
    started = time.monotonic()
    service = write_marker(ctx, marker)
    project = ctx.platform.project
    if service == CHECK_SERVICE:  # the one-off container: by project and container name
        container = ctx.platform.container_name(CHECK_SERVICE)
        logsql = f"{quoted(PROJECT_FIELD)}:={quoted(project)} AND {quoted(CONTAINER_FIELD)}:={quoted(container)}"
        logsql += f' AND "{marker}"'
    else:  # by its labels, as `mindscape logs` selects a service's lines
        logsql = f"{quoted(PROJECT_FIELD)}:={quoted(project)} AND {quoted(SERVICE_FIELD)}:={quoted(service)}"
        logsql += f' AND ("{marker}")'
    while not query(base, logsql, limit=1):
        if time.monotonic() - started > FIND_MAX_S:
            raise Failed(f"a line written through {service}'s container was not in the store after {FIND_MAX_S:g}s")
        time.sleep(POLL_S)
    took = time.monotonic() - started
    return (
        f"no container wrote a line {SETTLE_S:g} s ago or earlier: a line written through {service}'s container "
        f"was found by its labels in {took:.1f} s"
    )


LOGS_GATES = (
    Gate(
        "logs.ingesting",
        ingesting,
        "`mindscape logs victorialogs` says why lines are not stored; `mindscape up` restarts it",
        timeout=max(FIND_MAX_S, SETTLE_S + LATE_S) + 10,
    ),
)
