"""What a service's backup hooks may use: the project, the engine (connected on first use),
and the running container of a service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mindscape_ops.errors import EnvironmentUnusable

if TYPE_CHECKING:
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.workspace.project import Project


@dataclass
class Context:
    project: Project
    echo: Callable[[str], None] = lambda text: None
    _engine: Engine | None = field(default=None, repr=False)
    _streams: Any = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from mindscape_ops.adapters.docker import Engine

            self._engine = Engine()
        return self._engine

    @property
    def streams(self) -> Any:
        """What runs a command and streams its output: the light client on the engine's local
        Unix socket (no Docker SDK to import before a dump can start: ~0.07 s of every backup),
        else `engine`."""
        if self._streams is None:
            if self._engine is not None:
                self._streams = self._engine
            else:
                from mindscape_ops.adapters.engine_socket import reader

                self._streams = reader()
        return self._streams

    def running_container(self, service: str) -> str:
        name = self.project.platform.container_name(service)
        details = self.streams.container_by_name(name)
        if details is None or not details.get("State", {}).get("Running"):
            state = "does not exist" if details is None else f"is {details['State'].get('Status', 'not running')}"
            raise EnvironmentUnusable(f"container {name} {state}", f"run `mindscape up {service}` first")
        return name


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


Chunks = Callable[[], Iterator[bytes]]  # opens the backup's (checked, decrypted) bytes afresh
# What a data service plugs into `ServiceDef.backup` is the services' contract's BackupHooks.
