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


def test_ctrl_c_during_create_says_what_it_stopped_and_keeps_nothing(platform):
    directory, project = platform
    folder = space(directory)
    listed_before = {b["id"] for b in backups(directory)}
    files_before = set(os.listdir(folder)) if folder.exists() else set()
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "backup", "create", "--service", "postgres"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder.exists() and any(p.stat().st_size > 0 for p in folder.glob("*.partial"))):
            assert process.poll() is None, "the backup ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: the backup of postgres was stopped; nothing of it was kept" in stderr
    assert "Traceback" not in stderr
    assert set(os.listdir(folder)) == files_before and {b["id"] for b in backups(directory)} == listed_before
    audit = (directory / ".mindscape" / "audit.log").read_text().splitlines()[-1]
    assert "interrupted (exit 130)" in audit
