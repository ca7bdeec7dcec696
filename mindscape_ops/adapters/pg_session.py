"""A small Postgres session for the early backup start, with the standard library: the frontend
protocol's startup, SCRAM-SHA-256 authentication (mindscape's Postgres container's; or none, for
`trust`) and simple queries with text results, over a plain TCP socket.

`backup create` starts pg_dump in the snapshot such a session exports, and counts the rows in
it, without importing psycopg (~90 ms of CPU, which comes before pg_dump could start, and then
competes with it on a small machine). Everything else
(TLS, other authentication methods, notifications, COPY, the extended protocol) is psycopg's:
any answer this module does not expect raises SessionRefused, and the caller takes the usual
path through psycopg, which says what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import struct

PROTOCOL = 196608  # 3.0
CANCEL = 80877102  # the cancel request's code
SCRAM = "SCRAM-SHA-256"
MAX_ROUNDS = 1_000_000  # Postgres' default is 4096: a hostile server must not burn the CPU


class SessionRefused(Exception):
    """The server, or this module, cannot go on: the caller falls back to psycopg."""


class Session:
    """One connection: `query` runs simple queries; `close` ends the session (and with it any
    open transaction)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self._key = b""  # the backend's process id and secret, which a cancel request names

    @classmethod
    def connect(cls, host: str, port: int, user: str, password: str, database: str, timeout: float = 5) -> Session:
        """A session, started within `timeout` seconds: a server that stops answering for as
        long fails it (see wait_as_long_as_it_takes)."""
        sock = socket.create_connection((host, port), timeout=timeout)
        session = cls(sock)
        try:
            session._start(user, password, database)
        except BaseException:
            session.close()
            raise
        return session

    def wait_as_long_as_it_takes(self) -> None:
        """From now on a query takes what it takes (a count of a large table, as psycopg's
        would); until then each answer comes within the connect's timeout."""
        self._sock.settimeout(None)

    def query(self, text: str) -> list[list[str | None]]:
        """The rows of the last result `text` returns (one or more statements, simple protocol);
        an error in any statement raises SessionRefused with the server's message."""
        self._send(b"Q", text.encode() + b"\0")
        rows: list[list[str | None]] = []
        error = None
        while True:
            kind, body = self._receive()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(_row(body))
            elif kind == b"E":
                error = _error(body)
            elif kind == b"Z":
                if error is not None:
                    raise SessionRefused(error)
                return rows
            elif kind not in (b"C", b"I", b"N", b"S"):  # complete, empty, notice, a setting changed
                raise SessionRefused(f"unexpected message {kind!r} in a simple query")

    def cancel(self) -> None:
        """Ask the server to cancel the query running in this session (from another thread),
        as libpq's PQcancel does: a cancel request on a connection of its own."""
        if not self._key:
            return
        peer = self._sock.getpeername()
        with socket.create_connection(peer[:2], timeout=5) as other:
            other.sendall(struct.pack("!ii", 16, CANCEL) + self._key)
            other.recv(1)  # the server closes it once the request is read

    def close(self) -> None:
        try:
            self._send(b"X", b"")  # Terminate
        except OSError:
            pass
        finally:
            self._sock.close()

    def _start(self, user: str, password: str, database: str) -> None:
        params = {"user": user, "database": database, "application_name": "mindscape", "client_encoding": "UTF8"}
        body = struct.pack("!i", PROTOCOL) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()
        )
        self._sock.sendall(struct.pack("!i", len(body) + 5) + body + b"\0")
        scram: _Scram | None = None
        while True:
            kind, body = self._receive()
            if kind == b"E":
                raise SessionRefused(_error(body))
            if kind == b"Z":
                return
            if kind == b"K":
                self._key = body[:8]
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, notices
            (code,) = struct.unpack("!i", body[:4])
            if code == 0:  # authenticated; after SCRAM only once the server proved it
                if scram is not None and not scram.verified:
                    raise SessionRefused("the server ended SCRAM without proving it knows the password")
                continue
            if code == 10 and SCRAM in body[4:].decode().split("\0"):
                scram = _Scram(password)
                first = scram.first()
                self._send(b"p", SCRAM.encode() + b"\0" + struct.pack("!i", len(first)) + first)
            elif code == 11 and scram is not None:
                self._send(b"p", scram.final(body[4:]))
            elif code == 12 and scram is not None:
                scram.check(body[4:])
            else:
                raise SessionRefused(f"authentication method {code} is psycopg's")

    def _send(self, kind: bytes, body: bytes) -> None:
        self._sock.sendall(kind + struct.pack("!i", len(body) + 4) + body)

    def _receive(self) -> tuple[bytes, bytes]:
        head = self._read(5)
        (length,) = struct.unpack("!i", head[1:])
        if length < 4:
            raise SessionRefused("a malformed message from the server")
        return head[:1], self._read(length - 4)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            data = self._sock.recv(max(1 << 16, n - len(self._buffer)))
            if not data:
                raise SessionRefused("the server closed the connection")
            self._buffer += data
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


class _Scram:
    """SCRAM-SHA-256 as Postgres speaks it (RFC 5802, RFC 7677; no channel binding): the user
    name is the startup message's, so the exchange names none (`name`: RFC 7677's example)."""

    def __init__(self, password: str, name: str = "", nonce: str = "") -> None:
        if not password.isascii():  # SASLprep would apply (RFC 4013): psycopg's libpq does that
            raise SessionRefused("a non-ASCII password is psycopg's to prepare")
        self.password = password.encode()
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self.client_first = f"n={name},r={self.nonce}"
        self.expected = b""
        self.verified = False

    def first(self) -> bytes:
        return f"n,,{self.client_first}".encode()

    def final(self, server_first: bytes) -> bytes:
        fields = dict(part.split("=", 1) for part in server_first.decode().split(",") if "=" in part)
        nonce, salt, rounds = fields.get("r", ""), fields.get("s", ""), fields.get("i", "")
        if len(nonce) <= len(self.nonce) or not nonce.startswith(self.nonce) or not salt or not rounds.isdigit():
            raise SessionRefused("the server's SCRAM challenge is malformed")
        if not 1 <= int(rounds) <= MAX_ROUNDS:
            raise SessionRefused(f"the server asks for {rounds} SCRAM iterations")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(salt), int(rounds))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={nonce}"
        message = f"{self.client_first},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.expected = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def check(self, server_final: bytes) -> None:
        """The server proves it knows the password too (a man in the middle does not)."""
        text = server_final.decode()
        if not text.startswith("v=") or not hmac.compare_digest(base64.b64decode(text[2:]), self.expected):
            raise SessionRefused("the server's SCRAM signature does not match")
        self.verified = True


def _row(body: bytes) -> list[str | None]:
    (count,) = struct.unpack("!h", body[:2])
    values: list[str | None] = []
    at = 2
    for _ in range(count):
        (size,) = struct.unpack("!i", body[at : at + 4])
        at += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[at : at + size].decode())
            at += size
    return values


def _error(body: bytes) -> str:
    """The server's message from an ErrorResponse (its S and M fields)."""
    fields = {part[:1]: part[1:].decode(errors="replace") for part in body.split(b"\0") if part}
    return f"{fields.get(b'S', 'ERROR')}: {fields.get(b'M', 'unknown error')}"
