"""The SDK adapter's exec with input (pg_restore fed a backup): the writer and the thread that
drains the command's output share one socket."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from mindscape_ops.adapters.docker import Engine, _Exec


class Socket:
    """The exec's socket as the SDK gives it (a timeout set); the command prints nothing and
    ends once its input does. The drain thread comes to its own settimeout late."""

    def __init__(self) -> None:
        self.timeout: float | None = 60.0
        self.sent_with: list[float | None] = []
        self.input_ended = threading.Event()

    def settimeout(self, timeout: float | None) -> None:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
        self.timeout = timeout

    def sendall(self, data: bytes) -> None:
        self.sent_with.append(self.timeout)

    def shutdown(self, how: int) -> None:
        self.input_ended.set()

    def recv(self, size: int) -> bytes:
        self.input_ended.wait(5)
        return b""

    def close(self) -> None:
        pass


def test_the_input_is_written_in_blocking_mode_whatever_the_drain_thread_does_meanwhile(monkeypatch):
    """Written while the socket still had the SDK's timeout, a sendall that met a full buffer
    raised EAGAIN when the drain thread switched the timeout off under it."""
    engine = Engine.__new__(Engine)
    engine.api = SimpleNamespace(exec_inspect=lambda _id: {"ExitCode": 0})
    sock = Socket()
    monkeypatch.setattr(engine, "_exec_socket", lambda *_args, **_kw: _Exec(sock, "exec-1"))
    result = engine.exec_input("db", ["pg_restore"], [b"one", b"two"])
    assert result.exit_code == 0 and sock.input_ended.is_set()
    assert sock.sent_with == [None, None]
