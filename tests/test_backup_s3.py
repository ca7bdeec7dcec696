"""Backups in S3, against moto's server on 127.0.0.1 (spoken to by boto3 as to AWS): multipart
uploads that complete whole or abort, the endpoint down (exit 3), a missing bucket, and a
postgres round trip through the bucket with identical rows."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254: only 127.0.0.1 is contacted
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    port = free_port()
    # beside the running interpreter: the suite may run from any virtualenv, not only ./.venv
    server = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return AWS_ENV


def make_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)


def store_for(endpoint: str, bucket: str, **settings):
    from mindscape_ops.backup.s3 import S3Store
    from mindscape_ops.config.backups import S3Store as Settings

    return S3Store(Settings(bucket=bucket, prefix="t/", endpoint_url=endpoint, **settings))


def test_a_multipart_upload_completes_whole_and_a_failed_one_is_aborted(s3_endpoint, aws_env):
    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    store = store_for(s3_endpoint, bucket)
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB
    store.upload("whole.backup", (block for _ in range(22)))  # 22 MiB: parts of 5, 5, 5, 5 and 2 MiB
    uploaded = store.client.head_object(Bucket=bucket, Key="t/whole.backup", PartNumber=1)
    assert uploaded["PartsCount"] == 5 and uploaded["ContentLength"] == 5 << 20
    assert hashlib.sha256(b"".join(store.read("whole.backup"))).digest() == hashlib.sha256(block * 22).digest()

    def cut_off():
        yield from (block for _ in range(18))
        raise ConnectionResetError("the dump's connection was cut")

    with pytest.raises(ConnectionResetError):
        store.upload("cut.backup", cut_off())
    assert set(store.names()) == {"whole.backup"}
    assert store.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert store.read_small("absent.json") is None


@pytest.mark.parametrize(
    "settings",
    [
        {"storage_class": "STANDARD_IA", "sse": "AES256"},
        {"storage_class": "GLACIER_IR", "sse": "aws:kms", "kms_key_id": "alias/bk"},
    ],
)
def test_storage_class_and_sse_reach_every_object(s3_endpoint, aws_env, settings):
    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    store = store_for(s3_endpoint, bucket, **settings)
    store.upload("big.backup", (b"x" * (1 << 20) for _ in range(20)))  # multipart
    store.upload("small.backup", [b"tiny"])  # one PUT
    store.write_small("one.manifest.json", b"{}")
    for name, data in (("big.backup", True), ("small.backup", True), ("one.manifest.json", False)):
        head = store.client.head_object(Bucket=bucket, Key=f"t/{name}")
        assert head.get("StorageClass") == (settings["storage_class"] if data else None), name  # STANDARD: not shown
        assert head["ServerSideEncryption"] == settings["sse"], name
        assert head.get("SSEKMSKeyId") == settings.get("kms_key_id"), name


def test_endpoint_down_and_bucket_missing_are_one_line_with_exit_3(s3_endpoint, tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    for endpoint, bucket, expected in (
        (down, "any-bucket", "cannot reach the S3 endpoint"),
        (s3_endpoint, "no-such-bucket", "bucket no-such-bucket does not exist"),
    ):
        (tmp_path / "platform.yaml").write_text(
            "version: 1\nproject: s3down\nservices: {postgres: {}}\n"
            f"backups: {{s3: {{bucket: {bucket}, endpoint_url: '{endpoint}'}}}}\n"
        )
        for command in (["backup", "list"], ["backup", "create"]):
            result = run_cli(*command, cwd=tmp_path, env=AWS_ENV, timeout=120)
            assert result.returncode == 3, (command, result.stderr)
            assert expected in result.stderr and "Traceback" not in result.stderr
            assert result.stderr.count("error:") == 1 and "hint:" in result.stderr


def test_an_endpoint_that_hangs_up_is_exit_3_not_a_generic_failure(aws_env):
    """Something listens on the port but is not S3 (closes every connection): environment unusable."""
    import threading

    from mindscape_ops.errors import EnvironmentUnusable

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(EnvironmentUnusable, match="cannot reach the S3 endpoint"):
            store_for(f"http://127.0.0.1:{port}", "any-bucket").check()
    finally:
        listener.close()


@pytest.mark.engine
def test_postgres_round_trip_through_s3_with_identical_rows(
    s3_endpoint, aws_env, docker_client, local_images, tmp_path
):
    import psycopg

    from .test_backup_postgres_engine import SCHEMA, checksums, db_url

    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    project = unique_project("bks")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {local_images['postgres']}, port: auto}}\n"
        f"backups: {{s3: {{bucket: {bucket}, prefix: backups/, endpoint_url: '{s3_endpoint}'}}}}\n"
    )
    try:
        assert run_cli("up", cwd=tmp_path, timeout=600).returncode == 0
        with psycopg.connect(db_url(tmp_path), autocommit=True) as conn:
            conn.execute(SCHEMA)
        before = checksums(db_url(tmp_path))
        result = run_cli("backup", "create", "--json", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        made = json.loads(result.stdout)[0]
        assert not Path(tmp_path / "backups").exists()  # nothing local: straight to the bucket
        listed = json.loads(run_cli("backup", "list", "--json", cwd=tmp_path, env=AWS_ENV).stdout)
        assert [b["id"] for b in listed] == [made["id"]]

        with psycopg.connect(db_url(tmp_path), autocommit=True) as conn:
            conn.execute("TRUNCATE orders")
        result = run_cli("backup", "restore", made["id"], "--yes", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        assert checksums(db_url(tmp_path)) == before
        result = run_cli("backup", "verify", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        listed = json.loads(run_cli("backup", "list", "--json", cwd=tmp_path, env=AWS_ENV).stdout)
        assert listed[0]["verified"] is True
    finally:
        remove_project(docker_client, project)


def test_prune_aborts_the_multipart_upload_a_killed_backup_left(s3_endpoint, aws_env):
    from datetime import timedelta

    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    store = store_for(s3_endpoint, bucket)
    key = "t/20260101T000000Z-postgres-dead.backup"
    store.client.create_multipart_upload(Bucket=bucket, Key=key)
    # (moto reports every upload as initiated in 2010, so the one-hour grace is not testable here)
    assert store.abort_stale_uploads(timedelta(0)) == ["20260101T000000Z-postgres-dead.backup"]
    assert store.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.engine
def test_redis_round_trip_through_s3_with_identical_data(s3_endpoint, aws_env, docker_client, local_images, tmp_path):
    from .test_backup_redis_engine import client, snapshot

    bucket = f"b-{unique_project()}"
    make_bucket(s3_endpoint, bucket)
    project = unique_project("bks")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  redis: {{image: {local_images['redis']}, port: auto}}\n"
        f"backups: {{s3: {{bucket: {bucket}, endpoint_url: '{s3_endpoint}', sse: AES256}}}}\n"
    )
    try:
        assert run_cli("up", cwd=tmp_path, timeout=600).returncode == 0
        c = client(tmp_path)
        c.set("greeting", "héllo\nworld\0binary")
        c.hset("user:1", mapping={"name": "ada", "visits": 3})
        c.rpush("queue", *[f"job{i}" for i in range(500)])
        c.zadd("scores", {"x": 1.5, "y": -2})
        c.close()
        before = snapshot(tmp_path)
        result = run_cli("backup", "create", "--json", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        made = json.loads(result.stdout)[0]
        assert made["service"] == "redis" and not (tmp_path / "backups").exists()
        listed = json.loads(run_cli("backup", "list", "--json", cwd=tmp_path, env=AWS_ENV).stdout)
        assert [(b["id"], b["sha256"]) for b in listed] == [(made["id"], made["sha256"])]
        head = store_for(s3_endpoint, bucket).client.head_object(
            Bucket=bucket, Key=f"mindscape/{project}/{made['id']}.backup"
        )
        assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == made["size"]

        c = client(tmp_path)
        c.flushall()
        c.set("new", "after the backup")
        c.close()
        result = run_cli("backup", "restore", made["id"], "--yes", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0, result.stderr
        assert snapshot(tmp_path) == before
        result = run_cli("backup", "verify", cwd=tmp_path, env=AWS_ENV)
        assert result.returncode == 0 and "RDB looks OK" in result.stderr, result.stderr
        listed = json.loads(run_cli("backup", "list", "--json", cwd=tmp_path, env=AWS_ENV).stdout)
        assert listed[0]["verified"] is True
    finally:
        remove_project(docker_client, project)
