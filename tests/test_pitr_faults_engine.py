"""backups.pitr's fault drills on a real engine, local repository: `backup verify --physical`
and the `backups.restorable_window` gate on a good repository, then each fault ends with the
live data untouched and a message that names it: a WAL segment missing from the repository, a
tampered backup file, the wrong key, and mindscape killed (-9) during a restore and during a
physical backup (what the killed restore left is swept by the next command and `backup prune`),
and killed during the swap itself: the next command (`up`, `backup prune`) finds the database on
the data it had or on the restored data, never without a data directory, and says which."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project
from .test_pitr_engine import (  # noqa: F401
    KEY,
    archived_by_timeout,
    archived_past,
    query,
    scratch_containers,
)

pytestmark = pytest.mark.engine

DATA = "/var/lib/postgresql/data"


def cli(directory: Path, *args: str, timeout: float = 600):
    return run_cli(*args, cwd=directory, timeout=timeout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, postgres_image):  # noqa: F811
    directory = tmp_path_factory.mktemp("pitr-faults")
    project = unique_project("pitrf")
    (directory / "backup.key").write_text(KEY)
    (directory / "backup.key").chmod(0o600)
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {postgres_image}, port: auto}}\n"
        "backups:\n  encryption: {key_file: backup.key}\n  pitr: {enabled: true, archive_timeout: 5s}\n"
    )
    try:
        up = cli(directory, "up")
        assert up.returncode == 0, up.stderr
        query(directory, "CREATE TABLE drill (id int PRIMARY KEY)")
        query(directory, "INSERT INTO drill SELECT g FROM generate_series(1, 50000) g")
        made = cli(directory, "backup", "create", "--physical", "--json")
        assert made.returncode == 0, made.stderr
        yield directory, project, json.loads(made.stdout)[0]["id"]
    finally:
        for container in scratch_containers(docker_client, project):
            container.remove(force=True)
        remove_project(docker_client, project)


def rows(directory: Path) -> list[tuple]:
    return query(directory, "SELECT count(*), max(id) FROM drill")


def data_dirs(docker_client, project: str) -> str:
    container = docker_client.containers.get(f"{project}-postgres")
    _code, out = container.exec_run(["sh", "-c", f"ls -d {DATA}/pgdata.* 2>/dev/null; true"])
    return out.decode()


def untouched(directory: Path, docker_client, project: str, before: list[tuple]) -> None:
    assert rows(directory) == before
    assert scratch_containers(docker_client, project) == []
    assert "pgdata.restore-" not in data_dirs(docker_client, project)


def test_verify_and_the_window_gate_pass_on_a_good_repository(platform):
    directory, _project, label = platform
    verified = cli(directory, "backup", "verify", label)
    assert verified.returncode == 0, verified.stderr
    assert "pgbackrest verify passed" in verified.stderr and "came up and answered (1 tables)" in verified.stderr
    done = cli(directory, "check", "--only", "backups", "--json")
    window = next(r for r in json.loads(done.stdout) if r["id"] == "backups.restorable_window")
    assert window["status"] == "pass" and "restorable from " in window["message"], window


def test_a_missing_wal_segment_is_named_and_nothing_is_touched(platform, docker_client):
    directory, project, _label = platform
    query(directory, "INSERT INTO drill VALUES (60001)")
    archived_past(directory)
    query(directory, "INSERT INTO drill VALUES (60002)")
    archived_past(directory)
    segments = sorted(p for p in (directory / "backups/pitr/archive").rglob("*") if p.is_file() and "-" in p.name)
    victim = segments[-2]  # between the backup and the newest segment
    aside = victim.with_name("aside")
    victim.rename(aside)
    before = rows(directory)
    try:
        refused = cli(directory, "backup", "restore", "--to", "latest", "--yes")
        verified = cli(directory, "backup", "verify", "--physical")
    finally:
        aside.rename(victim)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert f"lacks 1 WAL segment(s): {victim.name[:24]}" in refused.stderr.replace("\n", " ")
    assert "nothing was touched" in refused.stderr.replace("\n", " ")
    assert verified.returncode == 1 and "the restorable window has a gap" in verified.stderr, verified.stderr
    untouched(directory, docker_client, project, before)


def test_a_tampered_backup_file_fails_verify_and_the_restore_before_the_swap(platform, docker_client):
    directory, project, label = platform
    files = sorted(
        (p for p in (directory / f"backups/pitr/backup/{project}/{label}/pg_data/base").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    victim = files[-1]  # the biggest relation file: the drill table
    original = victim.read_bytes()
    victim.write_bytes(original[:100] + bytes(b ^ 0xFF for b in original[100:200]) + original[200:])
    before = rows(directory)
    try:
        verified = cli(directory, "backup", "verify", label)
        restored = cli(directory, "backup", "restore", "--to-backup", label, "--yes")
    finally:
        victim.write_bytes(original)
    assert verified.returncode == 1, verified.stderr
    assert "pgbackrest verify found damage in the repository" in verified.stderr.replace("\n", " ")
    assert restored.returncode != 0 and "Traceback" not in restored.stderr, restored.stderr
    assert "the live data is untouched" in restored.stderr.replace("\n", " "), restored.stderr
    untouched(directory, docker_client, project, before)


def test_the_wrong_key_is_said_and_nothing_is_touched(platform, docker_client):
    directory, project, _label = platform
    key = directory / "backup.key"
    before = rows(directory)
    key.write_text("6b" * 32)
    try:
        up = cli(directory, "up")  # writes pgBackRest's pass from the new key
        refused = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    finally:
        key.write_text(KEY)
    # up recreates Postgres when it sees pgBackRest's configuration changed, and then says the key is wrong
    assert up.returncode == 0 or "not the one the repository was written with" in up.stderr, up.stderr
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert "not the one the repository was written with" in refused.stderr.replace("\n", " "), refused.stderr
    untouched(directory, docker_client, project, before)
    again = cli(directory, "up")
    assert again.returncode == 0, again.stderr
    archived_past(directory)


def spawn(directory: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", *args],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_restore_killed_mid_way_leaves_the_live_data_and_its_leftovers_are_swept(platform, docker_client):
    directory, project, _label = platform
    before = rows(directory)
    restoring = spawn(directory, "backup", "restore", "--to", "latest", "--yes")
    deadline = time.monotonic() + 120
    while not scratch_containers(docker_client, project):
        assert restoring.poll() is None and time.monotonic() < deadline, "the restore never began"
        time.sleep(0.2)
    time.sleep(1.0)  # pgBackRest restoring into pgdata.restore-*
    restoring.send_signal(signal.SIGKILL)
    restoring.wait(10)
    assert rows(directory) == before  # the live container was never stopped
    assert scratch_containers(docker_client, project), "the killed restore left nothing to sweep"
    dry = cli(directory, "backup", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    pruned = cli(directory, "backup", "prune")
    assert pruned.returncode == 0, pruned.stderr
    untouched(directory, docker_client, project, before)


def test_a_physical_backup_killed_mid_way_leaves_the_live_data_and_the_next_one_works(platform, docker_client):
    directory, project, _label = platform
    before = rows(directory)
    container = docker_client.containers.get(f"{project}-postgres")
    running = ["sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q 'type=full backup'"]
    taking = spawn(directory, "backup", "create", "--physical")
    deadline = time.monotonic() + 60
    while container.exec_run(running).exit_code != 0:  # until pgBackRest is taking it
        assert taking.poll() is None and time.monotonic() < deadline, "the backup never began"
        time.sleep(0.1)
    taking.send_signal(signal.SIGKILL)
    taking.wait(10)
    assert rows(directory) == before
    deadline = time.monotonic() + 120
    while True:  # pgBackRest's own run goes on in the container until it ends; then the next one runs
        again = cli(directory, "backup", "create", "--physical", "--json")
        if again.returncode == 0:
            break
        assert "another pgBackRest command" in again.stderr.replace("\n", " "), again.stderr
        assert time.monotonic() < deadline, again.stderr
        time.sleep(2)
    assert json.loads(again.stdout)[0]["type"] == "full"


def kill_in_the_swap(directory: Path, docker_client, project: str, label: str, moment: str) -> None:
    """A restore killed (-9) once the swap has stopped the live container ("stopped"), or once it
    has started it again on the restored data ("restarted"), before it answered."""
    name = f"{project}-postgres"
    restoring = spawn(directory, "backup", "restore", "--to-backup", label, "--yes")
    seen_stopped = False
    deadline = time.monotonic() + 300
    while True:
        assert restoring.poll() is None and time.monotonic() < deadline, "the swap never began"
        status = docker_client.api.inspect_container(name)["State"]["Status"]
        seen_stopped |= status == "exited"
        if seen_stopped and (moment == "stopped" or status == "running"):
            break
        time.sleep(0.02)
    restoring.send_signal(signal.SIGKILL)
    restoring.wait(10)
    assert (directory / ".mindscape/pitr-swap.json").is_file(), "the swap left no journal"


@pytest.mark.parametrize(("moment", "then"), [("stopped", ("up",)), ("restarted", ("backup", "prune"))])
def test_a_restore_killed_during_its_swap_is_settled_on_old_or_new_data(platform, docker_client, moment, then):
    directory, project, label = platform
    query(directory, "INSERT INTO drill SELECT max(id) + 1 FROM drill")  # not in the backup: tells the old data apart
    before, taken = rows(directory), [(50000, 50000)]
    kill_in_the_swap(directory, docker_client, project, label, moment)
    settled = cli(directory, *then)
    said = settled.stderr.replace("\n", " ")
    assert settled.returncode == 0 and "interrupted during its swap" in said, settled.stderr
    on_restored = "after the restored data was swapped in" in said
    assert on_restored or moment == "stopped", said  # once restarted, it is on the restored data
    assert rows(directory) == (taken if on_restored else before), said
    assert not (directory / ".mindscape/pitr-swap.json").exists()
    assert scratch_containers(docker_client, project) == []
    left = data_dirs(docker_client, project)
    assert "pgdata.restore-" not in left and ("pgdata.replaced-" in left or not on_restored), left
    archived_by_timeout(directory)  # and it archives on, archive_timeout honoured


def test_prune_removes_replaced_data_but_the_newest(platform, docker_client):
    directory, project, _label = platform
    for _ in range(2):
        restored = cli(directory, "backup", "restore", "--to", "latest", "--yes")
        assert restored.returncode == 0, restored.stderr
    assert data_dirs(docker_client, project).count("pgdata.replaced-") >= 2
    pruned = cli(directory, "backup", "prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    result = json.loads(pruned.stdout)["data_dirs"]
    assert len(result["kept"]) == 1 and result["removed"], result
    assert data_dirs(docker_client, project).count("pgdata.replaced-") == 1
