"""services gates: each enabled service's container runs and the service is ready by its own
protocol (the readiness probe `up` waits on), with the probe's latency. Gates particular to
one service (Redis' memory policy, the gateway's headers, Prometheus' targets, ...) come from
that service's `ServiceDef.gates`, whatever their group."""

from __future__ import annotations

import time

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed, Gate
from mindscape_ops.services.contract import NotReady
from mindscape_ops.services.definition import ServiceDef


def ready(service: ServiceDef) -> Gate:
    name, probe = service.name, service.probe

    def run(ctx: CheckContext) -> str:
        address = ctx.address(name)
        probe.load()  # imported first: the latency is the service's, not the import's
        started = time.monotonic()
        try:
            probe.check(address.host, address.port, ctx.credentials(name))
        except NotReady as exc:
            why_not_ready(ctx, name, str(exc))
        took = (time.monotonic() - started) * 1000
        return f"ready: {probe.describe(name)} in {took:.0f} ms"

    remedy = f"`mindscape logs {name}` shows what it says; `mindscape up` restarts it"
    return Gate(f"services.{name}", run, remedy)


def why_not_ready(ctx: CheckContext, name: str, seen: str) -> None:
    """Raise the failure of a probe that did not pass, with what the engine says of the
    container (asked only now: a passing probe already proves the container runs)."""
    container = ctx.platform.container_name(name)
    observed = ctx.containers().get(name)
    if observed is None:
        raise Failed(f"no container {container}", "run `mindscape up`")
    if not observed.running:
        raise Failed(
            f"container {container} is {observed.state}",
            f"`mindscape up` starts it again; `mindscape logs {name}` shows why it stopped",
        )
    raise Failed(f"running but not ready: {seen}")


def gates(ctx_services: dict[str, object]) -> list[Gate]:
    """For each enabled service (in start order): its readiness gate, then its own gates."""
    from mindscape_ops.services.registry import SERVICES

    found: list[Gate] = []
    for service in SERVICES:
        if service.name in ctx_services:
            found.append(ready(service))
            found.extend(service.gates)
    return found
