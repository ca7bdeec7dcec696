"""The identity service's token signing keys, in .mindscape/identity/ (mode 0600): the RS256 key
set Kratos signs the session-to-JWT tokens with (jwks.json, the first key signs), its public half
the gateway serves to applications (jwks.public.json), and when each rotated-out key leaves the
set (retiring.json). Made once by the service's `prepare`, rotated by `mindscape auth rotate-key`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

PRIVATE = ".mindscape/identity"  # its secrets and signing keys, on the host
JWKS_FILE, PUBLIC_JWKS_FILE = "jwks.json", "jwks.public.json"
RETIRING_FILE = "retiring.json"  # {key id: Unix time after which a rotated-out key leaves the JWKS}


def new_signing_key() -> dict[str, str]:
    """An RS256 key pair as a private JWK (RFC 7517), with a random key id."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.private_numbers()
    public = numbers.public_numbers

    def b64(value: int) -> str:
        import base64

        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": os.urandom(8).hex(),
        "n": b64(public.n),
        "e": b64(public.e),
        "d": b64(numbers.d),
        "p": b64(numbers.p),
        "q": b64(numbers.q),
        "dp": b64(numbers.dmp1),
        "dq": b64(numbers.dmq1),
        "qi": b64(numbers.iqmp),
    }


PUBLIC_MEMBERS = ("kty", "use", "alg", "kid", "n", "e")


def public_jwks(private: Mapping[str, list[Mapping[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Pure: the JWKS an application verifies tokens with: the public members of each key."""
    return {"keys": [{k: key[k] for k in PUBLIC_MEMBERS if k in key} for key in private["keys"]]}


def rotated(
    private: Mapping[str, Any], retiring: Mapping[str, float], new_key: dict[str, str], now: float, keep_for: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Pure: the key set after a rotation: the new key first (the identity service signs with the
    first key of the set), the others kept until `keep_for` seconds from now (the lifetime of the
    tokens they signed, and the leeway), or until their earlier time if already retiring."""
    keys = [new_key, *private["keys"]]
    until = {kid: at for kid, at in retiring.items() if any(k["kid"] == kid for k in keys)}
    for key in private["keys"]:
        until.setdefault(key["kid"], now + keep_for)
    return {"keys": keys}, until


def pruned(
    private: Mapping[str, Any], retiring: Mapping[str, float], now: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Pure: the key set without the retired keys whose time has passed (never the signing key)."""
    keys = [key for n, key in enumerate(private["keys"]) if n == 0 or retiring.get(key["kid"], now + 1) > now]
    kept = {key["kid"] for key in keys}
    return {"keys": keys}, {kid: at for kid, at in retiring.items() if kid in kept}


def write_in_place(path: Any, text: str) -> None:
    """The public JWKS, rewritten in the same file: the gateway's container mounts this very
    file, and a file replaced by rename would stay unseen there until it restarts."""
    from mindscape_ops.adapters.files import cannot_write, write_if_changed

    if not path.is_file():
        write_if_changed(path, text)
        return
    try:
        if path.read_text() != text:
            with path.open("r+") as handle:
                handle.write(text)
                handle.truncate()
    except OSError as exc:
        raise cannot_write(path, exc) from None


def write_keys(folder: Any, private: Mapping[str, Any], retiring: Mapping[str, float]) -> None:
    from mindscape_ops.adapters.files import atomic_write, write_if_changed

    atomic_write(folder / JWKS_FILE, json.dumps(private, indent=2) + "\n", mode=0o600)
    write_if_changed(folder / RETIRING_FILE, json.dumps(retiring, indent=2, sort_keys=True) + "\n", mode=0o600)
    write_in_place(folder / PUBLIC_JWKS_FILE, json.dumps(public_jwks(private), indent=2) + "\n")


def read_keys(folder: Any) -> tuple[dict[str, Any], dict[str, float]]:
    private = json.loads((folder / JWKS_FILE).read_text())
    path = folder / RETIRING_FILE
    retiring = json.loads(path.read_text()) if path.is_file() else {}
    return private, retiring


def rotate_key(project: Project, now: float | None = None) -> tuple[str, list[str]]:
    """A new signing key, first in .mindscape/identity/jwks.json; the old ones stay published until
    the tokens they signed expire. Returns (new key id, key ids still published)."""
    import time

    auth = project.platform.security.auth
    keep_for = auth.jwt.access_token_ttl.seconds + auth.jwt.leeway.seconds
    folder = project.root / PRIVATE
    now = time.time() if now is None else now
    private, retiring = pruned(*read_keys(folder), now)
    private, retiring = rotated(private, retiring, new_signing_key(), now, keep_for)
    write_keys(folder, private, retiring)
    return private["keys"][0]["kid"], [key["kid"] for key in private["keys"]]
