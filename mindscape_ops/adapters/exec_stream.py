"""The Docker engine's multiplexed exec stream, read fast: pure framing over a socket, apart from
the adapter (this module needs no Docker SDK)."""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Callable, Iterator
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


def demultiplexed(raw: Any, head: bytes = b"") -> Iterator[tuple[int, bytes]]:
    """The engine's multiplexed exec stream (8-byte header: stream, 0, 0, 0, big-endian size;
    then the payload) read in 256 KiB blocks, consecutive payloads of one stream joined into
    chunks of up to 256 KiB: a dump arrives in frames of a few KiB, and per-frame reads (the
    SDK's frames_iter: a poll and two reads per frame) cost more CPU than the hashing.
    `head`: bytes of the stream already read off the socket (with the HTTP response)."""
    sock = getattr(raw, "_sock", raw)
    if hasattr(sock, "settimeout"):
        sock.settimeout(None)  # a dump may pause (a lock, a slow disk) longer than the API timeout
    if type(sock) is socket.socket:
        # whole blocks: the engine writes a dump in pieces of a few KiB, and each read (a trip
        # round this loop) cost more than the bytes it brought (17,000 reads for 140 MB)
        receive = lambda size: sock.recv(size, socket.MSG_WAITALL)  # noqa: E731
    else:  # a TLS socket takes no flags; a file-like stream has no recv
        receive = sock.recv if hasattr(sock, "recv") else raw.read
    pending = bytearray()
    joined = {STDOUT: bytearray(), STDERR: bytearray()}
    for block in itertools.chain([head] if head else [], iter(lambda: receive(_BLOCK), b"")):
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


class ExecOutput:
    """A command's stdout, chunk by chunk, demultiplexed from the engine's stream; when it
    has ended, `exit_code` (asked of the engine by `exit_code_of`) and the tail of stderr.
    `errors(doing)` turns the transport's failures into the adapter's one-line errors."""

    def __init__(
        self,
        container: str,
        sock: Any,
        exit_code_of: Callable[[], int | None],
        errors: Callable[[str], contextlib.AbstractContextManager[None]],
        head: bytes = b"",
    ) -> None:
        self.container, self.sock, self.head = container, sock, head
        self._exit_code_of, self._errors = exit_code_of, errors
        self.stderr = b""
        self.exit_code: int | None = None

    def __iter__(self) -> Iterator[bytes]:
        with self._errors(f"reading from {self.container}"):
            try:
                for stream, data in demultiplexed(self.sock, self.head):
                    if stream == STDERR:
                        self.stderr = (self.stderr + data)[-KEEP:]
                    else:
                        yield data
            finally:
                self.close()
            self.exit_code = self._exit_code_of()

    def send(self, data: bytes) -> None:
        """To the command's stdin (an exec started with its stdin attached)."""
        with self._errors(f"writing to {self.container}"):
            self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
