"""`mindscape migrate` against a real Postgres in a container (mindscape-local/postgres:15).

One container per session (`pg_server`), a fresh database per test (`pg_database`), both from
conftest.py; the CLI runs as a subprocess in a temporary project, reaching the database either
the provisioned way (platform.yaml's services.postgres + .mindscape/secrets.env) or through
DATABASE_URL.
No engine or no image: skipped at a desk, a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from mindscape_ops.migrate.files import checksum
from mindscape_ops.migrate.runner import MIGRATION_LOCK

from .conftest import PG_PASSWORD, PgDatabase, PgServer, run_cli

pytestmark = pytest.mark.engine


# -- projects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    dir: Path
    env: dict[str, str]

    @property
    def migrations(self) -> Path:
        return self.dir / "migrations"

    def migrate(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli("migrate", *args, cwd=self.dir, env=self.env, timeout=timeout)

    def write(self, version: str, name: str, up: str, down: str | None = None, options: str = "") -> Path:
        """A migration file; `options` (e.g. " transaction:false") go on both markers."""
        self.migrations.mkdir(exist_ok=True)
        path = self.migrations / f"{version}_{name}.sql"
        text = f"-- migrate:up{options}\n{up.strip()}\n"
        if down is not None:
            text += f"\n-- migrate:down{options}\n{down.strip()}\n"
        path.write_text(text)
        return path


def provisioned_project(directory: Path, db: PgDatabase) -> Project:
    """The default way: services.postgres on a published port, password in .mindscape/secrets.env."""
    (directory / "platform.yaml").write_text(
        "version: 1\nproject: migtest\nbackups: {enabled: false}\n"
        f"services:\n  postgres: {{port: {db.server.port}, user: {db.server.user}, database: {db.name}}}\n"
    )
    (directory / ".mindscape").mkdir()
    secrets = directory / ".mindscape" / "secrets.env"
    secrets.write_text(f"POSTGRES_PASSWORD={db.server.password}\n")
    secrets.chmod(0o600)
    return Project(directory, {"DATABASE_URL": ""})


def external_project(directory: Path, url: str) -> Project:
    """A managed database: DATABASE_URL set, no postgres service in platform.yaml."""
    (directory / "platform.yaml").write_text("version: 1\nproject: migext\nbackups: {enabled: false}\n")
    return Project(directory, {"DATABASE_URL": url})


@pytest.fixture
def project(tmp_path: Path, pg_database: PgDatabase) -> Project:
    return provisioned_project(tmp_path, pg_database)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def failed(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The combined output of a run that must have exited with `code`, without a traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == code, f"expected exit {code}, got {result.returncode}:\n{output}"
    assert "Traceback" not in output
    return output


def tracked(db: PgDatabase) -> list[tuple]:
    return db.query("SELECT version, name, checksum, method FROM mindscape.migrations ORDER BY version")


def table_exists(db: PgDatabase, name: str) -> bool:
    return db.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]


def status_json(project: Project, code: int = 0) -> dict:
    result = project.migrate("status", "--json")
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


# -- tests --------------------------------------------------------------------------------


def test_up_applies_in_order_and_records(project: Project, pg_database: PgDatabase):
    first = project.write(
        "20240101000000", "create_users", "CREATE TABLE users (id bigserial PRIMARY KEY);", "DROP TABLE users;"
    )
    project.write("20240102000000", "add_name", "ALTER TABLE users ADD COLUMN name text;")
    project.write("20240103000000", "create_orders", "CREATE TABLE orders (id int, user_id bigint);")

    out = ok(project.migrate("up", "--to", "20240102000000")).stdout
    assert "applied 20240101000000_create_users.sql" in out and "create_orders" not in out
    out = ok(project.migrate("up")).stdout
    assert "applied 1 migration(s)" in out
    rows = tracked(pg_database)
    assert [r[0] for r in rows] == ["20240101000000", "20240102000000", "20240103000000"]
    up_section = first.read_text().split("-- migrate:down")[0].split("\n", 1)[1]
    assert rows[0][1:] == ("create_users", checksum(up_section), "transaction")
    [(applied_by, duration)] = pg_database.query(
        "SELECT applied_by, duration_ms FROM mindscape.migrations WHERE version = '20240101000000'"
    )
    assert "@" in applied_by and duration >= 0
    assert table_exists(pg_database, "orders")
    assert "nothing to do" in ok(project.migrate("up")).stdout

    status = status_json(project)
    assert [m["state"] for m in status["migrations"]] == ["applied"] * 3
    assert status["summary"]["applied"] == 3 and status["tracking_table"] == "mindscape.migrations"
    assert PG_PASSWORD not in json.dumps(status)
    assert '"command": "migrate up"' in (project.dir / ".mindscape" / "audit.log").read_text()


def test_apply_pending_library_call(project: Project, pg_database: PgDatabase, monkeypatch):
    from mindscape_ops.migrate import apply_pending
    from mindscape_ops.workspace.project import open_project

    monkeypatch.delenv("DATABASE_URL", raising=False)
    project.write("1", "one", "CREATE TABLE one (x int);")
    lines: list[str] = []
    assert apply_pending(open_project([project.dir / "platform.yaml"]), echo=lines.append) == 1
    assert apply_pending(open_project([project.dir / "platform.yaml"]), echo=lines.append) == 0
    assert len(lines) == 1 and lines[0].startswith("applied 1_one.sql (")
    assert table_exists(pg_database, "one")


def test_failure_rolls_back_records_nothing_and_next_run_resumes(project: Project, pg_database: PgDatabase):
    project.write("20240101000000", "ok", "CREATE TABLE a (x int);")
    bad = project.write(
        "20240102000000",
        "broken",
        "CREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\n\nSELECT x,\n       nosuch\n  FROM b;",
    )
    project.write("20240103000000", "later", "CREATE TABLE c (x int);")

    output = failed(project.migrate("up"))
    assert "applied 20240101000000_ok.sql" in output
    # the bad column is on the file's line 6, column 8
    assert 'migrations/20240102000000_broken.sql:6:8: ERROR: column "nosuch" does not exist' in output
    assert "its transaction was rolled back" in output
    assert [r[0] for r in tracked(pg_database)] == ["20240101000000"]
    assert not table_exists(pg_database, "b") and not table_exists(pg_database, "c")

    bad.write_text(bad.read_text().replace("nosuch", "x"))
    out = ok(project.migrate("up")).stdout
    assert "applied 20240102000000_broken.sql" in out and "applied 20240103000000_later.sql" in out
    assert pg_database.query("SELECT count(*) FROM b") == [(1,)]


@pytest.mark.parametrize(
    ("options", "up", "where"),
    [
        # the server gives a position: line and column
        ("", "CREATE TABLE t (x int);\nSELECT x,\n  nosuch FROM t;", ':4:3: ERROR: column "nosuch" does not'),
        (" transaction:false", "CREATE TABLE t (x int);\n\nSELECT\n  y FROM t;", ':5:3: ERROR: column "y"'),
        # no position: the failing statement's first line
        ("", "SELECT 1;\n-- a comment\nSELECT 1/0;", ":4: ERROR: division by zero"),
        ("", "CREATE TABLE t (x int);\n\nCREATE TABLE u (y int REFERENCES no);", ':4: ERROR: relation "no"'),
        (" transaction:false", "SELECT 1;\nSELECT 1/0;", ":3: ERROR: division by zero"),
    ],
)
def test_error_line_mapping(project: Project, options: str, up: str, where: str):
    project.write("20240101000000", "err", up, options=options)
    output = failed(project.migrate("up"))
    assert f"migrations/20240101000000_err.sql{where}" in output


def test_four_concurrent_runs_apply_each_migration_once(project: Project, pg_database: PgDatabase):
    project.write("20240101000000", "log", "CREATE TABLE applied_log (version text, pid int);")
    for i in range(2, 26):
        version = f"202401010000{i:02d}"
        sql = f"INSERT INTO applied_log VALUES ('{version}', pg_backend_pid());\nSELECT pg_sleep(0.02);"
        project.write(version, f"step_{i}", sql)
    env = {**os.environ, "COLUMNS": "200", **project.env}
    command = [sys.executable, "-m", "mindscape_ops", "migrate", "up"]
    runs = [
        subprocess.Popen(command, cwd=project.dir, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [run.communicate(timeout=120) + (run.returncode,) for run in runs]
    for _, stderr, code in results:
        assert code == 0 and "Traceback" not in stderr, stderr
    applied = sum(stdout.count("applied 2024") for stdout, _, _ in results)
    assert applied == 25
    counts = pg_database.query("SELECT version, count(*) FROM applied_log GROUP BY version")
    assert len(counts) == 24 and {n for _, n in counts} == {1}
    assert pg_database.query("SELECT count(*), count(DISTINCT pid) FROM applied_log") == [(24, 1)]
    assert len(tracked(pg_database)) == 25


def test_second_run_waits_for_the_lock_and_names_the_holder(project: Project, pg_database: PgDatabase):
    project.write("1", "one", "CREATE TABLE one (x int);")
    with psycopg.connect(pg_database.url, autocommit=True, application_name="test-holder") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        pid = holder.info.backend_pid
        started = time.monotonic()
        output = failed(project.migrate("up", "--lock-timeout", "4s"))
        assert time.monotonic() - started >= 4
    assert f"waiting for the migration lock, held by pid {pid} (test-holder" in output
    assert f"gave up after 4s waiting for the migration lock held by pid {pid}" in output
    assert not table_exists(pg_database, "one")
    ok(project.migrate("up"))


def test_changed_migration_stops_up(project: Project, pg_database: PgDatabase):
    path = project.write("1", "one", "CREATE TABLE one (x int);")
    ok(project.migrate("up"))
    path.write_text(path.read_text().replace("x int", "x bigint"))
    project.write("2", "two", "CREATE TABLE two (x int);")
    output = failed(project.migrate("up"))
    assert "1_one.sql changed after it was applied" in output and "stopped before applying anything" in output
    assert not table_exists(pg_database, "two")
    status = status_json(project, code=1)
    assert [m["state"] for m in status["migrations"]] == ["changed", "pending"]
    assert "changed" in failed(project.migrate("status"))


def test_missing_file_stops_up(project: Project, pg_database: PgDatabase):
    path = project.write("1", "one", "CREATE TABLE one (x int);")
    project.write("2", "two", "CREATE TABLE two (x int);")
    ok(project.migrate("up"))
    path.unlink()
    project.write("3", "three", "CREATE TABLE three (x int);")
    assert "1_one.sql was applied but its file is gone" in failed(project.migrate("up"))
    assert not table_exists(pg_database, "three")
    states = [m["state"] for m in status_json(project, code=1)["migrations"]]
    assert states == ["missing", "applied", "pending"]


def test_out_of_order_file_is_reported_not_applied(project: Project, pg_database: PgDatabase):
    project.write("1", "one", "CREATE TABLE one (x int);")
    project.write("3", "three", "CREATE TABLE three (x int);")
    ok(project.migrate("up"))
    project.write("2", "two", "CREATE TABLE two (x int);")
    output = failed(project.migrate("up"))
    assert "2_two.sql was never applied but sorts before the newest applied migration, 3_three.sql" in output
    assert "--allow-out-of-order" in output and not table_exists(pg_database, "two")
    [late] = [m for m in status_json(project)["migrations"] if m["version"] == "2"]
    assert late["state"] == "pending" and late["out_of_order"] is True
    ok(project.migrate("up", "--allow-out-of-order"))
    assert table_exists(pg_database, "two")


def test_transaction_false_create_index_concurrently(project: Project, pg_database: PgDatabase):
    project.write(
        "1", "table", "CREATE TABLE t (a int, b int);\nINSERT INTO t SELECT g, g % 3 FROM generate_series(1, 100) g;"
    )
    project.write(
        "2",
        "indexes",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);",
        "DROP INDEX CONCURRENTLY t_b;\nDROP INDEX CONCURRENTLY t_a;",
        options=" transaction:false",
    )
    out = ok(project.migrate("up")).stdout
    assert "2_indexes.sql: transaction:false" in out
    valid = "SELECT count(*) FROM pg_index WHERE indexrelid::regclass::text IN ('t_a', 't_b') AND indisvalid"
    assert pg_database.query(valid) == [(2,)]
    assert tracked(pg_database)[1][3] == "no-transaction"

    project.write(
        "3", "unique_b", "CREATE UNIQUE INDEX CONCURRENTLY t_b_unique ON t (b);", options=" transaction:false"
    )
    output = failed(project.migrate("up"))
    assert "migrations/3_unique_b.sql:2: ERROR: could not create unique index" in output
    assert "outside a transaction" in output and "INVALID index" in output
    assert [r[0] for r in tracked(pg_database)] == ["1", "2"]

    ok(project.migrate("down"))  # the down section runs statement by statement too
    assert pg_database.query("SELECT count(*) FROM pg_indexes WHERE indexname IN ('t_a', 't_b')") == [(0,)]
    assert [r[0] for r in tracked(pg_database)] == ["1"]

    (project.migrations / "3_unique_b.sql").unlink()
    project.write("4", "forgot_option", "CREATE INDEX CONCURRENTLY t_a2 ON t (a);")
    assert "mark the section `-- migrate:up transaction:false`" in failed(project.migrate("up"))


def test_down_runs_down_sections_newest_first(project: Project, pg_database: PgDatabase):
    for version, name in (("1", "a"), ("2", "b"), ("3", "c")):
        project.write(version, name, f"CREATE TABLE {name} (x int);", f"DROP TABLE {name};")
    ok(project.migrate("up"))
    assert "rolled back 3_c.sql" in ok(project.migrate("down")).stdout
    assert not table_exists(pg_database, "c") and table_exists(pg_database, "b")
    out = ok(project.migrate("down", "--steps", "2")).stdout
    assert out.index("rolled back 2_b.sql") < out.index("rolled back 1_a.sql")
    assert tracked(pg_database) == [] and not table_exists(pg_database, "a")

    ok(project.migrate("up"))
    project.write("4", "no_down", "CREATE TABLE d (x int);")
    ok(project.migrate("up"))
    output = failed(project.migrate("down", "--steps", "2"))
    assert "4_no_down.sql: has no `-- migrate:down` section" in output and "nothing was rolled back" in output
    assert len(tracked(pg_database)) == 4 and table_exists(pg_database, "c")


def test_baseline_marks_without_running(project: Project, pg_database: PgDatabase):
    pg_database.query("CREATE TABLE users (id int); CREATE TABLE orders (id int)")
    project.write("1", "users", "CREATE TABLE users (id int);")
    project.write("2", "orders", "CREATE TABLE orders (id int);")
    project.write("3", "items", "CREATE TABLE items (id int);")
    out = ok(project.migrate("baseline", "2")).stdout
    assert "2 migration(s) marked as applied" in out
    assert [(r[0], r[3]) for r in tracked(pg_database)] == [("1", "baseline"), ("2", "baseline")]
    assert "applied 3_items.sql" in ok(project.migrate("up")).stdout
    assert failed(project.migrate("baseline", "9"), code=2)
    assert '"command": "migrate baseline"' in (project.dir / ".mindscape" / "audit.log").read_text()


def test_dry_run_changes_nothing(project: Project, pg_database: PgDatabase):
    project.write("1", "one", "CREATE TABLE one (x int);")
    project.write("2", "two", "CREATE INDEX CONCURRENTLY two_x ON one (x);", options=" transaction:false")
    out = ok(project.migrate("up", "--dry-run")).stdout
    assert "would apply 2 migration(s)" in out and "CREATE TABLE one (x int);" in out
    assert "transaction:false" in out and "nothing was run" in out
    assert pg_database.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'mindscape'") == [(0,)]
    assert not table_exists(pg_database, "one")
    assert status_json(project)["tracking_table_exists"] is False


def test_external_database_url(tmp_path: Path, pg_database: PgDatabase):
    project = external_project(tmp_path, pg_database.url)
    project.write("1", "one", "CREATE TABLE one (x int);")
    result = ok(project.migrate("up"))
    assert table_exists(pg_database, "one")
    status = project.migrate("status", "--json")
    data = json.loads(status.stdout)
    assert data["migrations"][0]["state"] == "applied"
    assert f"127.0.0.1:{pg_database.server.port}/{pg_database.name}" in data["database"]
    for text in (
        result.stdout,
        result.stderr,
        status.stdout,
        status.stderr,
        (tmp_path / ".mindscape" / "audit.log").read_text(),
    ):
        assert PG_PASSWORD not in text


def test_connection_lost_mid_migration_exits_3(project: Project, pg_database: PgDatabase):
    project.write("1", "one", "CREATE TABLE one (x int);")
    project.write("2", "killed", "CREATE TABLE two (x int);\nSELECT pg_terminate_backend(pg_backend_pid());")
    output = failed(project.migrate("up"), code=3)
    assert "lost the connection" in output and "while running migrations/2_killed.sql (up)" in output
    assert "nothing was recorded" in output
    assert [r[0] for r in tracked(pg_database)] == ["1"] and not table_exists(pg_database, "two")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_exits_3(tmp_path: Path, pg_server: PgServer):
    port = _free_port()
    (tmp_path / "ext").mkdir(exist_ok=True)
    external = external_project(tmp_path / "ext", f"postgresql://app:s3cret@127.0.0.1:{port}/app")
    for args in (("up",), ("status", "--json"), ("down",)):
        output = failed(external.migrate(*args), code=3)
        assert f"cannot reach the database at 127.0.0.1:{port}" in output and "s3cret" not in output
    (tmp_path / "prov").mkdir()
    nowhere = PgDatabase(PgServer("127.0.0.1", port, "app", "pw"), "app")
    provisioned = provisioned_project(tmp_path / "prov", nowhere)
    output = failed(provisioned.migrate("up"), code=3)
    assert f"127.0.0.1:{port}" in output and "mindscape up postgres" in output
