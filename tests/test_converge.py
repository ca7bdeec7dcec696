"""Executing a plan, against a fake engine: start order, a recreate that fails keeps the old
container, a failing service does not stop the others, Ctrl-C ends the waits."""

from __future__ import annotations

import threading
import time

import pytest

from mindscape_ops.errors import OperationFailed
from mindscape_ops.provision.convergence import Action, Desired, Kind, Observed
from mindscape_ops.provision.execute import Hooks, StartQueue, execute
from mindscape_ops.provision.readiness import NotReady, Wait
from mindscape_ops.services.spec import ContainerSpec


class FakeEngine:
    def __init__(self, fail_start: set[str] = frozenset()):
        self.calls: list[tuple[str, str]] = []
        self.fail_start = fail_start
        self.lock = threading.Lock()

    def _log(self, verb, what):
        with self.lock:
            self.calls.append((verb, what))

    def create(self, request):
        self._log("create", request)
        return f"new-{request}"

    def start(self, container):
        self._log("start", container)
        if any(container.endswith(name) for name in self.fail_start):
            raise OperationFailed(f"starting {container}: port is already allocated")

    def stop(self, container):
        self._log("stop", container)

    def rename(self, container, name):
        self._log("rename", f"{container}->{name}")

    def remove(self, container):
        self._log("remove", container)

    def ensure_volume(self, name, labels):
        self._log("volume", name)

    def state(self, container):
        return {"Status": "running"}

    def container_by_name(self, name):
        return None

    def logs(self, name, tail=30):
        return ""


def action(service, kind=Kind.CREATE, depends_on=(), running=True):
    spec = ContainerSpec(
        service=service, image="img", container_port=1, host_port=1, bind="127.0.0.1", name=f"p-{service}"
    )
    desired = Desired(spec.completed(1, "sha256:x", {}, {}), depends_on)
    observed = Observed(f"p-{service}", service, "running" if running else "exited", None, {}, f"old-{service}")
    return Action(service, kind, "test", desired, observed if kind is not Kind.CREATE else None)


def hooks(probe=lambda service: lambda: None):
    return Hooks(request=lambda a: a.service, probe=probe, wait=lambda s: Wait(5, 0.01), volume=lambda s: None)


def test_starts_go_one_at_a_time_in_start_order():
    engine = FakeEngine()
    actions = [action("postgres"), action("redis"), action("prometheus"), action("pgbouncer", depends_on=("postgres",))]
    outcomes = execute(engine, actions, hooks(), lambda *e: None)
    assert all(o.ok for o in outcomes)
    starts = [what for verb, what in engine.calls if verb == "start"]
    assert starts[:3] == ["new-postgres", "new-redis", "new-prometheus"]
    assert starts[3] == "new-pgbouncer"


def test_failed_recreate_brings_the_old_container_back():
    engine = FakeEngine(fail_start={"gateway"})
    outcomes = execute(engine, [action("gateway", Kind.RECREATE)], hooks(), lambda *e: None)
    assert not outcomes[0].ok and "port is already allocated" in outcomes[0].message
    assert engine.calls == [
        ("stop", "old-gateway"),
        ("rename", "old-gateway->p-gateway_replaced_old-gateway"),
        ("create", "gateway"),
        ("start", "new-gateway"),
        ("remove", "new-gateway"),
        ("rename", "old-gateway->p-gateway"),
        ("start", "old-gateway"),
    ]


def test_successful_recreate_removes_the_old_container_last():
    engine = FakeEngine()
    assert execute(engine, [action("gateway", Kind.RECREATE)], hooks(), lambda *e: None)[0].ok
    assert engine.calls[-1] == ("remove", "old-gateway")


def test_a_failing_service_skips_its_dependants_and_spares_the_others():
    engine = FakeEngine(fail_start={"postgres"})
    actions = [action("postgres"), action("redis"), action("pgbouncer", depends_on=("postgres",))]
    outcomes = {o.service: o for o in execute(engine, actions, hooks(), lambda *e: None)}
    assert not outcomes["postgres"].ok and outcomes["redis"].ok
    assert outcomes["pgbouncer"].message == "skipped: postgres failed"
    assert ("start", "new-redis") in engine.calls  # the queue moved on past the failure


def test_start_queue_moves_on_when_a_turn_fails():
    queue = StartQueue(["a", "b"], threading.Event())
    with pytest.raises(RuntimeError), queue.turn("a"):
        raise RuntimeError("boom")
    with queue.turn("b"):
        pass
    assert queue.done == {"a", "b"}


def test_interrupt_ends_every_wait_promptly(monkeypatch):
    import concurrent.futures

    def never_ready(service):
        def probe():
            raise NotReady("starting")

        return probe

    def interrupted(self, timeout=None):  # Ctrl-C arrives in the main thread while it waits
        time.sleep(0.2)
        raise KeyboardInterrupt

    monkeypatch.setattr(concurrent.futures.Future, "result", interrupted)
    slow = Hooks(request=lambda a: a.service, probe=never_ready, wait=lambda s: Wait(120, 0.05), volume=lambda s: None)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        execute(FakeEngine(), [action("postgres"), action("redis")], slow, lambda *e: None)
    assert time.monotonic() - started < 5  # not the 120 s health timeout
