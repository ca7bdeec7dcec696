"""A read-only engine client for the fast paths (the no-op `up`, `status`): three GET requests
over the engine's Unix socket with the standard library, instead of importing the Docker SDK
and requests (about half the run time of those commands).

It answers what those paths ask (containers, image ids, a container's State) with the same
types as adapters/docker.Engine. Anything else (a tcp:// or ssh:// DOCKER_HOST, TLS) gets the
SDK's Engine: `reader()` chooses.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote

from mindscape_ops.adapters import engine_rows
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed
from mindscape_ops.provision.convergence import LABEL_PROJECT, Observed

DEFAULT_SOCKET = "/var/run/docker.sock"


def reader(timeout: float = 60) -> Any:
    """The light client when the engine is a local Unix socket, else the SDK's Engine."""
    host = os.environ.get("DOCKER_HOST", "")
    if (not host or host.startswith("unix://")) and not os.environ.get("DOCKER_TLS_VERIFY"):
        return SocketEngine(host.removeprefix("unix://") or DEFAULT_SOCKET, timeout)
    from mindscape_ops.adapters.docker import Engine

    return Engine(timeout=int(timeout), ping=False)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class SocketEngine:
    def __init__(self, path: str, timeout: float = 60) -> None:
        self.path, self.timeout = path, timeout
        self._conn: _UnixConnection | None = None

    def _get(self, url: str, missing_ok: bool = False) -> Any:
        """The decoded JSON of GET `url`; None for a 404 when `missing_ok`."""
        try:
            if self._conn is None:
                self._conn = _UnixConnection(self.path, self.timeout)
            self._conn.request("GET", url)
            response = self._conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn = None
            raise EnvironmentUnusable(
                f"Docker engine unreachable at {self.path}: {exc or type(exc).__name__}",
                "start Docker (scripts/ensure-docker here), or set DOCKER_HOST",
            ) from None
        if response.status == 404 and missing_ok:
            return None
        if response.status != 200:
            raise OperationFailed(f"engine answered {response.status} to GET {url}: {body[:200]!r}")
        return json.loads(body)

    def containers(self, project: str) -> dict[str, Observed]:
        filters = quote(json.dumps({"label": [f"{LABEL_PROJECT}={project}"]}))
        return engine_rows.observed(self._get(f"/containers/json?all=1&filters={filters}"))

    def image_ids(self, refs: list[str]) -> dict[str, str | None]:
        found = engine_rows.image_ids_by_tag(self._get("/images/json"), refs)
        for ref, image in found.items():
            if image is None:  # digests, short names, other spellings: ask the engine itself
                details = self._get(f"/images/{quote(ref, safe='/:')}/json", missing_ok=True)
                found[ref] = details["Id"] if details else None
        return found

    def state(self, container: str) -> dict[str, Any]:
        details = self._get(f"/containers/{quote(container, safe='/:')}/json", missing_ok=True)
        if details is None:
            raise OperationFailed(f"no container {container}")
        return details["State"]
