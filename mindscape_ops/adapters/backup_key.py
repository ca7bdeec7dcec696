"""The backup key (backups.encryption): 32 bytes from an environment variable or a file, never
from platform.yaml. Read here, below the services, so the pgBackRest repository's cipher pass
(services/pitr.py) and the dumps' encryption (backup/crypto.py) come from the same key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from mindscape_ops.errors import EnvironmentUnusable, UsageError

KEY_HINT = "the key is 32 bytes written as 64 hex characters or base64: make one with `openssl rand -hex 32`"


def load_key(key_env: str | None, key_file: str | None, root: Path) -> bytes:
    """The key named by `key_env` (a variable) or `key_file` (a path, relative to `root`)."""
    if key_env is not None:
        text = os.environ.get(key_env)
        if not text:
            raise EnvironmentUnusable(
                f"backups.encryption.key_env: ${key_env} is not set", f"export {key_env}=...; {KEY_HINT}"
            )
        where = f"${key_env}"
    else:
        path = Path(key_file or "")
        path = path if path.is_absolute() else root / path
        text = read_key_file(path)
        where = str(path)
    return parse_key(text, where)


def read_key_file(path: Path) -> str:
    """The key file's text: refused, as ssh refuses a private key, when others may read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise EnvironmentUnusable(
            f"backups.encryption.key_file: cannot read {path}: {exc.strerror or exc}",
            f"put the key there (readable by this user only); {KEY_HINT}",
        ) from None
    if mode & 0o077:
        raise EnvironmentUnusable(
            f"backups.encryption.key_file: {path} is readable by others (mode {mode & 0o777:04o}): "
            "refusing a key anyone on this machine may have copied",
            f"chmod 600 {path}",
        )
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(f"the backup key in {path} is not text (a binary file?)", KEY_HINT) from None


def parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    for decode in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise UsageError(f"the backup key in {where} is not 32 bytes", KEY_HINT)


def derived_pass(key: bytes, purpose: str) -> str:
    """A pass for another tool (pgBackRest's repo1-cipher-pass), derived from the key one way:
    the key itself never leaves this process, and one purpose's pass says nothing of another's."""
    return hmac.new(key, f"mindscape {purpose}".encode(), hashlib.sha256).hexdigest()
