"""A transactional migration as one round trip (mindscape_ops/migrate/script.py) against a real
Postgres: what that must not change (the record, the session reset, failures at COMMIT and in
an unfinished section). Fixtures and helpers from test_migrate_postgres.py."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from .conftest import PgDatabase
from .test_migrate_postgres import Project, failed, ok, provisioned_project, table_exists, tracked

pytestmark = pytest.mark.engine


@pytest.fixture
def project(tmp_path: Path, pg_database: PgDatabase) -> Project:
    return provisioned_project(tmp_path, pg_database)


def test_each_migration_is_one_round_trip(project: Project, pg_database: PgDatabase, monkeypatch):
    """BEGIN, the statements, the record, COMMIT and RESET ALL go as one message (script.py):
    a round trip apiece made most of a run's time."""
    from mindscape_ops.migrate import actions
    from mindscape_ops.workspace.project import open_project

    for i in range(1, 21):
        project.write(
            str(i), f"m{i}", f"CREATE TABLE t{i} (x int);\nINSERT INTO t{i} VALUES ({i});\nSET search_path = nowhere;"
        )
    round_trips = []
    wait = psycopg.Connection.wait
    monkeypatch.setattr(
        psycopg.Connection, "wait", lambda conn, *a, **kw: round_trips.append(1) or wait(conn, *a, **kw)
    )
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = actions.up(open_project([project.dir / "platform.yaml"]), external=False)
    assert len(result.applied) == 20
    assert len(round_trips) <= 20 + 10  # the lock and reading the tracking table take a few
    rows = pg_database.query("SELECT version, duration_ms, method FROM mindscape.migrations ORDER BY version::int")
    assert [(r[0], r[2]) for r in rows] == [(str(i), "transaction") for i in range(1, 21)]
    assert all(0 <= r[1] < 60_000 for r in rows)
    assert pg_database.query("SELECT sum(x) FROM t20") == [(20,)]


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
