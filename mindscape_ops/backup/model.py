"""What a backup is on the store: its id, its objects' names, its manifest, its verification.

Manifests and verification records are read back from a folder or a bucket anyone with access
may have edited: they are validated like user input (strict types, an aware `created_at`, the id
of the file they are in), and one that fails is damaged: warned about and skipped, never trusted.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass as checked

from mindscape_ops.errors import UsageError

# <UTC time>-<service>-<4 hex>: sorts by time, names its service, unique within a second.
ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([a-z_]+)-([0-9a-f]{4})$")
DATA, MANIFEST, VERIFIED = ".backup", ".manifest.json", ".verify.json"
_STRICT = ConfigDict(strict=True)

BackupId = Annotated[str, Field(pattern=ID_RE.pattern)]
ProjectName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Count = Annotated[int, Field(ge=0)]


class Damaged(ValueError):
    """A manifest or verification record that cannot be trusted; says what is wrong with it."""


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


def manifest_id(name: str) -> str | None:
    """The id whose manifest `name` is: exactly `<id>.manifest.json` (a copy named otherwise is not one)."""
    backup_id = id_of(name)
    return backup_id if backup_id is not None and name == backup_id + MANIFEST else None


def _aware(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError("a time without its UTC offset")
    return value


def _parsed(adapter: TypeAdapter, data: bytes, expected_id: str) -> Any:
    """`data` validated by `adapter`, its id that of its file; else Damaged saying why."""
    try:
        item = adapter.validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Damaged(f"{where + ': ' if where else ''}{first['msg']}") from None
    if item.id != expected_id:
        raise Damaged(f"it names backup {item.id!r}, not {expected_id}")
    return item


@checked(frozen=True, config=_STRICT)
class Manifest:
    id: BackupId
    service: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]
    project: ProjectName
    created_at: str  # ISO 8601, UTC
    size: Count  # bytes stored
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # of the bytes stored (the ciphertext when encrypted)
    format: str  # pg_dump-custom, rdb
    server_version: str
    source: str  # the container, or DATABASE_URL without its password
    encrypted: bool = False
    key_fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None  # which key, never the key
    plain_size: Count = 0  # bytes before encryption
    tables: dict[str, Count] | None = None  # postgres: rows per table, from the dump's own snapshot
    duration_s: Annotated[float, Field(ge=0)] = 0.0
    tool: str = ""

    _created_at = field_validator("created_at")(_aware)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, expected_id: str) -> Manifest:
        """The manifest in file `<expected_id>.manifest.json` (unknown fields ignored); Damaged when it is not one."""
        return _parsed(_MANIFEST, data, expected_id)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


@checked(frozen=True, config=_STRICT)
class Verification:
    """The outcome of `verify`, kept beside the manifest (which never changes once written)."""

    id: BackupId
    verified_at: str
    ok: bool
    detail: str
    tables: dict[str, Count] | None = None
    mismatches: list[str] = field(default_factory=list)

    _verified_at = field_validator("verified_at")(_aware)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, expected_id: str) -> Verification:
        return _parsed(_VERIFICATION, data, expected_id)


_MANIFEST = TypeAdapter(Manifest)
_VERIFICATION = TypeAdapter(Verification)


@dataclass(frozen=True)
class Listed:
    """A backup as `list` shows it, and the store it is in (the project's own space, or the
    shared space older versions wrote to)."""

    manifest: Manifest
    verification: Verification | None
    store: Any = field(default=None, compare=False, repr=False)

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
