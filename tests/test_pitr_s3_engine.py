"""backups.pitr with `repository: s3`, end to end against moto's server: WAL archived into the
bucket, a physical backup, the drill (`restore --to T` keeps every row up to T and none after),
and an S3 outage during archiving (the gate fails meanwhile; once S3 is back archiving resumes
and a restore to `latest` has every row acknowledged during the outage).

pgBackRest runs in the database's container and speaks S3 over TLS only (2.45). moto serves
plain HTTP on 127.0.0.1; relays of this test end TLS (a throwaway certificate for 127.0.0.1,
which mindscape's own S3 client verifies through AWS_CA_BUNDLE; pgBackRest does not verify an
endpoint on this machine: services/pitr.conf_text) in front of it on 127.0.0.1 (this test and
mindscape) and, on the same port, on the host's address on Docker's bridge (that address is
this machine's alone), which the container reaches as host.docker.internal. Stopping the
bridge's relay is the outage: moto keeps what it holds."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project
from .test_alert_delivery_engine import bridge_gateway
from .test_backup_s3 import AWS_ENV, free_port
from .test_pitr_engine import KEY, archived_past, query, scratch_containers  # noqa: F401

pytestmark = pytest.mark.engine


class Relay:
    """TLS on (address, port), ended here and passed on as plain HTTP to moto on 127.0.0.1;
    stopped and started at will. Each connection's end is a clean TLS close (close_notify):
    moto's server just drops the connection after a response without a length, which
    pgBackRest (OpenSSL 3) takes for an error."""

    def __init__(self, address: str, port: int, upstream: int, context: ssl.SSLContext) -> None:
        self.address, self.port, self.upstream, self.context = address, port, upstream, context
        self.open: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.address, self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        for conn in list(self.open):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.open.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self.open += [tls, upstream]
        try:
            while True:
                ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 120)[0]
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        if source is upstream:
                            with contextlib.suppress(OSError, ssl.SSLError):
                                tls.unwrap()  # close_notify: the response ends cleanly
                        return
                    (upstream if source is tls else tls).sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            for conn in (tls, upstream):
                with contextlib.suppress(OSError):
                    conn.close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (what mindscape's own S3 client verifies, through
    AWS_CA_BUNDLE) and its key."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "moto.pem", folder / "moto.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


AWS = dict(AWS_ENV)


@pytest.fixture(scope="module")
def moto_tls(docker_client, tmp_path_factory):
    port = free_port()
    cert, key = self_signed(tmp_path_factory.mktemp("moto-tls"))
    AWS["AWS_CA_BUNDLE"] = str(cert)  # mindscape's own S3 client (the dumps, the destination gate) verifies it
    server = Path(sys.executable).parent / "moto_server"
    plain = free_port()
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(plain)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "S3_IGNORE_SUBDOMAIN_BUCKETNAME": "true"},  # host.docker.internal is no bucket
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    relays: list[Relay] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", plain), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        relays.append(Relay("127.0.0.1", port, plain, context))  # this test and mindscape
        relays.append(Relay(bridge_gateway(docker_client), port, plain, context))  # the container
        yield f"https://127.0.0.1:{port}", relays[1]
    finally:
        for relay in relays:
            relay.stop()
        process.terminate()
        process.wait(10)


def bucket_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        verify=AWS["AWS_CA_BUNDLE"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def cli(directory: Path, *args: str, timeout: float = 600):
    return run_cli(*args, cwd=directory, env=AWS, timeout=timeout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, postgres_image, moto_tls):  # noqa: F811
    endpoint, _relay = moto_tls
    bucket = f"pitr-{unique_project()}".lower()
    bucket_client(endpoint).create_bucket(Bucket=bucket)
    directory = tmp_path_factory.mktemp("pitr-s3")
    project = unique_project("pitrs3")
    (directory / "backup.key").write_text(KEY)
    (directory / "backup.key").chmod(0o600)
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {postgres_image}, port: auto}}\n"
        "backups:\n  encryption: {key_file: backup.key}\n"
        f"  s3: {{bucket: {bucket}, prefix: team/, endpoint_url: '{endpoint}'}}\n"
        "  pitr: {enabled: true, repository: s3, archive_timeout: 5s}\n"
    )
    try:
        up = cli(directory, "up")
        assert up.returncode == 0, up.stderr
        query(directory, "CREATE TABLE drill (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        yield directory, project, bucket, endpoint
    finally:
        for container in scratch_containers(docker_client, project):
            container.remove(force=True)
        remove_project(docker_client, project)


def keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    pages = bucket_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_wal_and_a_physical_backup_go_into_the_bucket_encrypted(platform):
    directory, project, bucket, endpoint = platform
    archived_past(directory)
    made = cli(directory, "backup", "create", "--physical", "--json")
    assert made.returncode == 0, made.stderr
    label = json.loads(made.stdout)[0]["id"]
    wal = [k for k in keys(endpoint, bucket, f"team/pitr/archive/{project}/") if "-" in k.rsplit("/", 1)[-1]]
    assert wal, "no WAL segment in the bucket"
    assert keys(endpoint, bucket, f"team/pitr/backup/{project}/{label}/"), "the backup is not in the bucket"
    body = bucket_client(endpoint).get_object(Bucket=bucket, Key=wal[0])["Body"].read()
    assert b"PostgreSQL" not in body[:4096]  # ciphertext
    listed = cli(directory, "backup", "list")
    assert listed.returncode == 0, listed.stderr
    assert label in listed.stdout and "restorable from " in listed.stdout


def test_drill_on_s3_restores_every_row_up_to_the_time_and_none_after(platform, docker_client):
    directory, project, *_ = platform
    query(directory, "DELETE FROM drill")
    for i in range(1, 21):
        query(directory, "INSERT INTO drill (id) VALUES (%s)", (i,))
        time.sleep(0.05)
    time.sleep(0.3)
    ((t,),) = query(directory, "SELECT clock_timestamp()")
    time.sleep(0.3)
    for i in range(21, 41):
        query(directory, "INSERT INTO drill (id) VALUES (%s)", (i,))
        time.sleep(0.05)
    archived_past(directory)
    restored = cli(directory, "backup", "restore", "--to", t.isoformat(sep=" "), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert [row[0] for row in query(directory, "SELECT id FROM drill ORDER BY id")] == list(range(1, 21))
    assert scratch_containers(docker_client, project) == []


def gate(directory: Path) -> dict:
    done = cli(directory, "check", "--only", "backups", "--json")
    assert done.stdout, done.stderr
    return next(r for r in json.loads(done.stdout) if r["id"] == "backups.wal_archiving")


def test_an_s3_outage_fails_the_gate_and_loses_nothing_once_s3_is_back(platform, moto_tls):
    directory, *_ = platform
    _endpoint, relay = moto_tls
    archived_past(directory)
    assert gate(directory)["status"] == "pass"
    relay.stop()
    try:
        query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(700, 709) g")  # acknowledged
        query(directory, "SELECT pg_switch_wal()")
        # pgBackRest (2.45) retries a refused connection for minutes before archive-push fails: the gate
        # sees the segment waiting past its bound first (twice archive_timeout plus a minute)
        deadline = time.monotonic() + 300
        while (failing := gate(directory))["status"] != "fail":
            assert time.monotonic() < deadline, f"the gate did not see archiving stop while S3 was away: {failing}"
            time.sleep(5)
        assert "archiving fails" in failing["message"] or "WAL segment(s) wait" in failing["message"], failing
    finally:
        relay.start()
    deadline = time.monotonic() + 600
    while gate(directory)["status"] != "pass":  # resumed from where it stopped
        assert time.monotonic() < deadline, "archiving did not resume once S3 was back"
        time.sleep(5)
    archived_past(directory)
    expected = query(directory, "SELECT id FROM drill ORDER BY id")
    assert (700,) in expected
    restored = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert query(directory, "SELECT id FROM drill ORDER BY id") == expected
