"""backups.pitr on a real engine, local repository: turning it on for a running platform is one
`up` (and `plan` says Postgres is recreated); WAL is archived through pgBackRest into an
encrypted repository; `backup create --physical` and `backup list`; and the drill: rows written
in a loop, a time T noted between two of them, `backup restore --to T`: every row committed up
to T is there and none after it, the live database swapped only once the restored copy answered,
the data it replaced kept."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

KEY = "5a" * 32


def db_url(directory: Path) -> str:
    from mindscape_ops.workspace.store import Workspace

    workspace = Workspace(directory)
    password = workspace.read_secrets()["POSTGRES_PASSWORD"]
    port = workspace.read_state()["ports"]["postgres"]
    return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=port, user="app", password=password, dbname="app")


def query(directory: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(db_url(directory), autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def archived_past(directory: Path) -> str:
    """Switch to a new WAL segment and wait until the one just closed is archived."""
    (closed,) = query(directory, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        last, failed = query(directory, "SELECT last_archived_wal, failed_count FROM pg_stat_archiver")[0]
        if last is not None and last[8:] >= closed[8:]:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{closed} was not archived in 120s (last archived {last}, {failed} failure(s))")


def archived_by_timeout(directory: Path, within: float = 25.0) -> float:
    """A transaction, then no switch asked: its segment must be archived within archive_timeout
    (5 s here) and a margin; Postgres 15 after a start would leave it for checkpoint_timeout
    (5 min) unless its checkpointer is woken (services/pitr.py). The seconds it took. Two
    transactions: Postgres closes a segment only for a record that starts after where the start
    left the WAL, and a lone commit right after a start begins exactly there."""
    query(directory, "SELECT txid_current()")
    query(directory, "SELECT txid_current()")
    started = time.monotonic()
    ((wal,),) = query(directory, "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
    while time.monotonic() - started < within:
        ((last, failed, failed_wal),) = query(
            directory, "SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver"
        )
        if last is not None and last[:8] == wal[:8] and last[8:24] >= wal[8:24]:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(
        f"{wal} not closed by archive_timeout and archived within {within:.0f}s "
        f"(last {last}; {failed} failure(s), the last on {failed_wal})"
    )


def scratch_containers(docker_client, project: str) -> list:
    label = "io.mindscape.pitr-restore-of"
    # other platforms' scratch containers come and go meanwhile: one gone before it is inspected is skipped
    found = docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    return [c for c in found if c.labels[label].startswith(f"{project}-")]


def cli(directory: Path, *args: str, timeout: float = 600):
    return run_cli(*args, cwd=directory, timeout=timeout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, postgres_image):
    directory = tmp_path_factory.mktemp("pitr")
    project = unique_project("pitr")
    (directory / "backup.key").write_text(KEY)
    (directory / "backup.key").chmod(0o600)
    head = (
        f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {postgres_image}, port: auto}}\n"
        "backups:\n  encryption: {key_file: backup.key}\n"
    )
    (directory / "platform.yaml").write_text(head)
    try:
        first = cli(directory, "up")
        assert first.returncode == 0, first.stderr
        query(directory, "CREATE TABLE drill (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        (directory / "platform.yaml").write_text(head + "  pitr: {enabled: true, archive_timeout: 5s}\n")
        plan = cli(directory, "plan", "--json")
        assert plan.returncode == 0, plan.stderr
        second = cli(directory, "up")
        assert second.returncode == 0, second.stderr
        yield directory, project, json.loads(plan.stdout), second.stderr
    finally:
        for container in scratch_containers(docker_client, project):
            container.remove(force=True)
        remove_project(docker_client, project)


def test_turning_it_on_is_one_up_and_plan_says_postgres_restarts(platform):
    directory, _project, plan, up_output = platform
    rows = plan if isinstance(plan, list) else plan.get("actions", plan)
    postgres = next(row for row in rows if row["service"] == "postgres")
    assert postgres["action"] == "recreate" and "command changed" in postgres["reason"], postgres
    assert "pgbackrest" in up_output.lower() or "archiving" in up_output.lower(), up_output
    assert query(directory, "SHOW archive_mode") == [("on",)]
    assert "pgbackrest" in query(directory, "SHOW archive_command")[0][0]
    archived_by_timeout(directory)  # the restart up made: archive_timeout honoured at once


def test_wal_is_archived_into_an_encrypted_repository(platform, docker_client):
    directory, project, *_ = platform
    archived_past(directory)
    assert query(directory, "SELECT failed_count FROM pg_stat_archiver") == [(0,)]
    container = docker_client.containers.get(f"{project}-postgres")
    code, out = container.exec_run(["pgbackrest", f"--stanza={project}", "info", "--output=json"], user="postgres")
    assert code == 0, out
    assert json.loads(out)[0]["cipher"] == "aes-256-cbc"
    archived = [p for p in (directory / "backups/pitr/archive").rglob("*") if p.is_file() and "-" in p.name]
    assert archived, "no WAL segment in the local repository"
    assert not any(b"PostgreSQL" in p.read_bytes()[:4096] for p in archived)  # ciphertext, not WAL


def gate(directory: Path) -> dict:
    done = cli(directory, "check", "--only", "backups", "--json")
    assert done.stdout, done.stderr
    return next(r for r in json.loads(done.stdout) if r["id"] == "backups.wal_archiving")


def test_the_gate_says_when_archiving_fails_and_nothing_is_lost_once_it_is_back(platform):
    directory, *_ = platform
    assert gate(directory)["status"] == "pass", gate(directory)
    repo = directory / "backups/pitr"
    mode = repo.stat().st_mode & 0o777
    repo.chmod(0o000)  # the repository cannot be written: archive-push fails, Postgres keeps the segment
    try:
        query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(500000, 500009) g")
        query(directory, "SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while query(directory, "SELECT failed_count FROM pg_stat_archiver")[0][0] == 0:
            assert time.monotonic() < deadline, "archiving did not fail on an unwritable repository"
            time.sleep(0.5)
        failing = gate(directory)
        assert failing["status"] == "fail" and "archiving fails" in failing["message"], failing
        assert "mindscape logs postgres" in failing["remedy"]
    finally:
        repo.chmod(mode)
    archived_past(directory)  # resumed from where it stopped
    assert gate(directory)["status"] == "pass"


def test_physical_backups_and_the_window_are_listed(platform):
    directory, *_ = platform
    full = cli(directory, "backup", "create", "--physical", "--json")
    assert full.returncode == 0, full.stderr
    (made,) = json.loads(full.stdout)
    assert made["type"] == "full" and made["id"].endswith("F")
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(100000, 100099) g")
    diff = cli(directory, "backup", "create", "--physical", "--type", "diff", "--json")
    assert diff.returncode == 0, diff.stderr
    assert json.loads(diff.stdout)[0]["type"] == "diff"
    listed = cli(directory, "backup", "list")
    assert listed.returncode == 0, listed.stderr
    assert made["id"] in listed.stdout and "diff" in listed.stdout
    assert "restorable from " in listed.stdout and "+00 to " in listed.stdout
    as_json = json.loads(cli(directory, "backup", "list", "--json").stdout)
    assert {b["type"] for b in as_json if b.get("kind") == "physical"} == {"full", "diff"}


def test_a_time_before_the_window_is_refused_and_nothing_is_touched(platform):
    directory, *_ = platform
    before = query(directory, "SELECT count(*) FROM drill")
    refused = cli(directory, "backup", "restore", "--to", "2001-01-01 00:00:00+00", "--yes")
    assert refused.returncode == 2, refused.stderr
    assert "before the oldest backup" in refused.stderr and "Traceback" not in refused.stderr
    no_zone = cli(directory, "backup", "restore", "--to", "2026-12-06 10:15:00", "--yes")
    assert no_zone.returncode == 2 and "time zone" in no_zone.stderr
    assert query(directory, "SELECT count(*) FROM drill") == before


def test_drill_restore_to_a_time_keeps_every_row_up_to_it_and_none_after(platform, docker_client):
    directory, project, *_ = platform
    query(directory, "DELETE FROM drill")
    cli(directory, "backup", "create", "--physical")
    for i in range(1, 31):
        query(directory, "INSERT INTO drill (id) VALUES (%s)", (i,))
        time.sleep(0.05)
    time.sleep(0.3)
    ((t,),) = query(directory, "SELECT clock_timestamp()")
    time.sleep(0.3)
    for i in range(31, 61):
        query(directory, "INSERT INTO drill (id) VALUES (%s)", (i,))
        time.sleep(0.05)
    archived_past(directory)
    started = time.monotonic()
    restored = cli(directory, "backup", "restore", "--to", t.isoformat(sep=" "), "--yes")
    assert restored.returncode == 0, restored.stderr
    print(f"restore --to took {time.monotonic() - started:.1f}s")
    ids = [row[0] for row in query(directory, "SELECT id FROM drill ORDER BY id")]
    assert ids == list(range(1, 31)), ids
    assert "kept on the data volume as /var/lib/postgresql/data/pgdata.replaced-" in restored.stderr
    container = docker_client.containers.get(f"{project}-postgres")
    code, out = container.exec_run(["sh", "-c", "ls -d /var/lib/postgresql/data/pgdata.*"])
    assert code == 0 and b"pgdata.replaced-" in out and b"pgdata.restore-" not in out, out
    assert scratch_containers(docker_client, project) == []
    # the restored database archives on: a new timeline, into the same repository, its history
    # file pushed at the first try (no failure for backups.wal_archiving to see)
    query(directory, "INSERT INTO drill (id) VALUES (1000)")
    assert archived_past(directory)[:8] == "00000002"
    assert list((directory / "backups/pitr/archive").rglob("00000002.history")), "no history file archived"
    assert query(directory, "SELECT failed_count, last_failed_wal FROM pg_stat_archiver") == [(0, None)]
    passed = gate(directory)
    assert passed["status"] == "pass", passed


def archived_on(directory: Path, timeline: str) -> list[Path]:
    return sorted(
        p
        for p in (directory / "backups/pitr/archive").rglob(f"{timeline}*")
        if p.is_file() and "-" in p.name and ".partial" not in p.name
    )


def test_a_second_restore_follows_the_new_timeline_and_names_a_segment_missing_on_it(platform, docker_client):
    """After the drill's restore (timeline 2, from a backup taken on timeline 1): a segment of
    timeline 2 missing is named though timeline 1 has one at its place, and a restore to a time
    on timeline 2 reads timeline 1 up to the switch, then timeline 2."""
    directory, project, *_ = platform
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(1001, 1010) g")
    archived_past(directory)
    ((t2,),) = query(directory, "SELECT clock_timestamp()")
    time.sleep(0.3)
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(1011, 1020) g")
    archived_past(directory)
    query(directory, "INSERT INTO drill (id) VALUES (1021)")
    archived_past(directory)
    expected = [row[0] for row in query(directory, "SELECT id FROM drill WHERE id <= 1010 ORDER BY id")]
    # the switch point's segment: timeline 1 has its own copy (the live database wrote on past it
    # until the swap), which a restore along timeline 2 must not take for it
    on_one = {p.name[8:24] for p in archived_on(directory, "00000001")}
    victim = [p for p in archived_on(directory, "00000002") if p.name[8:24] in on_one][-1]
    assert victim != archived_on(directory, "00000002")[-1]  # newer segments need it
    aside = victim.with_name("aside")
    victim.rename(aside)
    before = query(directory, "SELECT id FROM drill ORDER BY id")
    try:
        refused = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    finally:
        aside.rename(victim)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert f"lacks 1 WAL segment(s): {victim.name[:24]}" in refused.stderr.replace("\n", " "), refused.stderr
    assert query(directory, "SELECT id FROM drill ORDER BY id") == before
    assert scratch_containers(docker_client, project) == []
    restored = cli(directory, "backup", "restore", "--to", t2.isoformat(sep=" "), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert [row[0] for row in query(directory, "SELECT id FROM drill ORDER BY id")] == expected
    assert query(directory, "SELECT failed_count FROM pg_stat_archiver") == [(0,)]


def test_restore_to_latest_keeps_what_was_archived(platform):
    directory, *_ = platform
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(2000, 2009) g")
    archived_past(directory)
    expected = query(directory, "SELECT id FROM drill ORDER BY id")
    restored = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert query(directory, "SELECT id FROM drill ORDER BY id") == expected
    archived_by_timeout(directory)  # the swap's start: archive_timeout honoured at once


def test_restore_to_a_backup_gives_the_database_as_it_was_taken(platform):
    directory, *_ = platform
    query(directory, "DELETE FROM drill")
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(1, 5) g")
    made = cli(directory, "backup", "create", "--physical", "--type", "incr", "--json")
    assert made.returncode == 0, made.stderr
    label = json.loads(made.stdout)[0]["id"]
    assert label.endswith("I")
    query(directory, "INSERT INTO drill (id) SELECT g FROM generate_series(6, 9) g")
    archived_past(directory)
    unknown = cli(directory, "backup", "restore", "--to-backup", "20000101-000000F", "--yes")
    assert unknown.returncode == 2 and "not in the repository" in unknown.stderr
    restored = cli(directory, "backup", "restore", "--to-backup", label, "--yes")
    assert restored.returncode == 0, restored.stderr
    assert [row[0] for row in query(directory, "SELECT id FROM drill ORDER BY id")] == [1, 2, 3, 4, 5]


def test_a_restore_that_fails_leaves_the_live_data_and_nothing_behind(platform, docker_client):
    directory, project, *_ = platform
    before = query(directory, "SELECT id FROM drill ORDER BY id")
    repo = directory / "backups/pitr"
    mode = repo.stat().st_mode & 0o777
    backups = cli(directory, "backup", "list", "--json")
    repo.chmod(0o000)  # the repository cannot be read: refused before anything is touched
    try:
        failed = cli(directory, "backup", "restore", "--to", "latest", "--yes")
    finally:
        repo.chmod(mode)
    assert backups.returncode == 0
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    assert "repository of stanza" in failed.stderr and "cannot be used" in failed.stderr, failed.stderr
    assert query(directory, "SELECT id FROM drill ORDER BY id") == before
    assert scratch_containers(docker_client, project) == []
    container = docker_client.containers.get(f"{project}-postgres")
    code, out = container.exec_run(["sh", "-c", "ls -d /var/lib/postgresql/data/pgdata.restore-* 2>/dev/null; true"])
    assert out.strip() == b"", out
