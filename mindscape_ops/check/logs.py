"""logs gates: a marker line written to a running container's output (its PID 1's stdout, as
the service's own lines are) is found in the log store within a few seconds, labelled with
that container's project and service; where no running container lets its output be written
to, a throwaway container with the same log driver prints it. The driver posts every 5 s."""

from __future__ import annotations

import time
import uuid

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate, Skipped

FIND_MAX_S = 15.0  # the engine's splunk driver posts every 5 s
POLL_S = 0.5
WRITE = 'echo "$0" > /proc/1/fd/1'  # the container's own stdout, which its log driver reads
CHECK_SERVICE = "mindscape-check"  # the one-off container's name in its log options


def write_marker(ctx: CheckContext, marker: str) -> str:
    """Write the marker through the first shipped running container that has a shell; its service."""
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.provision.logstore import ships

    containers = ctx.containers()
    engine = Engine(timeout=10)
    for service in ctx.platform.services.enabled():
        observed = containers.get(service)
        if observed is None or not observed.running or not ships(ctx.project, service):
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
    from mindscape_ops.services.registry import BY_NAME

    store = ctx.platform.services.victorialogs
    log = BY_NAME["victorialogs"].log_sink(ctx.platform, CHECK_SERVICE)  # type: ignore[misc]
    labels = {"io.mindscape.project": ctx.platform.project, "io.mindscape.check": "1"}
    if engine.run_once(store.image, ["sh", "-c", 'echo "$0"', marker], labels, log) != 0:
        raise Failed(f"a one-off container of {store.image} could not print a marker line", "run `mindscape up`")
    return CHECK_SERVICE


def ingesting(ctx: CheckContext) -> str:
    from mindscape_ops.adapters.logstore import query
    from mindscape_ops.provision.logstore import service_query, store_base

    if ctx.platform.services.victorialogs.ingest_port is None:
        raise Skipped("services.victorialogs.ingest_port is null: container logs are not shipped")
    base = store_base(ctx.project)
    if base is None:
        raise Failed("the log store has no port yet", "run `mindscape up`")
    marker = f"mindscape-check-{uuid.uuid4().hex}"
    started = time.monotonic()
    service = write_marker(ctx, marker)
    if service == CHECK_SERVICE:  # the one-off container: by project and container name
        from mindscape_ops.adapters.logstore import quoted
        from mindscape_ops.services.victorialogs import CONTAINER_FIELD, PROJECT_FIELD

        project, container = ctx.platform.project, ctx.platform.container_name(CHECK_SERVICE)
        logsql = f"{quoted(PROJECT_FIELD)}:={quoted(project)} AND {quoted(CONTAINER_FIELD)}:={quoted(container)}"
        logsql += f' AND "{marker}"'
    else:
        logsql = service_query(ctx.platform.project, service, f'"{marker}"')
    while not query(base, logsql, limit=1):
        if time.monotonic() - started > FIND_MAX_S:
            raise Failed(f"a line written through {service}'s container was not in the store after {FIND_MAX_S:g}s")
        time.sleep(POLL_S)
    took = time.monotonic() - started
    return f"a line written through {service}'s container was found by its labels in {took:.1f} s"


LOGS_GATES = (
    Gate(
        "logs.ingesting",
        ingesting,
        "`mindscape logs victorialogs` says why lines are not stored; `mindscape up` restarts it",
        timeout=FIND_MAX_S + 10,
    ),
)
