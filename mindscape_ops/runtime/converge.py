"""Executing a plan: each service in its own thread, waiting only for what it depends on,
then created/started and probed until really ready. Independent services start together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..plan import Action, Kind
from .docker import Engine
from .readiness import NotReady, Wait, wait_until_ready

Event = Callable[[str, str, str], None]  # service, state, detail


@dataclass
class Outcome:
    service: str
    ok: bool = True
    message: str = ""
    logs: str = ""
    elapsed: float = 0.0


@dataclass
class Hooks:
    """What a service needs done around its start: build its request, probe it, and
    service-specific steps (pgbouncer's userlist before start, migrations after postgres)."""

    request: Callable[[Action], object]
    probe: Callable[[str], Callable[[], None]]
    wait: Callable[[str], Wait]
    volume: Callable[[str], tuple[str, dict[str, str]] | None]
    before_start: dict[str, Callable[[], None]] = field(default_factory=dict)
    after_ready: dict[str, Callable[[], None]] = field(default_factory=dict)


class StartQueue:
    """Container starts go to the engine one at a time, in start order. Started together they
    contend in the daemon and each takes several times longer; in order, the service that is
    slowest to become ready (postgres and its initdb, first in start order) gets going first,
    while the rest, quick to be ready, follow it."""

    def __init__(self, services: list[str]) -> None:
        self.order = services
        self.position = 0
        self.turn_changed = threading.Condition()

    @contextlib.contextmanager
    def turn(self, service: str) -> Iterator[None]:
        if service not in self.order:
            yield
            return
        with self.turn_changed:
            self.turn_changed.wait_for(lambda: self.order[self.position] == service)
        try:
            yield
        finally:
            with self.turn_changed:
                self.position += 1
                self.turn_changed.notify_all()


def execute(
    engine: Engine, actions: list[Action], hooks: Hooks, event: Event, trust_docker_health: bool = True
) -> list[Outcome]:
    for action in actions:
        if action.kind is Kind.REMOVE:
            event(action.service, "removing", action.reason)
            engine.remove(action.observed.container_id)
            event(action.service, "removed", "volume kept")
    runnable = [a for a in actions if a.kind is not Kind.REMOVE]
    ready = {a.service: threading.Event() for a in runnable}
    starts = StartQueue(
        [
            a.service
            for a in runnable
            if a.kind is not Kind.UNCHANGED and not any(d in ready for d in a.desired.spec.depends_on)
        ]
    )
    failed: dict[str, str] = {}

    def run(action: Action) -> Outcome:
        started = time.monotonic()
        outcome = Outcome(action.service)
        try:
            for dependency in action.desired.spec.depends_on:
                if dependency in ready:
                    event(action.service, "waiting", f"for {dependency}")
                    ready[dependency].wait()
                    if dependency in failed:
                        raise NotReady(f"skipped: {dependency} failed")
            with starts.turn(action.service):
                container = _converge_one(engine, action, hooks, event)
            if action.kind is Kind.UNCHANGED and trust_docker_health and action.observed.health == "healthy":
                pass  # Docker's own check passes and nothing changed: no need to probe again
            else:
                event(action.service, "checking", "ready?")

                def alive() -> str | None:
                    state = engine.state(container)
                    if state.get("Status") in ("exited", "dead"):
                        return f"container exited with code {state.get('ExitCode')}"
                    return None

                wait_until_ready(hooks.probe(action.service), hooks.wait(action.service), alive)
            if action.service in hooks.after_ready:
                hooks.after_ready[action.service]()
            outcome.elapsed = time.monotonic() - started
            event(action.service, "ready", f"{outcome.elapsed:.1f}s")
        except NotReady as exc:
            outcome.ok, outcome.message = False, str(exc)
            failed[action.service] = str(exc)
            if action.desired and not str(exc).startswith("skipped"):
                outcome.logs = (
                    engine.logs(action.desired.name, tail=30) if engine.container_by_name(action.desired.name) else ""
                )
            event(action.service, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported per service; the others go on
            outcome.ok, outcome.message = False, getattr(exc, "message", None) or str(exc) or type(exc).__name__
            failed[action.service] = outcome.message
            event(action.service, "failed", outcome.message)
        finally:
            ready[action.service].set()
        return outcome

    if not runnable:
        return []
    with ThreadPoolExecutor(max_workers=len(runnable), thread_name_prefix="mindscape-up") as pool:
        return list(pool.map(run, runnable))


def _converge_one(engine: Engine, action: Action, hooks: Hooks, event: Event) -> str:
    """Bring one container to its desired state; return its id or name."""
    if action.kind is Kind.UNCHANGED:
        event(action.service, "running", "unchanged")
        return action.observed.container_id
    if action.service in hooks.before_start:
        hooks.before_start[action.service]()
    if action.kind is Kind.START:
        event(action.service, "starting", action.reason)
        engine.start(action.observed.container_id)
        return action.observed.container_id
    if action.kind is Kind.RECREATE:
        event(action.service, "recreating", action.reason)
        engine.remove(action.observed.container_id)
    else:
        event(action.service, "creating", "")
    volume = hooks.volume(action.service)
    if volume:
        engine.ensure_volume(*volume)
    container = engine.create(hooks.request(action))
    event(action.service, "starting", "")
    engine.start(container)
    return container
