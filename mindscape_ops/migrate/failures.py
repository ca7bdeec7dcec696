"""What a failed migration tells the user: the file, line and column of the failing statement,
the server's message, and what became of the migration (pure: no database here)."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from mindscape_ops.errors import OperationFailed
from mindscape_ops.migrate.files import MigrationFile, Section, shown
from mindscape_ops.migrate.sql import Statement, line_and_column


class MigrationFailed(OperationFailed):
    """A migration's SQL failed on the server; the message points at the file's line."""

    @classmethod
    def from_error(
        cls,
        migration: MigrationFile,
        section: Section,
        direction: str,
        exc: psycopg.Error,
        statement: Statement,
        progress: tuple[int, int] | None,
    ) -> MigrationFailed:
        diag = exc.diag
        offset = statement.offset
        position = int(diag.statement_position) if diag.statement_position else None
        index = offset + position - 1 if position else offset
        line, column = line_and_column(section.sql, index)
        file_line = section.line + line - 1
        where = f"{shown(migration.path)}:{file_line}" + (f":{column}" if position else "")
        text = [
            f"migration {migration.filename} ({direction}) failed",
            f"{where}: {diag.severity or 'ERROR'}: {diag.message_primary or first_line(exc)}",
        ]
        source = section.sql.split("\n")[line - 1] if section.sql else ""
        if source.strip():
            text.append(f"  {file_line} | {source}")
            if position:
                text.append(f"  {' ' * len(str(file_line))} | {' ' * (column - 1)}^")
        extra = (("DETAIL", diag.message_detail), ("HINT", diag.message_hint), ("CONTEXT", diag.context))
        text += [f"{label}: {value}" for label, value in extra if value]
        hint = after_failure(direction, progress)
        if isinstance(exc, pg_errors.ActiveSqlTransaction):
            hint = (
                f"this statement cannot run inside a transaction: mark the section "
                f"`-- migrate:{direction} transaction:false`; {hint}"
            )
        return cls("\n".join(text), hint)


def after_failure(direction: str, progress: tuple[int, int] | None) -> str:
    if progress is None:
        return (
            "its transaction was rolled back: none of the section took effect and nothing was recorded; "
            f"fix the file and run `mindscape migrate {direction}` again, it starts from this migration"
        )
    done, total = progress
    return (
        f"this migration runs outside a transaction (transaction:false), so it cannot roll back: "
        f"{done} of its {total} statements ran before this one and stay in effect; the failing statement "
        "did not take effect, but a failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind "
        "(drop it with DROP INDEX CONCURRENTLY). Nothing was recorded: the next "
        f"`mindscape migrate {direction}` runs the whole section again from its first statement, so make "
        "its statements re-runnable (IF NOT EXISTS / IF EXISTS)"
    )


def failure_in_pipeline(
    migration: MigrationFile, section: Section, direction: str, failed: int, exc: psycopg.Error
) -> OperationFailed:
    """The error of a pipelined section (see runner.py): `failed` is the index of the failing
    query among the migration's BEGIN, its statements, its record, RESET ALL and COMMIT."""
    if 1 <= failed <= len(section.statements):
        return MigrationFailed.from_error(migration, section, direction, exc, section.statements[failed - 1], None)
    # the record, RESET ALL or COMMIT (a deferred constraint, say)
    return OperationFailed(
        f"migration {migration.filename} ({direction}) failed: {exc.diag.severity or 'ERROR'}: "
        f"{exc.diag.message_primary or first_line(exc)}",
        after_failure(direction, None),
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
