"""Guards against bugs a developer would plant in `migrate down`, with no database: the pure
plan refuses a migration whose file changed since it was applied, before anything runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mindscape_ops.errors import OperationFailed
from mindscape_ops.migrate.files import parse
from mindscape_ops.migrate.pending import AppliedMigration, plan_down


def migration(version: str, up: str, down: str = "DROP TABLE t;"):
    return parse(Path(f"migrations/{version}_m{version}.sql"), f"-- migrate:up\n{up}\n-- migrate:down\n{down}\n")


def applied(m, second: int) -> AppliedMigration:
    at = datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)
    return AppliedMigration(m.version, m.name, m.checksum, at, 1, "me@host")


def test_down_refuses_a_file_edited_since_it_was_applied_and_runs_nothing():
    first = migration("1", "CREATE TABLE a (x int);", "DROP TABLE a;")
    ran = migration("2", "CREATE TABLE b (x int);", "DROP TABLE b;")
    rows = [applied(first, 1), applied(ran, 2)]
    edited = migration("2", "CREATE TABLE b (x int, y int);", "DROP TABLE b;")  # same name, new up section

    assert [r.file.version for r in plan_down([first, ran], rows, 1)] == ["2"]
    with pytest.raises(OperationFailed) as refused:
        plan_down([first, edited], rows, 2)
    assert "2_m2.sql: the file changed since it was applied" in refused.value.message
    assert "nothing was rolled back" in refused.value.hint


class FakeDatabase:
    """The tracking table as `migrate down` reads it, and the down sections it would run."""

    def __init__(self, rows: list[AppliedMigration]) -> None:
        self.rows, self.reverted = rows, []

    def lock(self, timeout_s, echo) -> None:
        pass

    def applied(self) -> list[AppliedMigration]:
        return self.rows

    def revert_all(self, migrations):
        for migration in migrations:
            self.reverted.append(migration.filename)
            yield migration, 1


def test_the_down_command_runs_no_down_section_of_an_edited_file(tmp_path, monkeypatch):
    from contextlib import contextmanager

    from mindscape_ops.migrate import actions, runner
    from mindscape_ops.workspace.project import open_project

    (tmp_path / "platform.yaml").write_text("version: 1\nproject: guards\nservices: {postgres: {}}\n")
    folder = tmp_path / "migrations"
    folder.mkdir()
    first = folder / "1_a.sql"
    first.write_text("-- migrate:up\nCREATE TABLE a (x int);\n-- migrate:down\nDROP TABLE a;\n")
    second = folder / "2_b.sql"
    second.write_text("-- migrate:up\nCREATE TABLE b (x int);\n-- migrate:down\nDROP TABLE b;\n")
    rows = [applied(parse(path, path.read_text()), at) for at, path in enumerate((first, second), 1)]
    database = FakeDatabase(rows)

    @contextmanager
    def connect(target, echo):
        yield database

    monkeypatch.setattr(runner, "connect", connect)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1:9/db")
    project = open_project([tmp_path / "platform.yaml"])

    second.write_text("-- migrate:up\nCREATE TABLE b (x int, y int);\n-- migrate:down\nDROP TABLE b;\n")
    with pytest.raises(OperationFailed, match="2_b.sql: the file changed since it was applied"):
        actions.down(project, steps=1)
    assert database.reverted == []

    second.write_text("-- migrate:up\nCREATE TABLE b (x int);\n-- migrate:down\nDROP TABLE b;\n")  # as applied
    assert [m.filename for m in actions.down(project, steps=1)] == ["2_b.sql"]
    assert database.reverted == ["2_b.sql"]
