"""Encryption at rest, fast: chunked AES-256-GCM round trips at every boundary, and every kind
of wrong key or tampering refused."""

from __future__ import annotations

import os

import pytest

from mindscape_ops.backup.crypto import CHUNK, MAGIC, WrongKey, decrypt, encrypt, fingerprint, parse_key
from mindscape_ops.errors import UsageError

KEY, OTHER = os.urandom(32), os.urandom(32)


def pieces(data: bytes, size: int = 100_000):
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345])
def test_round_trip_at_every_chunk_boundary(size):
    data = os.urandom(size)
    sealed = b"".join(encrypt(pieces(data), KEY))
    assert sealed.startswith(MAGIC) and (size < 64 or data[:64] not in sealed)
    assert b"".join(decrypt(pieces(sealed, 77_777), KEY)) == data


def sealed_chunks(data: bytes) -> tuple[bytes, list[bytes]]:
    parts = list(encrypt([data], KEY))
    return parts[0], parts[1:]


def test_a_wrong_key_is_refused_on_the_first_chunk():
    sealed = b"".join(encrypt([os.urandom(3 * CHUNK)], KEY))
    with pytest.raises(WrongKey, match="wrong key or tampered data \\(chunk 0\\)"):
        next(iter(decrypt([sealed], OTHER)))


@pytest.mark.parametrize("damage", ["flip", "drop_last", "drop_middle", "swap", "append", "header"])
def test_tampering_is_refused(damage):
    head, chunks = sealed_chunks(os.urandom(3 * CHUNK + 10))
    if damage == "flip":
        middle = bytearray(chunks[1])
        middle[500] ^= 1
        chunks[1] = bytes(middle)
    elif damage == "drop_last":
        chunks = chunks[:-1]
    elif damage == "drop_middle":
        del chunks[1]
    elif damage == "swap":
        chunks[0], chunks[1] = chunks[1], chunks[0]
    elif damage == "append":
        chunks.append(chunks[0])
    else:
        head = head.replace(b"1", b"2")
    with pytest.raises(WrongKey):
        for _ in decrypt([head, *chunks], KEY):
            pass


def test_keys_are_hex_or_base64_of_32_bytes_and_named_by_fingerprint_only():
    import base64

    assert parse_key(KEY.hex() + "\n", "x") == KEY
    assert parse_key(base64.b64encode(KEY).decode(), "x") == KEY
    for bad in ("", "abc", KEY.hex()[:-2], base64.b64encode(os.urandom(16)).decode()):
        with pytest.raises(UsageError, match="not 32 bytes"):
            parse_key(bad, "$K")
    assert fingerprint(KEY) != fingerprint(OTHER) and KEY.hex()[:16] not in fingerprint(KEY)
