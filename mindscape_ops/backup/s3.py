"""Backups in an S3 bucket (`backups.s3`), through boto3's transfer manager.

Credentials come from the standard AWS chain (environment, profile, instance role), never from
platform.yaml. A backup is one multipart upload: it completes whole or is aborted (s3transfer
aborts it when the stream or a part fails); one cut off by a killed process stays invisible
(an incomplete multipart upload is no object) and `prune` aborts it once stale.

Part size: S3 allows 10,000 parts, and a streamed dump's size is unknown up front. The part
size comes from the service's own size estimate (the database's size, Redis' memory), doubled
for safety: max(5 MiB, ceil(2 * estimate / 10,000)), rounded up to a MiB; with no estimate,
105 MiB (1 TiB in 10,000 parts). Two parts are in memory at once (one read while one uploads):
a database of up to 25 GB costs ~10 MiB beyond boto's own ~25 MB; a 1 TB one ~2 x 210 MiB,
which is the price of the 10,000-part limit on a stream of unknown size.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mindscape_ops.backup.streams import Reader
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed

if TYPE_CHECKING:
    from mindscape_ops.config.models import S3Store as S3Settings

MiB = 1 << 20
MAX_PARTS = 10_000
MIN_PART = 5 * MiB
IN_FLIGHT = 2
TIB = 1 << 40


def part_size(estimate: int | None) -> int:
    """Big enough that twice the estimate (1 TiB without one) fits in 10,000 parts."""
    wanted = 2 * estimate if estimate else TIB
    return max(MIN_PART, math.ceil(wanted / MAX_PARTS / MiB) * MiB)


class S3Store:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self.where = f"s3://{settings.bucket}/{settings.prefix}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
            endpoint = str(self.settings.endpoint_url) if self.settings.endpoint_url else None
            with self._errors("connecting"):
                self._client = boto3.session.Session().client(
                    "s3", region_name=self.settings.region, endpoint_url=endpoint, config=config
                )
        return self._client

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """boto's failures as one line with the remedy and the contract's exit code."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        endpoint = self.settings.endpoint_url or f"AWS ({self.settings.region})"
        try:
            yield
        except (EndpointConnectionError, BotoConnectionError) as exc:
            raise EnvironmentUnusable(
                f"{doing} {self.where}: cannot reach the S3 endpoint {endpoint} ({type(exc).__name__})",
                "check the network and backups.s3.endpoint_url/region, then run again",
            ) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise EnvironmentUnusable(
                f"{doing} {self.where}: no AWS credentials found",
                "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); never in platform.yaml",
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchBucket", "404") and doing != "reading":
                raise EnvironmentUnusable(
                    f"{doing} {self.where}: bucket {self.bucket} does not exist at {endpoint}",
                    f"create it (`aws s3 mb s3://{self.bucket}`) or fix backups.s3.bucket",
                ) from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "ExpiredToken"):
                raise EnvironmentUnusable(
                    f"{doing} {self.where}: access denied ({code})",
                    "check the AWS credentials in the environment and the bucket's policy",
                ) from None
            raise OperationFailed(f"{doing} {self.where}: S3 answered {code or exc}") from None
        except BotoCoreError as exc:
            raise OperationFailed(f"{doing} {self.where}: {exc}") from None

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def check(self) -> None:
        """The bucket exists and answers (before a dump starts, not after)."""
        with self._errors("opening"):
            self.client.head_bucket(Bucket=self.bucket)

    def upload(self, name: str, chunks: Iterable[bytes], estimate: int | None = None) -> None:
        from boto3.s3.transfer import TransferConfig

        part = part_size(estimate)
        config = TransferConfig(
            multipart_threshold=part,
            multipart_chunksize=part,
            max_concurrency=IN_FLIGHT,
        )
        config.max_in_memory_upload_chunks = IN_FLIGHT  # s3transfer's, not in boto3's signature
        self.check()
        with self._errors("uploading to"):
            self.client.upload_fileobj(
                io.BufferedReader(Reader(chunks), MiB), self.bucket, self._key(name), Config=config
            )

    def write_small(self, name: str, data: bytes) -> None:
        with self._errors("writing to"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def read(self, name: str) -> Iterator[bytes]:
        with self._errors("reading"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            try:
                yield from body.iter_chunks(MiB)
            finally:
                body.close()

    def read_small(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors("reading"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise

    def names(self) -> dict[str, float]:
        found = {}
        with self._errors("listing"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    found[item["Key"][len(self.prefix) :]] = item["LastModified"].timestamp()
        return found

    def delete(self, name: str) -> None:
        with self._errors("deleting from"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def abort_stale_uploads(self, older_than: timedelta) -> list[str]:
        """Abort multipart uploads left by killed backups; returns their object names."""
        cutoff = datetime.now(UTC) - older_than
        aborted = []
        with self._errors("listing uploads in"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            ):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted.append(upload["Key"][len(self.prefix) :])
        return aborted
