"""Memcached: an in-memory cache for what can be rebuilt (sessions, rendered fragments, query
results). It holds nothing worth backing up, and takes no login: only the platform network and
`bind` (127.0.0.1 by default) reach it. Ready when it answers `version` over its text protocol."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from pydantic import Field

from mindscape_ops.services.contract import Credentials, Failed, Gate, NotReady, as_configured
from mindscape_ops.services.definition import KubeShape, ServiceDef
from mindscape_ops.services.spec import Container
from mindscape_ops.settings.base import ImageRef, PortSpec, Service
from mindscape_ops.settings.types import Size

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

PORT = 11211


class Memcached(Service):
    image: ImageRef = "memcached:1.6"
    port: PortSpec = PORT
    memory: Size = Size("64mb")  # the most it caches; the least recently used items go first (-m)
    max_connections: int = Field(1024, ge=16, le=65536)  # -c


def megabytes(size: Size) -> int:
    return max(1, size.bytes // (1024 * 1024))


def container(platform: Platform) -> Container:
    mc = platform.services.memcached
    return Container(
        container_port=PORT,
        # flags only: the official image's entrypoint puts `memcached` in front of them
        command=("-m", str(megabytes(mc.memory)), "-c", str(mc.max_connections)),
        # no shell tool in either image answers its protocol: readiness is probed
    )


def ask(host: str, port: int, command: str, until: bytes) -> str:
    """One text-protocol command, and its answer up to the line `until` starts."""
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(command.encode() + b"\r\n")
        answer = b""
        while not any(line.startswith(until) for line in answer.split(b"\r\n")):
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError(f"connection closed after {len(answer)} bytes")
            answer += chunk
    return answer.decode("utf-8", "replace")


class Version:
    """Ready when it answers `version` (VERSION 1.6.x)."""

    def check(self, host: str, port: int, creds: Credentials) -> None:
        try:
            answer = ask(host, port, "version", b"VERSION")
        except OSError as exc:
            raise NotReady(f"version: {exc or type(exc).__name__}") from None
        if not answer.startswith("VERSION "):
            raise NotReady(f"version answered {answer.strip()[:80]!r}")

    def describe(self, service: str) -> str:
        return "version"

    def load(self) -> None:
        return None  # a socket: nothing to import ahead

    @property
    def http(self) -> None:
        return None


def stats(host: str, port: int) -> dict[str, str]:
    """`stats`: its counters and settings, by name."""
    lines = ask(host, port, "stats", b"END").split("\r\n")
    return {parts[1]: parts[2] for line in lines if len(parts := line.split(" ", 2)) == 3 and parts[0] == "STAT"}


def memory_as_configured(ctx) -> str:
    """`mindscape check`: the running memcached has platform.yaml's memory and connection limits."""
    settings, address = ctx.platform.services.memcached, ctx.address("memcached")
    try:
        found = stats(address.host, address.port)
    except OSError as exc:
        raise Failed(f"memcached: {exc or type(exc).__name__}") from None
    want = {"limit_maxbytes": str(megabytes(settings.memory) * 1024 * 1024)}
    want["max_connections"] = str(settings.max_connections)
    as_configured(found, want)
    return f"memory {settings.memory} ({want['limit_maxbytes']} bytes), {settings.max_connections} connections"


LIMITS_GATE = Gate(
    "services.memcached_limits",
    memory_as_configured,
    "memcached runs with other limits than platform.yaml's: `mindscape up memcached` recreates it with them",
)


SERVICE = ServiceDef(
    name="memcached",
    summary="an in-memory cache (no login: reached on the platform network and its bind address only)",
    settings=Memcached,
    container=container,
    probe=Version(),
    gates=(LIMITS_GATE,),
    kubernetes=KubeShape(
        run_as=11211,  # memcache in the official image
        writable=(),
        cpu=("50m", "500m"),
        memory=("96Mi", "256Mi"),
        clients=True,
    ),
)
