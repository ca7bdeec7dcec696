"""The Docker engine's multiplexed exec stream, read fast: pure framing over a socket, apart from
the adapter (this module needs no Docker SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

KEEP = 8192  # bytes of a command's stderr kept for its error message


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: bytes
    stderr: bytes


STDOUT, STDERR = 1, 2
_BLOCK = 256 << 10  # 1 MiB blocks held ~4 MB more in flight (read, pending, joined, copy) for no speed


def demultiplexed(raw: Any) -> Iterator[tuple[int, bytes]]:
    """The engine's multiplexed exec stream (8-byte header: stream, 0, 0, 0, big-endian size;
    then the payload) read in 256 KiB blocks, consecutive payloads of one stream joined into
    chunks of up to 256 KiB: a dump arrives in frames of a few KiB, and per-frame reads (the
    SDK's frames_iter: a poll and two reads per frame) cost more CPU than the hashing."""
    sock = getattr(raw, "_sock", raw)
    if hasattr(sock, "settimeout"):
        sock.settimeout(None)  # a dump may pause (a lock, a slow disk) longer than the API timeout
    receive = sock.recv if hasattr(sock, "recv") else raw.read
    pending = bytearray()
    joined = {STDOUT: bytearray(), STDERR: bytearray()}
    while True:
        block = receive(_BLOCK)
        if not block:
            break
        pending += block
        pos, end = 0, len(pending)
        with memoryview(pending) as view:
            while end - pos >= 8:
                size = int.from_bytes(view[pos + 4 : pos + 8], "big")
                if end - pos - 8 < size:
                    break
                joined.setdefault(view[pos], bytearray()).extend(view[pos + 8 : pos + 8 + size])
                pos += 8 + size
        del pending[:pos]
        for stream, data in joined.items():
            if len(data) >= _BLOCK or (stream == STDERR and data):
                yield stream, bytes(data)
                data.clear()
    for stream, data in joined.items():
        if data:
            yield stream, bytes(data)
