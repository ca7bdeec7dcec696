"""The Postgres side of migrations (psycopg 3): one connection and one advisory lock for a
whole run; each migration commits together with its tracking row, or not at all.

Tracking table: `mindscape.migrations` (its own schema, so it never mixes with the
application's tables). Lock: a session-level `pg_advisory_lock(MIGRATION_LOCK)`, held from
before the tracking table is read until the run ends; advisory locks are per database.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg import generators, pq, sql
from psycopg.conninfo import conninfo_to_dict

from mindscape_ops.errors import EnvironmentUnusable, MindscapeError, OperationFailed, UsageError
from mindscape_ops.migrate.failures import MigrationFailed, after_failure, failure_in_script, first_line
from mindscape_ops.migrate.files import MigrationFile, Section, shown
from mindscape_ops.migrate.pending import AppliedMigration
from mindscape_ops.migrate.script import compose
from mindscape_ops.migrate.sql import Statement
from mindscape_ops.provision.endpoints import DatabaseTarget

SCHEMA = "mindscape"
TABLE = f"{SCHEMA}.migrations"
MIGRATION_LOCK = 0x6D696E6473636170  # b"mindscap" as a bigint: the advisory lock key
NOTICE_AFTER_S = 3.0  # how long a run waits for the lock quietly before naming the holder

Echo = Callable[[str], None]

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {TABLE} (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms integer NOT NULL DEFAULT 0,
    applied_by  text NOT NULL,
    method      text NOT NULL CHECK (method IN ('transaction', 'no-transaction', 'baseline'))
);
COMMENT ON TABLE {TABLE} IS 'applied by `mindscape migrate`; checksum: sha256 of the up section';
"""
_INSERT = (
    f"INSERT INTO {TABLE} (version, name, checksum, duration_ms, applied_by, method) VALUES (%s, %s, %s, %s, %s, %s)"
)
# The record of a migration run in one round trip: its duration measured by the server, from
# the receipt of the script (statement_timestamp() is the same for every statement in it).
_RECORD = (
    f"INSERT INTO {TABLE} (version, name, checksum, duration_ms, applied_by, method) VALUES ({{}}, {{}}, {{}}, "
    "round(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::int, {}, 'transaction')"
)
_FORGET = f"DELETE FROM {TABLE} WHERE version = {{}}"
# COPY to or from the client would leave the connection in copy mode: such a section runs statement by statement.
_COPY = re.compile(r"copy\b", re.IGNORECASE)
_SELECT = f"SELECT version, name, checksum, applied_at, duration_ms, applied_by, method FROM {TABLE}"


@contextlib.contextmanager
def connect(target: DatabaseTarget, echo: Echo) -> Iterator[Database]:
    """An autocommit connection (transactions are explicit), closed at the end, which also
    releases the lock. Connection problems become EnvironmentUnusable (exit 3)."""
    params = _params(target)
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.Error as exc:
        raise _unreachable(target, params, exc) from None
    conn.add_notice_handler(lambda diag: echo(f"  {diag.severity}: {diag.message_primary}"))
    try:
        yield Database(conn, target)
    except psycopg.Error as exc:
        if conn.broken:
            raise EnvironmentUnusable(
                f"lost the connection to {target.display}: {first_line(exc)}",
                "check that the server is up; a migration whose transaction did not commit was not recorded "
                "and runs again next time",
            ) from None
        raise OperationFailed(
            f"{target.display}: {exc.diag.message_primary or first_line(exc)}",
            f"the migration role needs to create and write {TABLE} (CREATE on the database, or an existing "
            f"schema {SCHEMA} it owns)"
            if isinstance(exc, pg_errors.InsufficientPrivilege)
            else None,
        ) from None
    finally:
        conn.close()


def _params(target: DatabaseTarget) -> dict[str, str]:
    try:
        params = conninfo_to_dict(target.conninfo)
    except psycopg.ProgrammingError:
        raise UsageError(
            "the database URL is not a valid Postgres connection string",
            "use the form postgresql://USER:PASSWORD@HOST:5432/DBNAME",
        ) from None
    params.setdefault("connect_timeout", "10")
    params.setdefault("application_name", "mindscape migrate")
    return params


def _unreachable(target: DatabaseTarget, params: dict[str, str], exc: psycopg.Error) -> MindscapeError:
    host, port = params.get("host") or "localhost (socket)", params.get("port") or "5432"
    reason = first_line(exc)
    password = params.get("password")
    if password:
        reason = reason.replace(password, "***")
    if target.external:
        hint = (
            f"check the URL's host {host} and port {port}, that this machine may connect to it "
            "(firewall, allowed addresses, sslmode), and the user, password and database name"
        )
    else:
        hint = (
            f"is postgres running? `mindscape up postgres` starts it and `mindscape status` shows it; "
            f"it should answer on {host}:{port} with the password in .mindscape/secrets.env"
        )
    message = f"cannot reach the database at {host}:{port} ({target.display}): {reason}"
    return EnvironmentUnusable(message, hint)


class Database:
    def __init__(self, conn: psycopg.Connection, target: DatabaseTarget) -> None:
        self.conn, self.target = conn, target

    # -- the lock ----------------------------------------------------------------------

    def lock(self, timeout_s: float, echo: Echo) -> None:
        """Wait for the migration lock: quietly at first, then naming who holds it."""
        quiet = min(timeout_s, NOTICE_AFTER_S)
        if self._wait_for_lock(quiet):
            return
        if timeout_s > quiet:
            echo(
                f"waiting for the migration lock, held by {self.lock_holder()}; "
                f"up to {timeout_s - quiet:.0f}s more (--lock-timeout)"
            )
            if self._wait_for_lock(timeout_s - quiet):
                return
        raise OperationFailed(
            f"gave up after {timeout_s:g}s waiting for the migration lock held by {self.lock_holder()}",
            "another `mindscape migrate` is running against this database: let it finish and run again, "
            "raise --lock-timeout, or if that session hangs, end it with SELECT pg_terminate_backend(PID)",
        )

    def _wait_for_lock(self, seconds: float) -> bool:
        if seconds <= 0:
            return bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", [MIGRATION_LOCK]).fetchone()[0])
        try:
            with self.conn.transaction():
                # lock_timeout bounds the wait; the lock itself is session-level and outlives the transaction.
                self.conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])
                self.conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
            return True
        except pg_errors.LockNotAvailable:
            return False

    def lock_holder(self) -> str:
        row = self.conn.execute(
            "SELECT l.pid, a.application_name, a.usename, host(a.client_addr) FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
            [MIGRATION_LOCK >> 32, MIGRATION_LOCK & 0xFFFFFFFF],
        ).fetchone()
        if row is None:
            return "another session"
        pid, app, user, addr = row
        parts = (app, f"user {user}" if user else "", f"from {addr}" if addr else "")
        about = ", ".join(part for part in parts if part)
        return f"pid {pid}" + (f" ({about})" if about else "")

    # -- the tracking table ------------------------------------------------------------

    def has_tracking_table(self) -> bool:
        return self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLE]).fetchone()[0]

    def ensure_tracking_table(self) -> None:
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
        # schema exists, which a managed database's migration role may not have.
        if not self.has_tracking_table():
            with self.conn.transaction():
                self.conn.execute(_CREATE)

    def applied(self) -> list[AppliedMigration]:
        if not self.has_tracking_table():
            return []
        return [AppliedMigration(*row) for row in self.conn.execute(_SELECT).fetchall()]

    # -- running migrations ------------------------------------------------------------

    def apply(self, migration: MigrationFile, applied_by: str) -> int:
        """Run the up section and record it; returns the time it took in ms."""
        started = time.perf_counter()
        section = migration.up
        if _in_one_trip(section):
            values = (migration.version, migration.name, migration.checksum, applied_by)
            self._run_script(migration, section, "up", _RECORD.format(*map(self._quoted, values)))
            return _ms_since(started)
        if section.transaction:
            with self.conn.transaction():
                self._run_each(migration, section)
                took = _ms_since(started)
                self.conn.execute(_INSERT, _row(migration, took, applied_by, "transaction"))
        else:
            self._run_each(migration, section)
            took = _ms_since(started)
            self.conn.execute(_INSERT, _row(migration, took, applied_by, "no-transaction"))
        self._reset_session()
        return took

    def revert(self, migration: MigrationFile) -> int:
        """Run the down section and forget the migration; returns the time it took in ms."""
        started = time.perf_counter()
        section = migration.down
        assert section is not None
        if _in_one_trip(section):
            self._run_script(migration, section, "down", _FORGET.format(self._quoted(migration.version)))
            return _ms_since(started)
        forget = sql.SQL(_FORGET).format(sql.Literal(migration.version))
        if section.transaction:
            with self.conn.transaction():
                self._run_each(migration, section, "down")
                self.conn.execute(forget)
        else:
            self._run_each(migration, section, "down")
            self.conn.execute(forget)
        self._reset_session()
        return _ms_since(started)

    def mark_applied(self, migrations: list[MigrationFile], applied_by: str) -> None:
        """Baseline: record without running."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(_INSERT, [_row(m, 0, applied_by, "baseline") for m in migrations])

    def _run_each(self, migration: MigrationFile, section: Section, direction: str = "up") -> None:
        """The section's statements one by one: inside the caller's transaction, or for
        transaction:false each on its own in autocommit, with nothing to roll back to."""
        statements = section.statements
        for done, statement in enumerate(statements):
            progress = None if section.transaction else (done, len(statements))
            with self._failing_as(migration, section, direction, statement, progress):
                self.conn.execute(statement.text)

    def _quoted(self, text: str) -> str:
        """`text` as an SQL string literal: with standard_conforming_strings (on since Postgres 9.1)
        its quotes doubled, as psycopg's Literal would give at ten times the cost per migration."""
        if self.conn.info.parameter_status("standard_conforming_strings") == "on":
            return "'" + text.replace("'", "''") + "'"
        return sql.Literal(text).as_string(self.conn)

    def _run_script(self, migration: MigrationFile, section: Section, direction: str, record: str) -> None:
        """The section, its record, COMMIT and RESET ALL in one round trip (see script.py)."""
        script = compose(section.statements, record)
        try:
            results = self._send(script.text)
        except psycopg.Error as exc:
            if self.conn.broken:
                raise self._lost(migration, direction, exc, None) from None
            raise
        failed = next((i for i, result in enumerate(results) if result.status == pq.ExecStatus.FATAL_ERROR), None)
        idle = self.conn.info.transaction_status == pq.TransactionStatus.IDLE
        if failed is None and idle:  # its COMMIT ran: the migration and its record are in
            return
        if self.conn.broken:
            raise self._lost(migration, direction, _error(results, failed), None)
        if not idle:
            self.conn.execute("ROLLBACK")
        if failed is None:  # the section's end left something open that took in the COMMIT
            raise OperationFailed(
                f"migration {migration.filename} ({direction}) did not reach its COMMIT: was its end cut off?",
                after_failure(direction, None),
            )
        raise failure_in_script(migration, section, direction, script, failed, _error(results, failed))

    def _send(self, text: str) -> list[pq.abc.PGresult]:
        # psycopg's cursors keep only a script's first error, not which statement raised it: the
        # low-level results say that (psycopg's own execute() runs the same generator).
        with self.conn.lock:
            self.conn.pgconn.send_query(text.encode(self.conn.info.encoding))
            return self.conn.wait(generators.execute(self.conn.pgconn))

    def _reset_session(self) -> None:
        # One connection serves the whole run: a migration's `SET search_path` must not leak into the next.
        self.conn.execute("RESET ALL")

    @contextlib.contextmanager
    def _failing_as(
        self,
        migration: MigrationFile,
        section: Section,
        direction: str,
        statement: Statement,
        progress: tuple[int, int] | None,
    ) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            if self.conn.broken:
                raise self._lost(migration, direction, exc, progress) from None
            failure = MigrationFailed.from_error(migration, section, direction, exc, statement, progress)
            raise failure from None

    def _lost(
        self, migration: MigrationFile, direction: str, exc: psycopg.Error, progress: tuple[int, int] | None
    ) -> EnvironmentUnusable:
        if progress is None:
            fate = "its transaction did not commit, so none of it took effect and nothing was recorded"
        else:
            done, total = progress
            fate = (
                f"it runs outside a transaction: {done} of its {total} statements had completed and stay "
                "in effect, the one running may or may not have; nothing was recorded"
            )
        return EnvironmentUnusable(
            f"lost the connection to {self.target.display} while running {shown(migration.path)} "
            f"({direction}): {first_line(exc)}",
            f"{fate}; check that the server is up, then run `mindscape migrate {direction}` again",
        )


def _in_one_trip(section: Section) -> bool:
    return section.transaction and not any(_COPY.match(statement.text) for statement in section.statements)


def _error(results: list[pq.abc.PGresult], failed: int | None) -> psycopg.Error:
    if failed is None:
        return psycopg.OperationalError("the connection was closed")
    return pg_errors.error_from_result(results[failed])


def _row(migration: MigrationFile, took_ms: int, applied_by: str, method: str) -> list[object]:
    return [migration.version, migration.name, migration.checksum, took_ms, applied_by, method]


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
