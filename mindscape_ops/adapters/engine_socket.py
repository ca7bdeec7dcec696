"""A read-only engine client for the fast paths (the no-op `up`, `status`, `check`): GET
requests over the engine's Unix socket with the standard library, instead of importing the
Docker SDK and requests (about half the run time of those commands).

It answers what those paths ask (containers, image ids, a container's State, the times of its
output lines) with the same types as adapters/docker.Engine. Anything else (a tcp:// or
ssh:// DOCKER_HOST, TLS) gets the SDK's Engine: `reader()` chooses.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from mindscape_ops.adapters import engine_rows
from mindscape_ops.adapters.engine_rows import Observed
from mindscape_ops.adapters.exec_stream import ExecOutput
from mindscape_ops.adapters.labels import LABEL_PROJECT
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed

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
        return self._call("GET", url, None, missing_ok)

    def _call(self, method: str, url: str, body: Any = None, missing_ok: bool = False) -> Any:
        """The decoded JSON answer to `method url` (`body` sent as JSON); None for a 404 when
        `missing_ok`."""
        answer = self._raw(method, url, None if body is None else json.dumps(body).encode(), missing_ok)
        return json.loads(answer) if answer else None

    def _raw(self, method: str, url: str, payload: bytes | None = None, missing_ok: bool = False) -> bytes | None:
        """The body of the answer to `method url`; None for a 404 when `missing_ok`."""
        try:
            if self._conn is None:
                self._conn = _UnixConnection(self.path, self.timeout)
            self._conn.request(method, url, payload, {"Content-Type": "application/json"} if payload else {})
            response = self._conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn = None
            raise self._unreachable(exc) from None
        if response.status == 404 and missing_ok:
            return None
        if response.status not in (200, 201):
            raise OperationFailed(f"engine answered {response.status} to {method} {url}: {_message(answer)}")
        return answer

    def _unreachable(self, exc: BaseException) -> EnvironmentUnusable:
        return EnvironmentUnusable(
            f"Docker engine unreachable at {self.path}: {exc or type(exc).__name__}",
            "start Docker (scripts/ensure-docker here), or set DOCKER_HOST",
        )

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise EnvironmentUnusable(
                f"{doing}: the connection to the Docker engine broke ({exc or type(exc).__name__})",
                "check that the engine still runs (docker info), then try again",
            ) from None

    def container_by_name(self, name: str) -> dict[str, Any] | None:
        return self._get(f"/containers/{quote(name, safe='')}/json", missing_ok=True)

    def exec_output(self, container: str, cmd: list[str], user: str = "", stdin: bool = False) -> ExecOutput:
        """As the SDK Engine's: run `cmd` in a running container, iterate its stdout as it
        comes (the tail of stderr kept), then read `exit_code`. With `stdin`, the command's
        stdin is attached: what `send` writes, until the stream is closed."""
        created = self._call(
            "POST",
            f"/containers/{quote(container, safe='')}/exec",
            {"AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": False, "Cmd": cmd, "User": user},
        )
        exec_id = created["Id"]
        sock, head = self._hijack(f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
        return ExecOutput(container, sock, lambda: self._get(f"/exec/{exec_id}/json")["ExitCode"], self._errors, head)

    def _hijack(self, url: str, body: Any) -> tuple[socket.socket, bytes]:
        """POST `url` asking the engine to upgrade the connection to a raw stream (as the
        Docker CLI does for exec): the socket, and the stream's bytes read with the answer."""
        payload = json.dumps(body).encode()
        request = (
            f"POST {url} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        received = b""
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            sock.sendall(request + payload)
            while b"\r\n\r\n" not in received:
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("the engine closed the connection before answering")
                received += data
        except OSError as exc:
            sock.close()
            raise self._unreachable(exc) from None
        header, _, head = received.partition(b"\r\n\r\n")
        status = header.split(b" ", 2)[1] if header.count(b" ") >= 1 else b""
        if status not in (b"101", b"200"):
            sock.close()
            raise OperationFailed(f"engine answered {status.decode(errors='replace')} to POST {url}: {_message(head)}")
        return sock, head

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

    def output_times(self, container: str, since: float, until: float, tail: int | str = "all") -> list[float]:
        """As the SDK Engine's: the Unix times of its output lines in the window, oldest first."""
        query = f"stdout=1&stderr=1&timestamps=1&since={since:.6f}&until={until:.6f}&tail={tail}"
        return engine_rows.line_times(self._raw("GET", f"/containers/{quote(container, safe='')}/logs?{query}") or b"")

    def state(self, container: str) -> dict[str, Any]:
        details = self._get(f"/containers/{quote(container, safe='/:')}/json", missing_ok=True)
        if details is None:
            raise OperationFailed(f"no container {container}")
        return details["State"]


def _message(answer: bytes) -> str:
    """The engine's reason from an error answer ({"message": ...}), else its first bytes."""
    try:
        return str(json.loads(answer)["message"])
    except (ValueError, KeyError, TypeError):
        return repr(answer[:200])
