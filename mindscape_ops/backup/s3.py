"""Backups in an S3 bucket (`backups.s3`): our own multipart upload, parts growing as it goes.

Credentials come from the standard AWS chain (environment, profile, instance role), never from
platform.yaml. A backup is one multipart upload: it completes whole or is aborted (any failure,
of the stream or of a part, aborts it); one cut off by a killed process stays invisible (an
incomplete multipart upload is no object) and `prune` aborts it once stale. A backup smaller
than one part is a single PUT.

Part size: S3 allows 10,000 parts, and a streamed dump's size is unknown up front. A part is
held in memory while it uploads, so a fixed size big enough for 1 TB (105 MiB) would cost
~200 MB for every backup. Instead parts grow as the upload proceeds: 5 MiB (S3's minimum) for
the first 1000, doubling every 1000 (capacity ~4.9 TiB in 10,000 parts; 1 TB is reached in part
~7,600, in 640 MiB parts).
The service's own size estimate (the database's size, Redis' memory), when it says the backup
is big, sets a floor: twice the estimate fits in 10,000 equal parts, so a known 1 TB database
uploads in ~210 MiB parts rather than growing to 1 GiB ones. One part uploads while the next
fills (IN_FLIGHT): memory is (IN_FLIGHT + 1) parts, 10 MiB for backups up to ~5 GB. One upload
at a time keeps up with pg_dump -Fc's output; the whole process must stay under 100 MB and holds
~88 MB before any part (pydantic, the Docker SDK, psycopg and its connection, botocore's S3
model): 8 MiB parts or a second one in flight broke that budget (measured 105-127 MB).

Timeouts: what only asks (list, head, a manifest) gives up within ~10 s on an endpoint that
hangs, as `check` does (2 attempts of 4 s); moving a backup's bytes keeps 60 s and 4 attempts,
as a large part or the completion of a large upload may take S3 that long to answer.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mindscape_ops.backup.stores import ReadFailed
from mindscape_ops.errors import EnvironmentUnusable, OperationFailed

if TYPE_CHECKING:
    from mindscape_ops.config.backups import S3Store as S3Settings

MiB = 1 << 20
MAX_PARTS = 10_000
MIN_PART = 5 * MiB  # S3's minimum for every part but the last
MAX_PART = 5 << 30  # S3's maximum part
FIRST_PART = MIN_PART
GROW_EVERY = 1000
IN_FLIGHT = 1
TIB = 1 << 40
QUICK = {"connect_timeout": 3, "read_timeout": 4, "retries": {"total_max_attempts": 2, "mode": "standard"}}
PATIENT = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


def part_size(number: int, estimate: int | None = None) -> int:
    """The size of part `number` (counted from 0): FIRST_PART doubling every GROW_EVERY parts,
    at least what fits twice the estimate in MAX_PARTS equal parts, at most S3's maximum."""
    grown = FIRST_PART << min(number // GROW_EVERY, 9)
    floor = math.ceil(2 * estimate / MAX_PARTS / MiB) * MiB if estimate else 0
    return min(MAX_PART, max(grown, floor))


def parts(chunks: Iterable[bytes], estimate: int | None = None) -> Iterator[bytearray]:
    """The stream cut into parts of `part_size` (the last one shorter, never empty unless the
    stream is). Each part is allocated once at its size and filled in place: no copy of a whole
    part, and only the part being filled is held here (the consumer owns the ones yielded)."""
    number = 0
    size = part_size(0, estimate)
    part, filled = bytearray(size), 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            n = min(len(view), size - filled)
            part[filled : filled + n] = view[:n]
            filled, view = filled + n, view[n:]
            if filled == size:
                yield part
                number += 1
                size = part_size(number, estimate)
                part, filled = bytearray(size), 0
    if filled or number == 0:
        del part[filled:]
        yield part


class PartBody(io.RawIOBase):
    """A part as a seekable file over its buffer. Given a bytearray itself, botocore copies it
    whole (into a BytesIO, for the checksum trailer it adds over HTTPS); read as a file, it is
    read in blocks."""

    def __init__(self, data: bytearray) -> None:
        self._view, self._pos = memoryview(data), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target) -> int:  # type: ignore[override]
        n = max(0, min(len(target), len(self._view) - self._pos))
        target[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._view)


class S3Store:
    """The objects directly under `prefix` (default: the settings' own; deeper keys belong to
    other spaces and are never listed)."""

    def __init__(self, settings: S3Settings, prefix: str | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix if prefix is None else prefix
        self.where = f"s3://{settings.bucket}/{self.prefix}"
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    @property
    def client(self) -> Any:
        """For what only asks: gives up on a hanging endpoint within ~10 s."""
        return self._client_with(QUICK)

    @property
    def data_client(self) -> Any:
        """For a backup's bytes: waits longer and retries more."""
        return self._client_with(PATIENT)

    def _client_with(self, settings: dict[str, Any]) -> Any:
        kind = "quick" if settings is QUICK else "patient"
        if kind not in self._clients:
            import botocore.session  # boto3's session is this one plus resources we do not use (3 MB)
            from botocore.config import Config

            endpoint = str(self.settings.endpoint_url) if self.settings.endpoint_url else None
            with self._errors("connecting"):
                self._session = self._session or botocore.session.get_session()
                self._clients[kind] = self._session.create_client(
                    "s3", region_name=self.settings.region, endpoint_url=endpoint, config=Config(**settings)
                )
        return self._clients[kind]

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """boto's failures as one line with the remedy and the contract's exit code."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        endpoint = self.settings.endpoint_url or f"AWS ({self.settings.region})"
        try:
            yield
        except (EndpointConnectionError, BotoConnectionError, HTTPClientError) as exc:
            # HTTPClientError: the endpoint took the connection but closed it or never answered
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
            failed = ReadFailed if doing == "reading" else OperationFailed
            raise failed(f"{doing} {self.where}: S3 answered {code or exc}") from None
        except BotoCoreError as exc:
            # reading: a stream cut midway (ResponseStreamingError, IncompleteReadError) is no verdict on the backup
            failed = ReadFailed if doing == "reading" else OperationFailed
            raise failed(f"{doing} {self.where}: {exc}") from None

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def check(self) -> None:
        """The bucket exists and answers (before a dump starts, not after)."""
        with self._errors("opening"):
            self.client.head_bucket(Bucket=self.bucket)

    def upload(self, name: str, chunks: Iterable[bytes], estimate: int | None = None) -> None:
        """The backup's data: one PUT when it fits in a part, else one multipart upload,
        aborted on any failure (of the stream, of a part, or of its completion)."""
        self.check()
        key = self._key(name)
        extra = self.settings.upload_args()
        if self.settings.storage_class:
            extra["StorageClass"] = self.settings.storage_class
        stream = parts(chunks, estimate)
        head = [next(stream), next(stream, None)]  # a list: each part leaves it when it goes
        if head[1] is None:
            with self._errors("uploading to"):
                self.data_client.put_object(Bucket=self.bucket, Key=key, Body=head.pop(0), **extra)
            return
        with self._errors("uploading to"):
            upload_id = self.data_client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)["UploadId"]
        try:
            done = self._upload_parts(key, upload_id, _chain(head, stream))
            with self._errors("uploading to"):
                self.data_client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self.data_client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _upload_parts(self, key: str, upload_id: str, bodies: Iterable[bytes]) -> list[dict[str, Any]]:
        """Upload the parts, at most IN_FLIGHT at once (the next one fills meanwhile); on any
        failure the parts not started are cancelled and the running ones waited for."""
        done: list[dict[str, Any]] = []
        pending: set[Future] = set()

        def one(number: int, body: bytearray) -> dict[str, Any]:
            with self._errors("uploading to"):
                answer = self.data_client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=PartBody(body)
                )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        def settle(futures: set[Future]) -> None:
            for future in futures:
                pending.discard(future)
                done.append(future.result())  # raises a part's failure

        with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="s3-part") as pool:
            try:
                for number, body in enumerate(bodies, 1):
                    if number > MAX_PARTS:
                        raise OperationFailed(
                            f"uploading to {self.where}: the backup needs more than {MAX_PARTS} parts"
                        )
                    while len(pending) >= IN_FLIGHT:
                        settle(wait(pending, return_when=FIRST_COMPLETED).done)
                    pending.add(pool.submit(one, number, body))
                    del body
                settle(wait(pending).done)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return sorted(done, key=lambda part: part["PartNumber"])

    def write_small(self, name: str, data: bytes) -> None:
        with self._errors("writing to"):
            self.data_client.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=data, **self.settings.upload_args()
            )

    def read(self, name: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        with self._errors("reading"):
            try:
                body = self.data_client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise FileNotFoundError(f"{self.where}{name}") from None  # the backup's own fault
                raise
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
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    found[item["Key"][len(self.prefix) :]] = item["LastModified"].timestamp()
        return found

    def delete(self, name: str) -> None:
        with self._errors("deleting from"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def stale_uploads(self, older_than: timedelta) -> list[tuple[str, str]]:
        """Multipart uploads in this space left by killed backups: (object name, upload id)."""
        cutoff = datetime.now(UTC) - older_than
        stale = []
        with self._errors("listing uploads in"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            ):
                for upload in page.get("Uploads", []):
                    name = upload["Key"][len(self.prefix) :]
                    if "/" not in name and upload["Initiated"] < cutoff:
                        stale.append((name, upload["UploadId"]))
        return stale

    def abort_stale_uploads(self, older_than: timedelta, dry_run: bool = False) -> list[str]:
        """Abort (with `dry_run`: only name) the multipart uploads killed backups left; their object names."""
        stale = self.stale_uploads(older_than)
        if not dry_run:
            with self._errors("aborting uploads in"):
                for name, upload_id in stale:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(name), UploadId=upload_id)
        return [name for name, _ in stale]


def _chain(head: list, rest: Iterator[bytes]) -> Iterator[bytes]:
    while head:
        yield head.pop(0)
    yield from rest
