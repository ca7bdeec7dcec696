"""The early backup start's Postgres session (adapters/pg_session.py), engine-free: SCRAM against
RFC 7677's example, and the protocol against a scripted server on a socket pair. A real Postgres
is in test_backup_start_engine.py."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from mindscape_ops.adapters.pg_session import Session, SessionRefused, _Scram

# RFC 7677, section 3: user "user", password "pencil"
NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_matches_the_rfc_example():
    scram = _Scram("pencil", name="user", nonce=NONCE)
    assert scram.first() == b"n,,n=user,r=" + NONCE.encode()
    assert scram.final(SERVER_FIRST) == CLIENT_FINAL
    scram.check(SERVER_FINAL)  # the server proved it knows the password


def test_scram_refuses_a_server_that_does_not_know_the_password_or_changes_the_nonce():
    scram = _Scram("pencil", name="user", nonce=NONCE)
    scram.final(SERVER_FIRST)
    with pytest.raises(SessionRefused, match="signature"):
        scram.check(b"v=" + b"A" * 44)
    with pytest.raises(SessionRefused, match="malformed"):
        _Scram("pencil", nonce=NONCE).final(b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    with pytest.raises(SessionRefused, match="non-ASCII"):
        _Scram("pëncil")


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def auth(code: int, data: bytes = b"") -> bytes:
    return message(b"R", struct.pack("!i", code) + data)


def row(*values: bytes | None) -> bytes:
    cells = b"".join(struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v for v in values)
    return message(b"D", struct.pack("!h", len(values)) + cells)


READY = message(b"Z", b"I")


def error(text: str) -> bytes:
    return message(b"E", b"SERROR\0C42601\0M" + text.encode() + b"\0\0")


def scripted(answers: bytes) -> tuple[Session, socket.socket]:
    """A session whose server has already written `answers`."""
    ours, theirs = socket.socketpair()
    theirs.sendall(answers)
    return Session(ours), theirs


def test_a_trusted_start_and_a_query_reads_the_last_result_with_nulls():
    session, server = scripted(
        auth(0)
        + message(b"S", b"server_version\x0015\x00")
        + message(b"K", b"\0\0\0\1\0\0\0\2")
        + READY
        + message(b"C", b"BEGIN\0")
        + message(b"T", b"\0\1")
        + row(b"00000003-1", None, b"42")
        + message(b"C", b"SELECT 1\0")
        + READY
    )
    session._start("u", "pw", "db")
    assert session.query("BEGIN; SELECT ...") == [["00000003-1", None, "42"]]
    session.close()
    sent = server.recv(1 << 16)
    assert sent.endswith(b"X\0\0\0\4")  # terminated
    assert struct.unpack("!i", sent[4:8])[0] == 196608  # the startup message (no type byte): protocol 3.0


@pytest.mark.parametrize(
    ("answers", "refused"),
    [
        (auth(5, b"salt"), "authentication method 5"),  # md5: psycopg's
        (auth(10, b"SCRAM-SHA-256-PLUS\0\0"), "authentication method 10"),  # channel binding only
        (error('password authentication failed for user "u"'), "password authentication failed"),
        (b"R\0\0\0\2", "malformed"),
        (b"", "closed the connection"),
    ],
)
def test_a_start_it_cannot_finish_is_refused_for_psycopg_to_take(answers, refused):
    session, _ = scripted(answers)
    if not answers:
        _.shutdown(socket.SHUT_WR)
    with pytest.raises(SessionRefused, match=refused):
        session._start("u", "pw", "db")


def test_an_error_in_a_query_is_raised_once_the_server_is_ready_again():
    session, _ = scripted(error('syntax error at or near "SELEC"') + READY + message(b"C", b"SELECT 1\0") + READY)
    with pytest.raises(SessionRefused, match='ERROR: syntax error at or near "SELEC"'):
        session.query("SELEC 1")
    assert session.query("SELECT 1") == []  # the stream is still in step


def test_a_message_it_does_not_speak_is_refused():
    session, _ = scripted(message(b"G", b"\0\0\0"))  # CopyInResponse
    with pytest.raises(SessionRefused, match="unexpected message"):
        session.query("COPY t FROM STDIN")


def test_a_cancel_request_names_the_backend_on_a_connection_of_its_own():
    """As libpq's PQcancel: the backend's key (from BackendKeyData) sent to the same address on
    a new connection, with the cancel request's code."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        session = Session(ours)
        server.sendall(auth(0) + message(b"K", b"\0\0\0\x07SECR") + READY)
        session._start("u", "pw", "db")
        listener.settimeout(5)
        done = threading.Thread(target=session.cancel)
        done.start()
        request, _ = listener.accept()
        assert request.recv(16) == struct.pack("!ii", 16, 80877102) + b"\0\0\0\x07SECR"
        request.close()
        done.join(5)
        session.close()
        server.close()


def _server_scram(server: socket.socket, password: str, prove: bool = True) -> bytes:
    """The server's half of SCRAM-SHA-256, on the far end of a socket pair: checks the client's
    proof as Postgres does; returns what it last read."""
    import base64
    import hashlib
    import hmac

    def read() -> tuple[bytes, bytes]:
        head = server.recv(5, socket.MSG_WAITALL)
        return head[:1], server.recv(struct.unpack("!i", head[1:])[0] - 4, socket.MSG_WAITALL)

    startup = server.recv(4, socket.MSG_WAITALL)
    server.recv(struct.unpack("!i", startup)[0] - 4, socket.MSG_WAITALL)
    server.sendall(auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"))
    kind, body = read()
    assert kind == b"p" and body.startswith(b"SCRAM-SHA-256\0")
    client_first = body[len(b"SCRAM-SHA-256\0") + 4 :].decode()
    assert client_first.startswith("n,,n=,r=")
    nonce = client_first.split("r=", 1)[1] + "server"
    salt, rounds = b"salty", 4096
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={rounds}"
    server.sendall(auth(11, server_first.encode()))
    kind, body = read()
    final = body.decode()
    without_proof, proof = final.rsplit(",p=", 1)
    assert without_proof == f"c=biws,r={nonce}"
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    message = f"{client_first[3:]},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
    assert bytes(a ^ b for a, b in zip(client_key, signature, strict=True)) == base64.b64decode(proof)
    if prove:
        server_signature = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), message, "sha256")
        server.sendall(auth(12, b"v=" + base64.b64encode(server_signature)))
    server.sendall(auth(0) + READY)
    return body


def test_a_scram_start_proves_the_password_to_a_server_that_checks_it():
    session, server = scripted(b"")
    checked = threading.Thread(target=_server_scram, args=(server, "s3cret pw"))
    checked.start()
    session._start("app", "s3cret pw", "app")  # returns only once the server proved it too
    checked.join(5)
    session.close()


def test_a_server_that_skips_its_scram_proof_is_refused():
    session, server = scripted(b"")
    threading.Thread(target=_server_scram, args=(server, "pw", False), daemon=True).start()
    with pytest.raises(SessionRefused, match="without proving"):
        session._start("app", "pw", "app")
    session.close()
