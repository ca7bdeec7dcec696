"""Executing a plan: each service in its own thread, waiting only for what it depends on,
then created/started and probed until really ready. Independent services start together."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mindscape_ops.adapters.docker import Engine
from mindscape_ops.errors import MindscapeError
from mindscape_ops.provision.convergence import Action, Kind
from mindscape_ops.provision.proof import take as take_proof
from mindscape_ops.provision.readiness import NotReady, Wait, wait_until_ready

Event = Callable[[str, str, str], None]  # service, state, detail
ALIVE_CHECK_EVERY = 1.0  # seconds between asking the engine whether a container died


@dataclass
class Outcome:
    service: str
    ok: bool = True
    message: str = ""
    logs: str | None = None  # its container's last lines ("" when it printed none); None: no container
    elapsed: float = 0.0
    proof: dict[str, str] | None = None  # the container start this run proved ready (provision/proof.py)


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


class Cancelled(NotReady):
    """The run was interrupted (Ctrl-C): stop waiting."""


class StartQueue:
    """Container starts go to the engine one at a time, in start order. Started together they
    contend in the daemon and each takes several times longer; in order, the service that is
    slowest to become ready (postgres and its initdb, first in start order) gets going first,
    while the rest, quick to be ready, follow it."""

    def __init__(self, services: list[str], cancel: threading.Event) -> None:
        self.order = services
        self.done: set[str] = set()
        self.cancel = cancel
        self.changed = threading.Condition()

    def _my_turn(self, service: str) -> bool:
        return all(earlier in self.done for earlier in self.order[: self.order.index(service)])

    @contextlib.contextmanager
    def turn(self, service: str) -> Iterator[None]:
        try:
            if service in self.order:
                with self.changed:
                    while not self._my_turn(service):
                        if self.cancel.is_set():
                            raise Cancelled("interrupted")
                        self.changed.wait(0.2)
            yield
        finally:
            self.release(service)

    def release(self, service: str) -> None:
        """Whatever happened to `service`, the ones after it may go."""
        with self.changed:
            self.done.add(service)
            self.changed.notify_all()


def execute(engine: Engine, actions: list[Action], hooks: Hooks, event: Event) -> list[Outcome]:
    for action in actions:
        if action.kind is Kind.REMOVE:
            event(action.service, "removing", action.reason)
            engine.remove(action.observed.container_id)
            event(action.service, "removed", "volume kept")
    runnable = [a for a in actions if a.kind is not Kind.REMOVE]
    if not runnable:
        return []
    run = _Run(engine, runnable, hooks, event)
    with ThreadPoolExecutor(max_workers=len(runnable), thread_name_prefix="mindscape-up") as pool:
        futures = [pool.submit(run.service, action) for action in runnable]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            run.cancel.set()  # every wait ends within an interval; the pool then joins quickly
            raise


class _Run:
    """One `up`: the shared state of the service threads."""

    def __init__(self, engine: Engine, runnable: list[Action], hooks: Hooks, event: Event) -> None:
        self.engine, self.hooks, self.event = engine, hooks, event
        self.ready = {a.service: threading.Event() for a in runnable}
        self.failed: dict[str, str] = {}
        self.cancel = threading.Event()
        independent = [
            a.service
            for a in runnable
            if a.kind is not Kind.UNCHANGED and not any(d in self.ready for d in a.desired.depends_on)
        ]
        self.starts = StartQueue(independent, self.cancel)

    def service(self, action: Action) -> Outcome:
        started = time.monotonic()
        outcome = Outcome(action.service)
        try:
            with self.starts.turn(action.service):
                self._wait_for_dependencies(action)
                container = _converge_one(self.engine, action, self.hooks, self.event)
            if not (action.kind is Kind.UNCHANGED and action.observed.health == "healthy"):
                # Docker's own check passing on an unchanged container is enough; else probe
                self.event(action.service, "checking", "ready?")
                probe = self._probe(action.service)
                wait_until_ready(probe, self.hooks.wait(action.service), self._alive(container))
                outcome.proof = take_proof(self.engine, container, probe)
            if action.service in self.hooks.after_ready:
                self.hooks.after_ready[action.service]()
            outcome.elapsed = time.monotonic() - started
            self.event(action.service, "ready", f"{outcome.elapsed:.1f}s")
        except (NotReady, MindscapeError) as exc:
            self._fail(action, outcome, getattr(exc, "message", None) or str(exc))
        except Exception as exc:  # noqa: BLE001 - one service's surprise must not hide the others' outcomes
            self._fail(action, outcome, f"{type(exc).__name__}: {exc}")
        finally:
            self.ready[action.service].set()
        return outcome

    def _wait_for_dependencies(self, action: Action) -> None:
        for dependency in action.desired.depends_on:
            if dependency in self.ready:
                self.event(action.service, "waiting", f"for {dependency}")
                while not self.ready[dependency].wait(0.2):
                    if self.cancel.is_set():
                        raise Cancelled("interrupted")
                if dependency in self.failed:
                    raise NotReady(f"skipped: {dependency} failed")

    def _probe(self, service: str) -> Callable[[], None]:
        probe = self.hooks.probe(service)

        def attempt() -> None:
            if self.cancel.is_set():
                raise Cancelled("interrupted")
            probe()

        return attempt

    def _alive(self, container: str) -> Callable[[], str | None]:
        last = [0.0]

        def alive() -> str | None:
            if self.cancel.is_set():
                return "interrupted"
            if time.monotonic() - last[0] < ALIVE_CHECK_EVERY:  # spare the daemon: not on every probe
                return None
            last[0] = time.monotonic()
            state = self.engine.state(container)
            if state.get("Status") in ("exited", "dead"):
                return f"container exited with code {state.get('ExitCode')}"
            return None

        return alive

    def _fail(self, action: Action, outcome: Outcome, message: str) -> None:
        outcome.ok, outcome.message = False, message
        self.failed[action.service] = message
        if action.desired and not message.startswith(("skipped", "interrupted")):
            with contextlib.suppress(MindscapeError):
                if self.engine.container_by_name(action.desired.name):
                    outcome.logs = self.engine.logs(action.desired.name, tail=30)
        self.event(action.service, "failed", message)


def _converge_one(engine: Engine, action: Action, hooks: Hooks, event: Event) -> str:
    """Bring one container to its desired state; return its id."""
    if action.kind is Kind.UNCHANGED:
        event(action.service, "running", "unchanged")
        return action.observed.container_id
    if action.service in hooks.before_start:
        hooks.before_start[action.service]()
    if action.kind is Kind.START:
        event(action.service, "starting", action.reason)
        engine.start(action.observed.container_id)
        return action.observed.container_id
    volume = hooks.volume(action.service)
    if volume:
        engine.ensure_volume(*volume)
    if action.kind is Kind.RECREATE:
        event(action.service, "recreating", action.reason)
        return _recreate(engine, action, hooks, event)
    event(action.service, "creating", "")
    container = engine.create(hooks.request(action))
    event(action.service, "starting", "")
    engine.start(container)
    return container


def _recreate(engine: Engine, action: Action, hooks: Hooks, event: Event) -> str:
    """Replace a container without losing it: the old one is stopped and set aside, and
    comes back as it was if the new one cannot be created or started."""
    old = action.observed
    set_aside = f"{old.name}_replaced_{old.container_id[:12]}"
    was_running = old.running
    engine.stop(old.container_id)
    engine.rename(old.container_id, set_aside)
    new = None
    try:
        new = engine.create(hooks.request(action))
        event(action.service, "starting", "")
        engine.start(new)
    except BaseException:
        if new is not None:
            engine.remove(new)
        engine.rename(old.container_id, old.name)
        if was_running:
            engine.start(old.container_id)
        raise
    engine.remove(old.container_id)
    return new
