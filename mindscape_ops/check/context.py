"""What gates share during one run: the project, its secrets, where each service answers,
and what is costly to learn (the engine's containers, the rendered files), learnt once by
whichever gate asks first while the others wait."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mindscape_ops.check.model import Failed, Skipped
from mindscape_ops.services.contract import HTTP_TIMEOUT_S

if TYPE_CHECKING:
    from mindscape_ops.services.contract import Address, Credentials
    from mindscape_ops.workspace.project import Project


class CheckContext:
    """The `GateContext` (services/contract.py) every gate of one run is handed."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.secrets = project.workspace.read_secrets()
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, Any] = {}

    @property
    def platform(self):
        return self.project.platform

    def as_run(self):
        """The platform as its containers run: its `auto` port settings other than `port` (the
        log store's ingest port) as `up` picked them, read back from state.json; never picked:
        still `auto`. The rendered files come from `platform`, as written."""
        from mindscape_ops.provision.endpoints import platform_as_run

        return self.once("as_run", lambda: platform_as_run(self.project))

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` the first time `key` is asked for; an error is kept and raised again. Each
        key has its own lock: a gate waiting for the containers never waits for the rendering."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                try:
                    self._cache[key] = (True, make())
                except Exception as exc:  # noqa: BLE001 - re-raised to every gate that asks
                    self._cache[key] = (False, exc)
            ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def require(self, service: str) -> None:
        if service not in self.platform.services.enabled():
            raise Skipped(f"services.{service} is not enabled")

    def address(self, service: str) -> Address:
        from mindscape_ops.provision.endpoints import service_address

        return service_address(self.project, service)

    def credentials(self, service: str) -> Credentials:
        from mindscape_ops.services.registry import BY_NAME

        return BY_NAME[service].credentials_for(self.platform, self.secrets)

    def containers(self) -> dict[str, Any]:
        """This project's containers by service, from one engine request shared by all gates."""

        def ask() -> dict[str, Any]:
            # the light client where it can: the Docker SDK's import alone is a fifth of a run
            from mindscape_ops.adapters.engine_socket import reader

            return reader(timeout=5).containers(self.platform.project)

        return self.once("containers", ask)

    def rendered(self) -> dict[str, str]:
        """What platform.yaml renders now: path -> text."""
        from mindscape_ops.render import render_platform

        return self.once("rendered", lambda: render_platform(self.platform, self.project.root))

    def get_json(self, service: str, path: str, auth: tuple[str, str] | None = None) -> Any:
        """GET a service's HTTP API on its published port and parse the JSON answer."""
        import urllib.error
        import urllib.request

        address = self.address(service)
        request = urllib.request.Request(f"http://{address.host}:{address.port}{path}")
        if auth:
            import base64

            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 - 127.0.0.1 only
                return json.loads(response.read(8 << 20))
        except urllib.error.HTTPError as exc:
            raise Failed(f"{service}: GET {path} answered {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise Failed(f"{service}: GET {path}: {getattr(exc, 'reason', None) or exc}") from None
