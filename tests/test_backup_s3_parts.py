"""The S3 upload's pure parts, without a server: the part-size schedule (1 TB within 10,000
parts, every part but the last >= 5 MiB), the stream cut into parts, at most IN_FLIGHT parts
uploading at once, and every failure (a part, the stream, the completion) aborting the upload."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from mindscape_ops.backup import s3
from mindscape_ops.backup.s3 import FIRST_PART, IN_FLIGHT, MAX_PART, MAX_PARTS, MIN_PART, TIB, MiB, part_size, parts
from mindscape_ops.config.backups import S3Store as Settings
from mindscape_ops.errors import OperationFailed


def test_the_schedule_reaches_1_tb_within_10000_parts_from_small_parts():
    sizes = [part_size(n) for n in range(MAX_PARTS)]
    assert sum(sizes) >= 4 * TIB  # several TB: 5 MiB x 1000 x (1 + 2 + ... + 512)
    assert sizes[0] == sizes[999] == FIRST_PART == 5 * MiB and sizes[1000] == 10 * MiB and sizes[2000] == 20 * MiB
    assert all(MIN_PART <= size <= MAX_PART for size in sizes) and sizes == sorted(sizes)
    reached = next(n for n in range(MAX_PARTS) if sum(sizes[: n + 1]) >= TIB)
    assert reached < 8000 and sizes[reached] == 640 * MiB  # 1 TB in ~7,600 parts, none above 640 MiB
    assert sum(sizes[:1000]) == 5000 * MiB  # backups up to ~5 GB never hold more than 5 MiB parts


def test_a_large_estimate_sets_a_floor_so_a_known_big_backup_does_not_grow_huge_parts():
    assert part_size(0, 1 << 30) == FIRST_PART  # 1 GiB: the schedule alone
    assert part_size(0, TIB) == 210 * MiB  # twice 1 TiB in 10,000 parts
    assert sum(part_size(n, TIB) for n in range(MAX_PARTS)) >= 2 * TIB
    assert part_size(0, 100 * TIB) == MAX_PART  # never beyond S3's 5 GiB per part


def test_the_stream_is_cut_into_parts_of_the_schedule(monkeypatch):
    monkeypatch.setattr(s3, "FIRST_PART", 10)
    monkeypatch.setattr(s3, "GROW_EVERY", 2)
    data = bytes(range(256)) * 2
    cut = list(parts(data[i : i + 7] for i in range(0, len(data), 7)))
    assert b"".join(cut) == data
    assert [len(p) for p in cut[:7]] == [10, 10, 20, 20, 40, 40, 80] and 0 < len(cut[-1]) <= 160
    assert list(parts([])) == [b""]  # an empty stream is one empty object


class FakeClient:
    """Records calls; fails where told; tracks how many parts upload at once."""

    def __init__(self, fail_part: int | None = None, fail_complete: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail_part, self.fail_complete = fail_part, fail_complete
        self.running = self.most = 0
        self.lock = threading.Lock()

    def head_bucket(self, **kw):
        return {}

    def put_object(self, **kw):
        self.calls.append(("put", kw["Key"], len(kw["Body"]), kw.get("StorageClass"), kw.get("ServerSideEncryption")))

    def create_multipart_upload(self, **kw):
        self.calls.append(("create", kw["Key"], kw.get("StorageClass"), kw.get("ServerSideEncryption")))
        return {"UploadId": "up-1"}

    def upload_part(self, **kw):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
        if kw["PartNumber"] == self.fail_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")
        self.calls.append(("part", kw["PartNumber"], len(kw["Body"])))
        return {"ETag": f'"e{kw["PartNumber"]}"'}

    def complete_multipart_upload(self, **kw):
        if self.fail_complete:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "CompleteMultipartUpload")
        self.calls.append(("complete", [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]]))

    def abort_multipart_upload(self, **kw):
        self.calls.append(("abort", kw["UploadId"]))


def store(client: FakeClient, **settings) -> s3.S3Store:
    made = s3.S3Store(Settings(bucket="bucket", prefix="p/", **settings))
    made._clients = {"quick": client, "patient": client}
    return made


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(s3, "FIRST_PART", 1000)
    return [b"x" * 300 for _ in range(40)]  # 12,000 bytes: 12 parts of 1000


def test_parts_upload_at_most_in_flight_at_once_and_complete_in_order(small_parts):
    client = FakeClient()
    store(client, storage_class="STANDARD_IA", sse="AES256").upload("a.backup", small_parts)
    assert client.calls[0] == ("create", "p/a.backup", "STANDARD_IA", "AES256")
    assert sorted(c[1] for c in client.calls if c[0] == "part") == list(range(1, 13))
    assert client.calls[-1] == ("complete", list(range(1, 13)))
    assert 1 <= client.most <= IN_FLIGHT


def test_a_backup_smaller_than_a_part_is_one_put(small_parts):
    client = FakeClient()
    store(client, sse="aws:kms", kms_key_id="alias/backups").upload("s.backup", small_parts[:2])
    assert client.calls == [("put", "p/s.backup", 600, None, "aws:kms")]


@pytest.mark.parametrize("where", ["a part", "the stream", "the completion"])
def test_any_failure_aborts_the_multipart_upload(small_parts, where):
    client = FakeClient(fail_part=5 if where == "a part" else None, fail_complete=where == "the completion")

    def chunks():
        yield from small_parts[:30]
        if where == "the stream":
            raise ConnectionResetError("the dump's connection was cut")
        yield from small_parts[30:]

    expected = ConnectionResetError if where == "the stream" else OperationFailed
    with pytest.raises(expected):
        store(client).upload("f.backup", chunks())
    assert client.calls[-1] == ("abort", "up-1")
    assert not any(call[0] == "complete" for call in client.calls)
    assert client.running == 0  # no part still uploading after the abort
