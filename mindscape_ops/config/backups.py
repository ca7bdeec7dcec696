"""platform.yaml's `backups` section: what is backed up, when, how long it is kept, where it goes.

Secrets never live here: S3 credentials come from the AWS chain, the encryption key from an
environment variable or a file, a KMS key only by its id.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from mindscape_ops.services.registry import SERVICES
from mindscape_ops.settings.base import HttpUrl, Strict
from mindscape_ops.settings.types import Cron, Duration, EnvName, RelativePath, matching

# The services whose volume holds data worth backing up.
DataService = Literal[tuple(service.name for service in SERVICES if service.holds_data)]  # type: ignore[valid-type]

# Classes a backup can be read back from at once (GLACIER and DEEP_ARCHIVE need a thaw first:
# `restore` and `verify` could not read them).
StorageClass = Literal["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"]


class Retention(Strict):
    keep_last: int = Field(7, ge=1, le=10000)
    max_age: Duration | None = Duration("30d")
    # The newest backup of each of the last N days / ISO weeks / months (UTC) that have one.
    keep_daily: int = Field(0, ge=0, le=10000)
    keep_weekly: int = Field(0, ge=0, le=10000)
    keep_monthly: int = Field(0, ge=0, le=10000)


class LocalStore(Strict):
    dir: RelativePath = "backups"


class S3Store(Strict):
    """Credentials come from the usual AWS environment variables, never from this file."""

    bucket: Annotated[str, matching(re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), "an S3 bucket name")]
    prefix: Annotated[str, matching(re.compile(r"^[A-Za-z0-9._/-]{0,200}$"), "a key prefix")] = "mindscape/"
    region: Annotated[str, matching(re.compile(r"^[a-z0-9-]{1,40}$"), "a region like eu-west-1")] = "us-east-1"
    endpoint_url: HttpUrl | None = None
    storage_class: StorageClass | None = None
    sse: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: (
        Annotated[str, matching(re.compile(r"^[A-Za-z0-9:/_.-]{1,2048}$"), "a KMS key id, ARN or alias/NAME")] | None
    ) = None

    @model_validator(mode="after")
    def _kms_key_with_kms(self) -> S3Store:
        if self.kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError("kms_key_id is only used with sse: aws:kms")
        return self

    def upload_args(self) -> dict[str, str]:
        """The SSE arguments of every object written (the data's storage class aside)."""
        args = {"ServerSideEncryption": self.sse} if self.sse else {}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


class Encryption(Strict):
    """AES-256-GCM at rest. The key (32 bytes: 64 hex characters, or base64) comes from an
    environment variable or a file; never from this file."""

    key_env: EnvName | None = None
    key_file: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one_source(self) -> Encryption:
        if (self.key_env is None) == (self.key_file is None):
            raise ValueError("set exactly one of key_env (a variable's name) and key_file (a path)")
        return self


class Pitr(Strict):
    """Point-in-time recovery: Postgres archives its write-ahead log through pgBackRest into a
    repository of its own (`prefix` under backups.local.dir, or under backups.s3's prefix), beside
    full/differential physical backups. Encrypted (aes-256-cbc) when backups.encryption is set,
    with a pass derived from that key. Turning it on restarts Postgres (archive_mode)."""

    enabled: bool = False
    repository: Literal["local", "s3"] = "local"
    prefix: Annotated[str, matching(re.compile(r"^[A-Za-z0-9._-]{1,100}$"), "a folder name")] = "pitr"
    full_schedule: Cron = "0 2 * * 0"
    diff_schedule: Cron | None = "0 2 * * 1-6"
    # Full backups kept (pgBackRest's repo1-retention-full): how far back a restore can go.
    keep_full: int = Field(2, ge=1, le=9999)
    compression: Literal["none", "gz", "lz4", "zst", "bz2"] = "zst"
    # A WAL segment is archived at least this often, even when little is written (the RPO).
    archive_timeout: Duration = Duration("60s")
    # Data directories a point-in-time restore replaced that `backup prune` keeps (newest first).
    keep_replaced: int = Field(1, ge=0, le=100)

    @model_validator(mode="after")
    def _timeout_in_range(self) -> Pitr:
        if not 1 <= self.archive_timeout.seconds <= 86400:
            raise ValueError("archive_timeout: between 1s and 1d (Postgres' archive_timeout, in seconds)")
        return self


class Backups(Strict):
    enabled: bool = True
    schedule: Cron = "0 3 * * *"
    # Default: every enabled service that holds data (postgres, redis).
    services: list[DataService] | None = None
    retention: Retention = Retention()
    local: LocalStore = LocalStore()
    s3: S3Store | None = None
    encryption: Encryption | None = None
    pitr: Pitr = Pitr()

    @model_validator(mode="after")
    def _pitr_repository_exists(self) -> Backups:
        if self.pitr.enabled and self.pitr.repository == "s3" and self.s3 is None:
            raise ValueError("pitr.repository: s3 needs backups.s3 (bucket, region...); set it or use local")
        return self
