"""backups.pitr's full-disk drill on a real engine: the local repository on a small filesystem of
its own (a tmpfs mounted where backups.local.dir puts it; the test needs the right to mount one,
as root has on this machine), filled to its last byte. Rows written meanwhile are acknowledged,
their WAL segments cannot be archived: the `backups.wal_archiving` gate fails and says so. Once
space is back, archiving resumes from the first segment it could not send, the gate passes, and
a restore to `latest` returns every acknowledged row."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project
from .test_pitr_engine import archived_by_timeout, archived_past, query, scratch_containers

pytestmark = pytest.mark.engine

REPO_MB = 48  # room for the stanza, one full backup of a small database and a few segments


def cli(directory: Path, *args: str, timeout: float = 600):
    return run_cli(*args, cwd=directory, timeout=timeout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, postgres_image):
    directory = tmp_path_factory.mktemp("pitr-disk")
    project = unique_project("pitrd")
    repo = directory / "backups" / "pitr"
    repo.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={REPO_MB}m,mode=0755", "tmpfs", str(repo)], capture_output=True, text=True
    )
    assert mounted.returncode == 0, f"this drill mounts a small tmpfs for the repository: {mounted.stderr.strip()}"
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {postgres_image}, port: auto}}\n"
        "backups:\n  pitr: {enabled: true, archive_timeout: 5s}\n"
    )
    try:
        up = cli(directory, "up")
        assert up.returncode == 0, up.stderr
        query(directory, "CREATE TABLE drill (id int PRIMARY KEY, pad text)")
        made = cli(directory, "backup", "create", "--physical")
        assert made.returncode == 0, made.stderr
        yield directory, repo
    finally:
        for container in scratch_containers(docker_client, project):
            container.remove(force=True)
        remove_project(docker_client, project)
        subprocess.run(["umount", "-l", str(repo)], capture_output=True)


def fill(repo: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = repo / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with contextlib.suppress(OSError), filler.open("ab") as out:
        while True:  # the last partial megabyte
            out.write(b"\0" * 4096)
            out.flush()
    return filler


def gate(directory: Path) -> dict:
    done = cli(directory, "check", "--only", "backups", "--json")
    assert done.stdout, done.stderr
    return next(r for r in json.loads(done.stdout) if r["id"] == "backups.wal_archiving")


def test_a_full_repository_fails_the_gate_and_loses_nothing_acknowledged_once_space_is_back(platform):
    directory, repo = platform
    archived_past(directory)
    assert gate(directory)["status"] == "pass"
    filler = fill(repo)
    try:
        (failures,) = query(directory, "SELECT failed_count FROM pg_stat_archiver")[0]
        acknowledged = []
        for batch in range(5):  # acknowledged rows, their segments closed one after another
            ids = list(range(batch * 1000 + 1, batch * 1000 + 1001))
            query(directory, "INSERT INTO drill SELECT g, md5(g::text) FROM unnest(%s::int[]) g", (ids,))
            acknowledged += ids
            query(directory, "SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while query(directory, "SELECT failed_count FROM pg_stat_archiver")[0][0] == failures:
            assert time.monotonic() < deadline, "archiving did not fail on a full repository"
            time.sleep(0.5)
        failing = gate(directory)
        assert failing["status"] == "fail" and "archiving fails" in failing["message"], failing
        assert "repository full" in failing["remedy"], failing
        logs = cli(directory, "logs", "postgres", "--tail", "200")
        assert "No space left on device" in logs.stdout + logs.stderr, (logs.stdout + logs.stderr)[-2000:]
    finally:
        filler.unlink()
    archived_past(directory)  # resumed from the first segment it could not send
    assert gate(directory)["status"] == "pass", gate(directory)
    restored = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    assert restored.returncode == 0, restored.stderr
    found = [row[0] for row in query(directory, "SELECT id FROM drill ORDER BY id")]
    assert found == acknowledged
    archived_by_timeout(directory)
