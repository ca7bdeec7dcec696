"""Migration files, SQL splitting and the pure plans: no database, no Docker."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.migrate.files import (
    MigrationFileError,
    checksum,
    discover,
    new_file_text,
    new_version,
    parse,
    taken_versions,
)
from mindscape_ops.migrate.pending import AppliedMigration, State, entries, plan_baseline, plan_down, plan_up
from mindscape_ops.migrate.sql import line_and_column, split_statements

from .conftest import run_cli

USERS = """\
-- a comment before the first marker is fine
-- migrate:up
CREATE TABLE users (id bigserial PRIMARY KEY);

INSERT INTO users DEFAULT VALUES;
-- migrate:down
DROP TABLE users;
"""


def migration(version: str, name: str = "m", up: str = "SELECT 1;", down: str | None = "SELECT 2;", options: str = ""):
    text = f"-- migrate:up{options}\n{up}\n" + (f"-- migrate:down\n{down}\n" if down is not None else "")
    return parse(Path(f"migrations/{version}_{name}.sql"), text)


def row(m, checksum_: str | None = None, at: int = 0, method: str = "transaction") -> AppliedMigration:
    applied_at = datetime(2024, 1, 1, 0, 0, at, tzinfo=UTC)
    return AppliedMigration(m.version, m.name, checksum_ or m.checksum, applied_at, 1, "me@host", method)


# -- parsing --------------------------------------------------------------------------------


def test_parse_sections_lines_and_checksum():
    m = parse(Path("20240101000000_create_users.sql"), USERS)
    assert (m.version, m.name) == ("20240101000000", "create_users")
    assert m.up.line == 3 and m.up.transaction
    assert m.up.sql.startswith("CREATE TABLE users")
    assert m.down is not None and m.down.line == 7 and m.down.sql.strip() == "DROP TABLE users;"
    assert m.checksum == checksum(m.up.sql) and len(m.checksum) == 64


def test_checksum_ignores_line_endings_and_blank_edges_but_not_content():
    base = checksum("CREATE TABLE a (x int);\n")
    assert checksum("\r\nCREATE TABLE a (x int);\r\n\r\n") == base
    assert checksum("CREATE TABLE a (x bigint);\n") != base
    crlf = parse(Path("1_a.sql"), USERS.replace("\n", "\r\n"))
    assert crlf.checksum == parse(Path("1_a.sql"), USERS).checksum


def test_transaction_false_option():
    m = migration("1", up="CREATE INDEX CONCURRENTLY i ON t (x);", options=" transaction:false")
    assert m.up.transaction is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CREATE TABLE a (x int);\n", ":1: no `-- migrate:up` marker"),
        ("SELECT 1;\n-- migrate:up\nSELECT 2;\n", ":1: SQL before `-- migrate:up`"),
        ("-- migrate:up transactions:false\nSELECT 1;\n", ":1: unknown migration option 'transactions:"),
        ("-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n", ":3: a second `-- migrate:up` marker"),
        ("-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 2;\n", ":1: `-- migrate:down` comes before"),
    ],
)
def test_parse_errors_name_file_and_line(text, expected):
    with pytest.raises(MigrationFileError) as caught:
        parse(Path("20240101000000_x.sql"), text)
    assert caught.value.message.startswith("20240101000000_x.sql") and expected in caught.value.message
    assert caught.value.exit_code == 2


def test_empty_down_section_counts_as_none():
    assert migration("1", down="-- nothing here\n").down is None
    assert migration("1", down=None).down is None
    assert migration("1", up="-- only a comment").up.is_empty


def test_bad_file_name():
    with pytest.raises(MigrationFileError, match="not a migration file name"):
        parse(Path("create_users.sql"), USERS)


def test_discover_sorts_numerically_and_rejects_duplicates(tmp_path: Path):
    assert discover(tmp_path / "absent") == []
    (tmp_path / "20240102000000_b.sql").write_text(USERS)
    (tmp_path / "900_a.sql").write_text(USERS)
    (tmp_path / "README.md").write_text("not sql")
    assert [m.version for m in discover(tmp_path)] == ["900", "20240102000000"]
    (tmp_path / "0900_dup.sql").write_text(USERS)
    with pytest.raises(MigrationFileError, match="version 900 is also used by 900_a.sql|also used by"):
        discover(tmp_path)


def test_discover_rejects_misnamed_sql(tmp_path: Path):
    (tmp_path / "create_users.sql").write_text(USERS)
    with pytest.raises(MigrationFileError, match="not a migration file name"):
        discover(tmp_path)


# -- splitting SQL -------------------------------------------------------------------------


def test_split_statements_respects_quotes_comments_and_bodies():
    script = """
-- leading comment; with a semicolon
CREATE INDEX CONCURRENTLY a_x ON a (x);
SELECT 'it''s; fine', E'back\\'slash;', "we;ird" FROM t; /* block; /* nested; */ still; */
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
SELECT $$a;b$$
"""
    statements = split_statements(script)
    assert [s.text.split()[0] for s in statements] == ["CREATE", "SELECT", "CREATE", "CREATE", "SELECT"]
    assert statements[0].text == "CREATE INDEX CONCURRENTLY a_x ON a (x)"
    assert statements[1].text.endswith('"we;ird" FROM t')
    assert statements[3].text.endswith("END; END")
    assert statements[4].text == "SELECT $$a;b$$"
    for s in statements:
        assert script[s.offset :].startswith(s.text)


def test_split_statements_keeps_parenthesised_semicolons_together():
    rule = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))"
    assert [s.text for s in split_statements(f"{rule};\nSELECT 1;")] == [rule, "SELECT 1"]


def test_split_statements_of_comments_only_is_empty():
    assert split_statements("-- nothing\n/* at all; */\n  ;\n") == []


def test_line_and_column():
    text = "ab\ncde\n\nf"
    assert line_and_column(text, 0) == (1, 1)
    assert line_and_column(text, 4) == (2, 2)
    assert line_and_column(text, 8) == (4, 1)


# -- plans ---------------------------------------------------------------------------------


def test_entries_states():
    a, b, c = migration("1", "a"), migration("2", "b"), migration("3", "c")
    gone = AppliedMigration("4", "gone", "x" * 64)
    found = entries([a, b, c], [row(a), row(b, checksum_="0" * 64), gone])
    assert [(e.version, e.state) for e in found] == [
        ("1", State.APPLIED),
        ("2", State.CHANGED),
        ("3", State.PENDING),
        ("4", State.MISSING),
    ]
    assert found[2].out_of_order  # version 4 was applied, so 3 would now run out of order


def test_plan_up_applies_pending_in_order_up_to_target():
    a, b, c = migration("1", "a"), migration("2", "b"), migration("3", "c")
    assert plan_up([c, a, b][::-1], [row(a)]).to_apply == [b, c]
    assert plan_up([a, b, c], [], to="2").to_apply == [a, b]
    with pytest.raises(UsageError, match="--to 7"):
        plan_up([a, b, c], [], to="7")


def test_plan_up_stops_on_changed_and_missing():
    a, b = migration("1", "a"), migration("2", "b")
    plan = plan_up([a, b], [row(a, checksum_="0" * 64), AppliedMigration("0", "gone", "x")])
    kinds = [p.kind for p in plan.problems]
    assert kinds == ["missing", "changed"]
    assert "0_gone.sql was applied but its file is gone" in plan.problems[0].message
    assert "1_a.sql changed after it was applied" in plan.problems[1].message
    assert "restore" in plan.hint


def test_plan_up_reports_out_of_order_unless_allowed():
    a, b, c = migration("1", "a"), migration("2", "b"), migration("3", "c")
    plan = plan_up([a, b, c], [row(a), row(c)])
    assert [p.kind for p in plan.problems] == ["out-of-order"]
    assert "2_b.sql was never applied" in plan.problems[0].message and "3_c.sql" in plan.problems[0].message
    assert entries([a, b, c], [row(a), row(c)])[1].out_of_order
    allowed = plan_up([a, b, c], [row(a), row(c)], allow_out_of_order=True)
    assert not allowed.problems and allowed.to_apply == [b]


def test_plan_up_refuses_empty_up_section():
    plan = plan_up([migration("1", "todo", up="-- later")], [])
    assert [p.kind for p in plan.problems] == ["empty"]


def test_plan_up_refuses_transaction_control_in_a_transactional_section():
    commit = migration("1", "tx", up="BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;")
    plan = plan_up([commit], [])
    assert [p.kind for p in plan.problems] == ["transaction-control"]
    assert plan.problems[0].message.endswith("1_tx.sql:2: ends the migration's transaction")
    assert "remove BEGIN/COMMIT" in plan.hint
    atomic = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;"
    assert not plan_up([migration("1", up=atomic)], []).problems
    assert not plan_up([migration("1", up="COMMIT;", options=" transaction:false")], []).problems


def test_plan_down_newest_applied_first_and_refusals():
    a, b, c = migration("1", "a"), migration("2", "b"), migration("3", "c")
    applied = [row(a, at=1), row(c, at=2), row(b, at=3)]  # b applied last (out of order)
    assert [r.file.version for r in plan_down([a, b, c], applied, 2)] == ["2", "3"]
    assert len(plan_down([a, b, c], applied, 10)) == 3
    no_down = migration("3", "c", down=None)
    with pytest.raises(OperationFailed, match="3_c.sql: has no `-- migrate:down` section"):
        plan_down([a, b, no_down], [row(a, at=1), row(no_down, at=2)], 1)
    with pytest.raises(OperationFailed, match="its file is gone"):
        plan_down([a], [row(a, at=1), row(b, at=2)], 2)
    with pytest.raises(UsageError):
        plan_down([a], [row(a)], 0)


def test_plan_baseline():
    a, b, c = migration("1", "a"), migration("2", "b"), migration("3", "c")
    assert plan_baseline([a, b, c], [row(a)], "2") == [b]
    with pytest.raises(UsageError, match="baseline 5"):
        plan_baseline([a, b, c], [], "5")


# -- new -----------------------------------------------------------------------------------


def test_new_version_is_utc_timestamp_and_skips_taken():
    now = datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert new_version(set(), now) == "20240131235959"
    assert new_version({20240131235959}, now) == "20240201000000"


def test_template_parses_with_empty_sections():
    m = parse(Path("20240101000000_x.sql"), new_file_text("x"))
    assert m.up.is_empty and m.down is None and m.up.transaction


def test_taken_versions_ignores_broken_files(tmp_path: Path):
    (tmp_path / "12_a.sql").write_text("garbage")
    (tmp_path / "notes.sql").write_text("")
    assert taken_versions(tmp_path) == {12}


def test_cli_new_writes_template_and_validates_name(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: newtest\nbackups: {enabled: false}\n")
    made = run_cli("migrate", "new", "create_users", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    [path] = (tmp_path / "migrations").glob("*_create_users.sql")
    assert "-- migrate:up" in path.read_text() and "-- migrate:down" in path.read_text()
    assert "migrate new" in (tmp_path / ".mindscape" / "audit.log").read_text()
    bad = run_cli("migrate", "new", "Create-Users", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid migration name" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_migrate_cli_module_imports_nothing_heavy():
    code = (
        "import sys, mindscape_ops.cli.database, mindscape_ops.migrate; "
        "print([m for m in ('psycopg', 'pydantic', 'docker') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
