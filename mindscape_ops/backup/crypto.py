"""Encryption at rest: AES-256-GCM in 1 MiB chunks, each with its own random nonce and its
own authentication tag. Each chunk's associated data binds the stream's header, the chunk's
index and whether it is the last one: a wrong key, a flipped bit, chunks reordered, dropped or
cut off at the end are all refused, chunk by chunk, with nothing but memory for one chunk.

Stored layout: MAGIC, then per chunk: 12-byte nonce, 4-byte big-endian ciphertext length,
ciphertext (plaintext + 16-byte tag). The key comes from `backups.encryption` (an environment
variable or a file), never from platform.yaml; only its fingerprint reaches the manifest.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from mindscape_ops.adapters.backup_key import KEY_HINT, load_key, parse_key, read_key_file  # noqa: F401 - used here
from mindscape_ops.backup.streams import rechunk
from mindscape_ops.errors import OperationFailed

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

MAGIC = b"MINDSCAPE-AESGCM-1\n"
CHUNK = 1 << 20
NONCE, TAG, LENGTH = 12, 16, 4


class WrongKey(OperationFailed):
    """Decryption refused: another key, or tampered data."""


class KeyMismatch(WrongKey):
    """The configured key is not the one the backup names (by fingerprint): a configuration
    error, no verdict on the backup."""


def key_for(project: Project) -> bytes | None:
    """The configured key (None: backups are not encrypted)."""
    settings = project.platform.backups.encryption
    if settings is None:
        return None
    return load_key(settings.key_env, settings.key_file, project.root)


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it (a hash of a 256-bit key), to tell keys apart."""
    return hashlib.sha256(b"mindscape backup key\0" + key).hexdigest()[:16]


def _aad(index: int, last: bool) -> bytes:
    return MAGIC + struct.pack(">QB", index, last)


def encrypt(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(key)
    yield MAGIC
    index, held = 0, None
    for chunk in rechunk(chunks, CHUNK):
        if held is not None:
            yield _sealed(aead, index, held, last=False)
            index += 1
        held = chunk
    yield _sealed(aead, index, held or b"", last=True)


def _sealed(aead, index: int, plain: bytes, last: bool) -> bytes:
    nonce = os.urandom(NONCE)
    sealed = aead.encrypt(nonce, plain, _aad(index, last))
    return nonce + struct.pack(">I", len(sealed)) + sealed


def decrypt(chunks: Iterable[bytes], key: bytes, what: str = "the backup") -> Iterator[bytes]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(key)
    buffer = bytearray()
    source = iter(chunks)

    def take(n: int) -> bytes | None:
        while len(buffer) < n:
            more = next(source, None)
            if more is None:
                return None
            buffer.extend(more)
        taken = bytes(buffer[:n])
        del buffer[:n]
        return taken

    if take(len(MAGIC)) != MAGIC:
        raise WrongKey(f"{what} is not an encrypted mindscape backup (bad header)", "use another backup")
    index = 0
    while True:
        head = take(NONCE + LENGTH)
        if head is None:
            raise WrongKey(f"{what} is cut off: its last chunk is missing", "use another backup")
        (length,) = struct.unpack(">I", head[NONCE:])
        if length < TAG or length > CHUNK + TAG:
            raise WrongKey(f"{what}: chunk {index} has an impossible length", "use another backup")
        sealed = take(length)
        if sealed is None:
            raise WrongKey(f"{what} is cut off in chunk {index}", "use another backup")
        plain, last = None, False
        for last in (False, True):
            try:
                plain = aead.decrypt(head[:NONCE], sealed, _aad(index, last))
                break
            except InvalidTag:
                continue
        if plain is None:
            raise WrongKey(
                f"cannot decrypt {what}: wrong key or tampered data (chunk {index}); nothing was touched",
                "configure the key it was made with (backups.encryption); its fingerprint is in the manifest",
            )
        yield plain
        index += 1
        if last:
            if buffer or next(source, None) is not None:
                raise WrongKey(f"{what} has data after its last chunk", "use another backup")
            return
