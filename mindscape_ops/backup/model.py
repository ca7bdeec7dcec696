"""What a backup is on the store: its id, its objects' names, its manifest, its verification."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mindscape_ops.errors import UsageError

# <UTC time>-<service>-<4 hex>: sorts by time, names its service, unique within a second.
ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([a-z_]+)-([0-9a-f]{4})$")
DATA, MANIFEST, VERIFIED = ".backup", ".manifest.json", ".verify.json"


def new_id(service: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{service}-{secrets.token_hex(2)}"


def check_id(backup_id: str) -> str:
    if not ID_RE.match(backup_id):
        raise UsageError(
            f"{backup_id!r} is not a backup id (like 20260102T030000Z-postgres-1a2b)",
            "`mindscape backup list` shows the ids",
        )
    return backup_id


def id_of(name: str) -> str | None:
    """The backup id an object name belongs to (None: not one of ours)."""
    base = name.rsplit("/", 1)[-1]
    head = base.split(".", 1)[0]
    return head if ID_RE.match(head) else None


@dataclass(frozen=True)
class Manifest:
    id: str
    service: str
    project: str
    created_at: str  # ISO 8601, UTC
    size: int  # bytes stored
    sha256: str  # of the bytes stored (the ciphertext when encrypted)
    format: str  # pg_dump-custom, rdb
    server_version: str
    source: str  # the container, or DATABASE_URL without its password
    encrypted: bool = False
    key_fingerprint: str | None = None  # which key, never the key
    plain_size: int = 0  # bytes before encryption
    tables: dict[str, int] | None = None  # postgres: rows per table, from the dump's own snapshot
    duration_s: float = 0.0
    tool: str = ""

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


@dataclass(frozen=True)
class Verification:
    """The outcome of `verify`, kept beside the manifest (which never changes once written)."""

    id: str
    verified_at: str
    ok: bool
    detail: str
    tables: dict[str, int] | None = None
    mismatches: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Verification:
        raw = json.loads(data)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class Listed:
    """A backup as `list` shows it."""

    manifest: Manifest
    verification: Verification | None

    def as_json(self, now: datetime) -> dict[str, Any]:
        m, v = self.manifest, self.verification
        return {
            "id": m.id,
            "service": m.service,
            "created_at": m.created_at,
            "age_s": int((now - m.created).total_seconds()),
            "size": m.size,
            "sha256": m.sha256,
            "format": m.format,
            "encrypted": m.encrypted,
            "verified": bool(v and v.ok),
            "verification": None if v is None else {"ok": v.ok, "at": v.verified_at, "detail": v.detail},
        }
