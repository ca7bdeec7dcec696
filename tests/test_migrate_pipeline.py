"""Transactional migrations pipelined (mindscape_ops/migrate/runner.py) against a real Postgres:
a batch is one wait; what that must not change (each migration commits with its record or not
at all, nothing after a failure runs, the session reset, the server-measured duration, failures
at COMMIT and in an unfinished section, batches mixed with sections that cannot be pipelined).
Fixtures and helpers from test_migrate_postgres.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from mindscape_ops.errors import OperationFailed

from .conftest import PgDatabase
from .test_migrate_postgres import Project, failed, ok, provisioned_project, table_exists, tracked

pytestmark = pytest.mark.engine


@pytest.fixture
def project(tmp_path: Path, pg_database: PgDatabase) -> Project:
    return provisioned_project(tmp_path, pg_database)


def up_in_process(project: Project, monkeypatch, batch: int | None = None):
    """`migrate up` as the library call (so the pipeline's batch size can be made small)."""
    from mindscape_ops.migrate import actions, pipeline
    from mindscape_ops.workspace.project import open_project

    if batch is not None:
        monkeypatch.setattr(pipeline, "PIPELINE_BATCH", batch)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    lines: list[str] = []
    result = actions.up(open_project([project.dir / "platform.yaml"]), external=False, echo=lines.append)
    return result, lines


def test_a_batch_of_migrations_is_one_wait(project: Project, pg_database: PgDatabase, monkeypatch):
    """BEGIN, the statements, the record, RESET ALL and COMMIT of every migration go pipelined
    and their answers come back in one wait: a run of 20 waits no more than a run of 2 (a round
    trip apiece made most of a run's time)."""

    def write(versions: range) -> None:
        for i in versions:
            body = f"CREATE TABLE t{i} (x int);\nINSERT INTO t{i} VALUES ({i});\nSET search_path = nowhere;"
            project.write(str(i), f"m{i}", body)

    def waits_of_a_run() -> int:
        waits = []
        with monkeypatch.context() as patched:
            patched.setattr(psycopg.Connection, "wait", lambda conn, *a, **kw: waits.append(1) or wait(conn, *a, **kw))
            up_in_process(project, monkeypatch)
        return len(waits)

    wait = psycopg.Connection.wait
    write(range(1, 2))
    up_in_process(project, monkeypatch)  # makes the tracking table: the runs below find it
    write(range(2, 4))
    two = waits_of_a_run()
    write(range(4, 24))
    assert waits_of_a_run() == two
    rows = pg_database.query("SELECT version, duration_ms, method FROM mindscape.migrations ORDER BY version::int")
    assert [(r[0], r[2]) for r in rows] == [(str(i), "transaction") for i in range(1, 24)]
    assert all(0 <= r[1] < 60_000 for r in rows)
    assert pg_database.query("SELECT sum(x) FROM t23") == [(23,)]


def test_set_in_a_migration_does_not_leak_into_the_next(project: Project, pg_database: PgDatabase):
    project.write("1", "elsewhere", "CREATE SCHEMA other;\nSET search_path = other;\nCREATE TABLE a (x int);")
    project.write("2", "o'brien", "CREATE TABLE b (x int) -- a trailing comment and no semicolon")
    ok(project.migrate("up"))
    assert table_exists(pg_database, "other.a") and table_exists(pg_database, "public.b")
    assert [r[:2] for r in tracked(pg_database)] == [("1", "elsewhere"), ("2", "o'brien")]


def test_failure_at_commit_names_the_migration_and_records_nothing(project: Project, pg_database: PgDatabase):
    project.write("1", "ok", "CREATE TABLE parent (id int PRIMARY KEY);")
    project.write(
        "2",
        "deferred",
        "CREATE TABLE child (p int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO child VALUES (7);",
    )
    output = failed(project.migrate("up"))
    assert "migration 2_deferred.sql (up) failed: ERROR: insert or update on table" in output
    assert "its transaction was rolled back" in output
    assert [r[0] for r in tracked(pg_database)] == ["1"] and not table_exists(pg_database, "child")


def test_a_section_left_open_fails_on_its_last_line(project: Project, pg_database: PgDatabase):
    project.write("1", "open", "CREATE TABLE a (x int);\nSELECT (1")
    output = failed(project.migrate("up"))
    assert "migrations/1_open.sql:3:10: ERROR: syntax error" in output
    assert tracked(pg_database) == [] and not table_exists(pg_database, "a")


def test_a_failure_mid_batch_keeps_those_before_and_runs_none_after(
    project: Project, pg_database: PgDatabase, monkeypatch
):
    """Across batches of 3: migrations 1-4 commit with their records, 5 fails on its second
    statement and rolls back, 6-8 (in the same batch and the next) never run."""
    for i in range(1, 9):
        body = f"CREATE TABLE t{i} (x int);\nINSERT INTO t{i} VALUES ({i});"
        if i == 5:
            body = "CREATE TABLE t5 (x int);\nINSERT INTO t5 VALUES ('five');"
        project.write(str(i), f"m{i}", body)
    with pytest.raises(OperationFailed) as caught:
        up_in_process(project, monkeypatch, batch=3)
    message = str(caught.value)
    assert "migration 5_m5.sql (up) failed" in message
    assert "migrations/5_m5.sql:3:" in message and "invalid input syntax for type integer" in message
    assert "its transaction was rolled back" in caught.value.hint
    assert [r[0] for r in tracked(pg_database)] == ["1", "2", "3", "4"]
    assert [i for i in range(1, 9) if table_exists(pg_database, f"t{i}")] == [1, 2, 3, 4]
    project.write("5", "m5", "CREATE TABLE t5 (x int);\nINSERT INTO t5 VALUES (5);")
    result, lines = up_in_process(project, monkeypatch, batch=3)
    assert [m.version for m, _ in result.applied] == ["5", "6", "7", "8"]
    assert lines == [f"applied {m.filename} ({took} ms)" for m, took in result.applied]
    assert pg_database.query("SELECT sum(x) FROM t8") == [(8,)]


def test_the_recorded_duration_is_the_migrations_own(project: Project, pg_database: PgDatabase, monkeypatch):
    """In a pipeline the server measures each migration from its own transaction's start, not
    from the pipeline's: a slow one shows its time, the quick one after it does not inherit it."""
    project.write("1", "slow", "SELECT pg_sleep(0.4);")
    project.write("2", "quick", "CREATE TABLE q (x int);")
    result, lines = up_in_process(project, monkeypatch)
    took = dict((m.version, ms) for m, ms in result.applied)
    assert 400 <= took["1"] < 5000 and took["2"] < 300
    rows = dict(pg_database.query("SELECT version, duration_ms FROM mindscape.migrations"))
    assert rows == took
    assert lines[0] == f"applied 1_slow.sql ({took['1']} ms)"


def test_sections_that_cannot_be_pipelined_run_between_batches(project: Project, pg_database: PgDatabase, monkeypatch):
    """A COPY section and a transaction:false one run statement by statement, in their place."""
    project.write("1", "a", "CREATE TABLE a (x int);")
    project.write("2", "copy", "CREATE TABLE c (x int);\nCOPY c FROM PROGRAM 'echo 7';")
    project.write("3", "b", "INSERT INTO a SELECT x FROM c;")
    project.write("4", "concurrently", "CREATE INDEX CONCURRENTLY a_x ON a (x);", options=" transaction:false")
    project.write("5", "d", "INSERT INTO a SELECT count(*) FROM pg_indexes WHERE indexname = 'a_x';")
    result, lines = up_in_process(project, monkeypatch, batch=2)
    assert [m.version for m, _ in result.applied] == ["1", "2", "3", "4", "5"]
    assert "4_concurrently.sql: transaction:false, statement by statement outside a transaction" in lines
    assert pg_database.query("SELECT x FROM a ORDER BY x") == [(1,), (7,)]
    assert [r[3] for r in tracked(pg_database)] == ["transaction"] * 3 + ["no-transaction", "transaction"]


def test_down_over_several_steps_stops_at_a_failing_section(project: Project, pg_database: PgDatabase):
    for i in range(1, 5):
        down = "DROP TABLE nowhere;" if i == 3 else f"DROP TABLE t{i};"
        project.write(str(i), f"m{i}", f"CREATE TABLE t{i} (x int);", down=down)
    ok(project.migrate("up"))
    output = failed(project.migrate("down", "--steps", "3"))
    assert "rolled back 4_m4.sql" in output and "migration 3_m3.sql (down) failed" in output
    assert 'migrations/3_m3.sql:5: ERROR: table "nowhere" does not exist' in output
    assert [r[0] for r in tracked(pg_database)] == ["1", "2", "3"]
    assert [i for i in range(1, 5) if table_exists(pg_database, f"t{i}")] == [1, 2, 3]


def test_ctrl_c_mid_batch_tells_what_was_applied_and_cancels_the_rest(project: Project, pg_database: PgDatabase):
    """The answers of a batch come at its end: an interrupt still names the migrations that
    committed before it, cancels the one running (no 30 s wait) and records nothing more."""
    for i in range(1, 4):
        project.write(str(i), f"m{i}", f"CREATE TABLE t{i} (x int);")
    project.write("4", "slow", "CREATE TABLE t4 (x int);\nSELECT pg_sleep(30);")
    project.write("5", "after", "CREATE TABLE t5 (x int);")
    env = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "migrate", "up"],
        cwd=project.dir,
        env={**env, "COLUMNS": "200", **project.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
        while pg_database.query(sleeping) != [(1,)]:
            assert process.poll() is None and time.monotonic() < deadline, "migration 4 never started"
            time.sleep(0.05)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, stdout + stderr
    assert time.monotonic() - interrupted < 10
    assert [line.split(" (")[0] for line in stdout.splitlines() if line.startswith("applied")] == [
        "applied 1_m1.sql",
        "applied 2_m2.sql",
        "applied 3_m3.sql",
    ]
    assert "Traceback" not in stderr
    assert "interrupted: the migrations listed above as applied stay applied; the one running was cancelled" in stderr
    audit = (project.dir / ".mindscape" / "audit.log").read_text().splitlines()[-1]
    assert "interrupted (exit 130)" in audit
    assert [r[0] for r in tracked(pg_database)] == ["1", "2", "3"]
    assert [i for i in range(1, 6) if table_exists(pg_database, f"t{i}")] == [1, 2, 3]


def test_a_migrations_session_settings_never_reach_the_next_ones_transaction(project: Project, pg_database: PgDatabase):
    """RESET ALL runs inside each migration's transaction: after COMMIT it would open the next
    one's transaction with the settings it was meant to clear (read-only, here)."""
    project.write("1", "readonly", "CREATE TABLE a (x int);\nSET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;")
    project.write("2", "writes", "CREATE TABLE b (x int);")
    ok(project.migrate("up"))
    assert table_exists(pg_database, "a") and table_exists(pg_database, "b")
    assert [r[0] for r in tracked(pg_database)] == ["1", "2"]


def test_a_statement_the_splitter_leaves_holding_two_still_runs(project: Project, pg_database: PgDatabase):
    """A function parameter named `begin` keeps the splitter (as psql's lexer) from ending the
    statement: the pipeline's extended protocol refuses two commands in one query, so that
    migration runs again statement by statement (the simple protocol) and the run goes on."""
    project.write("1", "before", "CREATE TABLE before_f (x int);")
    project.write(
        "2",
        "begin_param",
        "CREATE FUNCTION plus_one(begin int) RETURNS int LANGUAGE sql AS 'SELECT 1';\nCREATE TABLE after_f (x int);",
    )
    project.write("3", "after", "CREATE TABLE later (x int);")
    ok(project.migrate("up"))
    assert all(table_exists(pg_database, name) for name in ("before_f", "after_f", "later"))
    assert pg_database.query("SELECT plus_one(41)") == [(1,)]
    assert [r[0] for r in tracked(pg_database)] == ["1", "2", "3"]
