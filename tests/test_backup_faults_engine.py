"""Backup faults that need the real engine and Postgres (issue 22): a verify killed with SIGKILL
leaves a scratch database that the next verify drops, saying so (and never one whose creator
still works in it, nor another project's); Ctrl-C during `backup create` says what it stopped
and keeps nothing of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from mindscape_ops.services import postgres_scratch as scratch

from .conftest import remove_project, run_cli, unique_project
from .test_backup_postgres_engine import backups, create, db_url, platform_text, space

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("backup-faults")
    project = unique_project("bkf")
    (directory / "platform.yaml").write_text(platform_text(project, local_images))
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        with psycopg.connect(db_url(directory), autocommit=True) as conn:  # enough to be caught mid-way
            conn.execute("CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1500000) g")
        yield directory, project
    finally:
        remove_project(docker_client, project)


def databases(directory) -> set[str]:
    with psycopg.connect(db_url(directory), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_a_killed_verify_leaves_a_scratch_database_the_next_verify_drops(platform):
    directory, project = platform
    made = create(directory)
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "backup", "verify", made["id"]],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (left := scratch.of_project(sorted(databases(directory)), project)):
            assert process.poll() is None, "the verify ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    [killed] = left
    assert killed.startswith(f"mindscape_verify_{scratch.slug(project)}_{process.pid}_")
    assert killed in databases(directory)  # nothing removed it

    # beside it: one whose creator still works (holds its lock), and another project's
    busy = scratch.scratch_name("verify", project, pid=1)
    others = scratch.scratch_name("verify", "someone-else", pid=1)
    with psycopg.connect(db_url(directory), autocommit=True) as conn:
        for name in (busy, others):
            conn.execute(f"CREATE DATABASE {name}")
        # advisory locks are per database: the scratch locks live in the maintenance database
        with psycopg.connect(make_conninfo(db_url(directory), dbname="postgres"), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (scratch.LOCK_SPACE, busy))
            result = run_cli("backup", "verify", made["id"], cwd=directory)
        assert result.returncode == 0, result.stderr
        assert f"warning: dropped the scratch database {killed}: left by a verify (pid {process.pid}" in result.stderr
        assert busy not in result.stderr and others not in result.stderr
        left_now = databases(directory)
        assert killed not in left_now and {busy, others} <= left_now
        assert not scratch.of_project(sorted(left_now - {busy}), project)  # the second verify removed its own
        for name in (busy, others):
            conn.execute(f"DROP DATABASE {name}")


# The command, with the moment of the Ctrl-C made certain: it holds (until the signal) once
# the dump's first bytes are in the store, or once its manifest is written. Without the hold a
# fast dump could end before the signal was sent (Popen.send_signal then sends nothing): the
# command exited 0 and kept its backup, and the test failed now and then.
HELD = """
import pathlib, sys, time
from mindscape_ops.backup import metrics
from mindscape_ops.services import postgres_backup as postgres

gate, where = pathlib.Path(sys.argv[1]), sys.argv[2]
held = []


def hold():
    if not held:
        held.append(gate.write_text("held"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)  # until Ctrl-C


if where == "dump":
    counting = postgres._counting_meanwhile

    def dump_held(chunks, rows, cancel, made):
        stream = counting(chunks, rows, cancel, made)
        yield next(stream)
        hold()  # the first chunk is in the store's partial file
        yield from stream

    postgres._counting_meanwhile = dump_held
else:
    record = metrics.record_success

    def held_after(*args):
        record(*args)
        hold()  # the manifest is written: the backup is complete

    metrics.record_success = held_after
from mindscape_ops.cli import main

sys.argv = ["mindscape", "backup", "create", "--service", "postgres"]
main()
"""


def interrupted_create(directory, where: str) -> tuple[int, str]:
    gate = directory / f"held-{where}"
    gate.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-c", HELD, str(gate), where],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not gate.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert process.poll() is None  # held: the signal cannot come after the command ended
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


def test_ctrl_c_during_create_says_what_it_stopped_and_keeps_nothing(platform):
    directory, project = platform
    folder = space(directory)
    listed_before = {b["id"] for b in backups(directory)}
    files_before = set(os.listdir(folder)) if folder.exists() else set()
    code, stderr = interrupted_create(directory, "dump")
    assert code == 130, stderr
    assert "interrupted: the backup of postgres was stopped; nothing of it was kept" in stderr
    assert "Traceback" not in stderr
    assert set(os.listdir(folder)) == files_before and {b["id"] for b in backups(directory)} == listed_before
    audit = (directory / ".mindscape" / "audit.log").read_text().splitlines()[-1]
    assert "interrupted (exit 130)" in audit
    deadline = time.monotonic() + 30  # the dump and its row count stop (not run on to their end)
    while busy_backups(directory) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert busy_backups(directory) == 0


def busy_backups(directory) -> int:
    with psycopg.connect(db_url(directory), autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (application_name = 'pg_dump' OR query LIKE 'SELECT count(*) FROM %%')"
        ).fetchone()[0]


def test_ctrl_c_after_the_manifest_says_the_backup_is_kept(platform):
    directory, _ = platform
    listed_before = {b["id"] for b in backups(directory)}
    code, stderr = interrupted_create(directory, "committed")
    assert code == 130, stderr
    [kept] = [b["id"] for b in backups(directory) if b["id"] not in listed_before]
    assert f"interrupted: the backup of postgres was already complete: {kept} is kept" in stderr
    assert "Traceback" not in stderr
    assert run_cli("backup", "verify", kept, cwd=directory).returncode == 0  # whole
