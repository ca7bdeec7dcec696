"""The exec stream's framing, without an engine: frames cut anywhere by the socket still come
out whole, stdout joined, stderr apart."""

from __future__ import annotations

import random

from mindscape_ops.adapters.exec_stream import STDERR, STDOUT, demultiplexed


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class Chopped:
    """A socket that hands out its bytes in random small pieces."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data, self.random = data, random.Random(seed)

    def recv(self, size: int) -> bytes:
        piece = self.random.randint(1, 13)
        out, self.data = self.data[:piece], self.data[piece:]
        return out


def test_frames_cut_anywhere_come_out_whole_and_in_order():
    payloads = [bytes([i % 251]) * (i * 37 % 500 + 1) for i in range(200)]
    wire = b"".join(frame(STDOUT, p) for p in payloads) + frame(STDERR, b"warning: x\n")
    for seed in range(5):
        out = list(demultiplexed(Chopped(wire, seed)))
        assert b"".join(data for stream, data in out if stream == STDOUT) == b"".join(payloads)
        assert b"".join(data for stream, data in out if stream == STDERR) == b"warning: x\n"


def test_an_empty_stream_yields_nothing():
    assert list(demultiplexed(Chopped(b"", 0))) == []


def test_bytes_read_with_the_http_answer_are_framed_first():
    """The light client reads the start of the stream together with the engine's answer."""
    wire = frame(STDOUT, b"a" * 100) + frame(STDERR, b"oops\n") + frame(STDOUT, b"b" * 50)
    for cut in (1, 7, 8, 20, 108, len(wire)):
        out = list(demultiplexed(Chopped(wire[cut:], cut), head=wire[:cut]))
        assert b"".join(data for stream, data in out if stream == STDOUT) == b"a" * 100 + b"b" * 50
        assert b"".join(data for stream, data in out if stream == STDERR) == b"oops\n"
