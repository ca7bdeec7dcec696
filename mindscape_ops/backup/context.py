"""What a service's backup hooks may use (the services' contract's BackupContext): the project,
the engine (connected on first use), the running container of a service, where a service
answers, and the database a dump or restore works on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mindscape_ops.errors import EnvironmentUnusable
from mindscape_ops.services.contract import Address, Checked, Chunks, Dump

__all__ = ["Checked", "Chunks", "Context", "Dump"]  # a dump's types are the services' contract's

if TYPE_CHECKING:
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.provision.endpoints import DatabaseTarget
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

    def address(self, service: str) -> Address:
        from mindscape_ops.provision.endpoints import service_address

        return service_address(self.project, service)

    def database_target(self) -> DatabaseTarget:
        """$DATABASE_URL's database when it is set, else the provisioned one."""
        from mindscape_ops.provision.endpoints import database_target

        return database_target(self.project, external=True)
