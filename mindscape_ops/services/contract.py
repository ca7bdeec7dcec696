"""The contract between a service module and the rest of mindscape: the types a service module
fills in (its probe, gates, backup hooks, alerts, dashboard rows) and those its hooks are handed
(credentials, addresses, a wait, the check context). It sits at the bottom of the services
layer: it imports nothing of mindscape at run time, so a service module can import it and the
layers above can consume it without a cycle.

A probe is an open type, like testcontainers' wait strategies: any object with `check`,
`describe`, `load` and `http` is one, and the code that runs probes never asks which kind it
has. `HttpProbe` is here because most services answer HTTP; the database and the cache bring
their own in their modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


# -- what hooks are handed ------------------------------------------------------------------------


class NotReady(Exception):
    """One attempt failed; the message says what was seen (it ends up in the timeout error)."""


@dataclass(frozen=True)
class Credentials:
    """Who a probe or a client logs in as (empty for a service that takes no login)."""

    user: str = ""
    password: str = ""
    database: str = ""


@dataclass(frozen=True)
class Address:
    """Where a service answers from the host: its bind address and published port."""

    host: str
    port: int


@dataclass(frozen=True)
class Wait:
    """How long to wait for a service to be ready, and how often to ask."""

    timeout: float
    interval: float
    start_period: float = 0.0


@dataclass(frozen=True)
class Inputs:
    """What a service reads at `up` from outside platform.yaml and the generated files: the
    environment variables and files its prepare hook copies (a receiver's secret). The no-op
    `up` watches them, so a changed one sends `up` down the full path."""

    variables: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # relative to the project root, or absolute


@dataclass(frozen=True)
class LogFields:
    """Where a log store keeps what the log driver sends with each line: its project, service
    and container (the stream a query is scoped to), the prefix of a JSON line's keys, and the
    path of its Loki-style JSON push API on its query port (another service posting rows itself:
    the identity service's courier)."""

    project: str
    service: str
    container: str
    line_prefix: str
    push_path: str = ""

    @property
    def stream(self) -> tuple[str, str, str]:
        return (self.project, self.service, self.container)


# -- readiness ------------------------------------------------------------------------------------


def wait_until_ready(
    attempt: Callable[[], None],
    wait: Wait,
    still_alive: Callable[[], str | None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll `attempt` until it passes; return seconds waited. `still_alive` returns a reason
    when the container has died, which ends the wait at once. Raises NotReady on timeout."""
    started = clock()
    deadline = started + wait.start_period + wait.timeout
    last = "no answer yet"
    while True:
        try:
            attempt()
            return clock() - started
        except NotReady as exc:
            last = str(exc)
        dead = still_alive()
        if dead:
            raise NotReady(dead)
        if clock() >= deadline:
            raise NotReady(f"not ready after {wait.start_period + wait.timeout:g}s; last check: {last}")
        sleep(wait.interval)


@runtime_checkable
class Probe(Protocol):
    """How `up` knows a service is really ready, from the host through its published port."""

    def check(self, host: str, port: int, creds: Credentials) -> None:
        """One attempt: returns when ready, else raises NotReady with what was seen."""
        ...

    def describe(self, service: str) -> str:
        """What `check` proves, in a few words (`mindscape check` shows it): "SELECT 1", "PING"."""
        ...

    def load(self) -> None:
        """Import what `check` needs ahead of time, so a timed check measures the service."""
        ...

    @property
    def http(self) -> HttpProbe | None:
        """The same check as one HTTP GET, for those who can make only that (a Kubernetes
        readiness probe, the no-op `up`); None when it needs a client of its own."""
        ...


PROBE_MEMBERS = ("check", "describe", "load", "http")


def check_http(host: str, port: int, path: str, expect: str = "") -> None:
    import http.client  # here: every command loads the service modules, few probe (ssl, email come with it)

    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read(1 << 20).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise NotReady(f"GET {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise NotReady(f"GET {path} answered {response.status}")
    if expect and expect not in body:
        raise NotReady(f"GET {path} does not show {expect!r} yet")


@dataclass(frozen=True)
class HttpProbe:
    """Ready when GET `path` answers 200 (and its body shows `expect`, when set)."""

    path: str
    expect: str = ""

    def check(self, host: str, port: int, creds: Credentials) -> None:
        check_http(host, port, self.path, self.expect)

    def describe(self, service: str) -> str:
        return f"GET {self.path}"

    def load(self) -> None:
        import http.client  # noqa: F401

    @property
    def http(self) -> HttpProbe:
        return self


# -- quality gates (`mindscape check`) ------------------------------------------------------------

Severity = Literal["error", "warning"]
# The areas `mindscape check` reports, in order; a gate's id starts with one of them.
GROUPS = ("config", "services", "database", "security", "auth", "monitoring", "traces", "logs", "backups")
DEFAULT_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 3.0  # a gate's one HTTP request to a service


class Failed(Exception):
    """The gate's condition does not hold: `message` says what was seen."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message, self.remedy = message, remedy


def as_configured(found: dict[str, str], want: dict[str, str]) -> None:
    """Fails naming each setting the running service has otherwise than platform.yaml says."""
    wrong = [
        f"{key} is {found.get(key)!r}, platform.yaml says {value!r}"
        for key, value in want.items()
        if found.get(key) != value
    ]
    if wrong:
        raise Failed("; ".join(wrong))


class Skipped(Exception):
    """The gate does not apply to this platform (a service not enabled, a feature off)."""


class GateContext(Protocol):
    """What a gate may use during one `mindscape check` run (check/context.py makes it)."""

    project: Project
    secrets: Mapping[str, str]

    @property
    def platform(self) -> Platform: ...
    def as_run(self) -> Platform: ...  # with the `auto` port settings `up` picked (ServiceDef.auto_ports)
    def once(self, key: str, make: Callable[[], Any]) -> Any: ...
    def require(self, service: str) -> None: ...
    def address(self, service: str) -> Address: ...
    def credentials(self, service: str) -> Credentials: ...
    def containers(self) -> dict[str, Any]: ...
    def rendered(self) -> dict[str, str]: ...
    def get_json(self, service: str, path: str, auth: tuple[str, str] | None = None) -> Any: ...


@dataclass(frozen=True)
class Gate:
    id: str  # group.name
    run: Callable[[GateContext], str]  # returns what passed; raises Failed or Skipped
    remedy: str  # what a person does when it fails
    severity: Severity = "error"
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


# -- backups --------------------------------------------------------------------------------------

# Where `mindscape backup create` writes the time of each good backup, relative to the project
# root; the host's metrics exporter reads it with its textfile collector (BackupTooOld).
METRICS_DIR = ".mindscape/metrics"

Chunks = Callable[[], Iterator[bytes]]  # opens the backup's (checked, decrypted) bytes afresh


@dataclass
class Dump:
    """A backup being taken: its bytes (iterating them runs the dump; a failed dump raises
    before the stream ends) and what the manifest says about its source."""

    chunks: Iterator[bytes]
    format: str
    server_version: str
    source: str
    tables: dict[str, int] | None = None
    estimate: int | None = None  # bytes it may reach (sizes S3's parts)


@dataclass(frozen=True)
class Checked:
    """What `verify` found after a real restore."""

    ok: bool
    detail: str
    tables: dict[str, int] | None = None
    mismatches: tuple[str, ...] = ()


class BackupContext(Protocol):
    """What a service's backup hooks may use (backup/context.py makes it): the project, the
    engine, the running container of a service, where a service answers from the host, and the
    database a dump or restore works on (the provisioned one, or $DATABASE_URL's)."""

    project: Project

    @property
    def engine(self) -> Any: ...  # adapters.docker.Engine, connected on first use
    @property
    def streams(self) -> Any: ...  # runs a command and streams its output (the light socket client)
    def running_container(self, service: str) -> str: ...
    def address(self, service: str) -> Address: ...
    def database_target(self) -> Any: ...  # a provision.endpoints.DatabaseTarget


class BackupHooks(Protocol):
    """How `mindscape backup` dumps, restores and verifies one service (its module says how;
    backup/ does the streaming, the stores, the manifests)."""

    restores_beside: bool  # it can restore into a new database beside the live one (--into)

    def refuses_into(self, name: str) -> str | None:
        """Why `restore --into NAME` may not take this name (one it makes and drops on its own),
        or None. Asked of each service that restores beside, before any backup is read."""
        ...

    def dump(self, ctx: BackupContext) -> AbstractContextManager[Dump]: ...
    def restore(self, ctx: BackupContext, chunks: Chunks, manifest: Any, into: str | None) -> str: ...
    def verify(self, ctx: BackupContext, chunks: Chunks, manifest: Any) -> Checked: ...


# -- alerts and dashboard rows: pure data ---------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    service: str  # the `service` label: inhibition and routing group on it
    summary: str  # Prometheus templating ({{ $value }}) kept as is
    description: str
    runbook: tuple[str, ...]  # what to do, one markdown step each


@dataclass(frozen=True)
class AlertGroup:
    name: str
    alerts: tuple[Alert, ...]
    rank: int = 0  # where a service's group comes in the rule file and the runbook (lower first)


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Panel:
    """One Grafana panel (its JSON model, without id and position) and its size on the grid."""

    model: Mapping[str, Any]
    width: int = 8
    height: int = 8


@dataclass(frozen=True)
class DashboardRow:
    """A titled row of the platform dashboard and its panels, left to right."""

    title: str
    panels: tuple[Panel, ...]
    rank: int = 0  # where it comes on the dashboard (lower first)
