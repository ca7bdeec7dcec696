"""The Postgres side of migrations (psycopg 3): one connection and one advisory lock for a
whole run; each migration commits together with its tracking row, or not at all.

Transactional migrations go to the server pipelined: see pipeline.py.

Tracking table: `mindscape.migrations` (its own schema, so it never mixes with the
application's tables). Lock: a session-level `pg_advisory_lock(MIGRATION_LOCK)`, held from
before the tracking table is read until the run ends; advisory locks are per database.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict

from mindscape_ops.errors import EnvironmentUnusable, MindscapeError, OperationFailed, UsageError
from mindscape_ops.migrate import pipeline
from mindscape_ops.migrate.failures import MigrationFailed, failure_in_pipeline, first_line
from mindscape_ops.migrate.files import MigrationFile, Section, shown
from mindscape_ops.migrate.pending import AppliedMigration
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
# A pipelined migration's record change, returning its duration as the server measured it: from
# its transaction's start (its BEGIN) to now.
_TOOK = "round(extract(epoch FROM clock_timestamp() - transaction_timestamp()) * 1000)::int"
_RECORD = (
    f"INSERT INTO {TABLE} (version, name, checksum, duration_ms, applied_by, method) "
    f"VALUES ({{}}, {{}}, {{}}, {_TOOK}, {{}}, 'transaction') RETURNING duration_ms"
)
_FORGET = f"DELETE FROM {TABLE} WHERE version = {{}}"
_FORGET_TOOK = f"{_FORGET} RETURNING {_TOOK}"
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

    def apply_all(
        self, migrations: list[MigrationFile], applied_by: str, echo: Echo
    ) -> Iterator[tuple[MigrationFile, int]]:
        """Run the up sections in order, each with its record; yields each migration with the
        time it took in ms once it is known applied. Raises at the first failure: what was
        yielded before it stays applied, nothing after it runs."""
        for batch in pipeline.batches(migrations, "up"):
            if pipeline.pipelined(batch[0].up):
                yield from self._run_pipelined(batch, "up", applied_by)
                continue
            (migration,) = batch
            if not migration.up.transaction:
                echo(f"{migration.filename}: transaction:false, statement by statement outside a transaction")
            yield migration, self._apply_each(migration, applied_by)

    def revert_all(self, migrations: list[MigrationFile]) -> Iterator[tuple[MigrationFile, int]]:
        """Run the down sections in the order given and forget each migration; yields each with
        the time it took in ms once it is known reverted. Raises at the first failure."""
        for batch in pipeline.batches(migrations, "down"):
            if pipeline.pipelined(pipeline.section(batch[0], "down")):
                yield from self._run_pipelined(batch, "down", "")
            else:
                yield batch[0], self._revert_each(batch[0])

    def _apply_each(self, migration: MigrationFile, applied_by: str) -> int:
        """A section that cannot be pipelined, statement by statement (COPY; transaction:false)."""
        started = time.perf_counter()
        section = migration.up
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

    def _revert_each(self, migration: MigrationFile) -> int:
        started = time.perf_counter()
        section = pipeline.section(migration, "down")
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

    def _record(self, migration: MigrationFile, direction: str, applied_by: str) -> str:
        if direction == "down":
            return _FORGET_TOOK.format(self._quoted(migration.version))
        values = (migration.version, migration.name, migration.checksum, applied_by)
        return _RECORD.format(*map(self._quoted, values))

    def _run_pipelined(
        self, migrations: list[MigrationFile], direction: str, applied_by: str
    ) -> Iterator[tuple[MigrationFile, int]]:
        """One pipeline: per migration BEGIN, its statements, its record, RESET ALL (inside the
        transaction, so what a migration SETs never reaches the next one's BEGIN) and COMMIT;
        then a Sync. Yields the migrations whose COMMIT answered, in order, and raises for the
        first that did not (the server skipped everything after it)."""
        records = [self._record(migration, direction, applied_by) for migration in migrations]
        queries, spans = pipeline.queries(migrations, direction, records, self.conn.info.encoding)
        received: list[pq.abc.PGresult] = []
        stopped: psycopg.Error | None = None  # the pipeline's own failure: the connection lost, say
        interrupted: KeyboardInterrupt | None = None  # psycopg cancelled the statement running
        with self.conn.lock:
            pgconn = self.conn.pgconn
            pgconn.enter_pipeline_mode()
            try:
                self.conn.wait(pipeline.communicate(pgconn, queries, received))
            except psycopg.Error as exc:
                stopped = exc
            except KeyboardInterrupt as exc:
                interrupted = exc
            finally:
                with contextlib.suppress(psycopg.Error):  # broken, or answers left unread
                    pgconn.exit_pipeline_mode()
        for at, (migration, section, start) in enumerate(spans):
            commit = len(section.statements) + 3  # BEGIN, the statements, the record, RESET ALL, COMMIT
            answers = received[start : start + commit + 1]
            if len(answers) > commit and all(map(pipeline.ok, answers)) and answers[commit].command_status == b"COMMIT":
                yield migration, pipeline.took(answers[commit - 2])
                continue
            failed = next((i for i, answer in enumerate(answers) if answer.status == pipeline.FATAL_ERROR), None)
            if self.conn.broken or failed is None:
                # Without an answer from its COMMIT, it may have committed (with its record) or not.
                unsure = failed is None or failed == commit
                raise self._lost(migration, direction, stopped or _error(answers, failed), None, unsure=unsure)
            if self.conn.info.transaction_status != pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
            if interrupted is not None:  # its statement was cancelled: it took no effect
                raise interrupted
            error = pg_errors.error_from_result(answers[failed])
            if failed <= len(section.statements) and pipeline.maybe_merged(error):
                # A statement the splitter left holding two (psql's lexer would too, e.g. a
                # function parameter named `begin`): the simple protocol runs such text, so does
                # the statement-by-statement path. Its failed attempt left nothing.
                yield (
                    migration,
                    self._revert_each(migration) if direction == "down" else self._apply_each(migration, applied_by),
                )
                yield from self._run_pipelined([m for m, _, _ in spans[at + 1 :]], direction, applied_by)
                return
            raise failure_in_pipeline(migration, section, direction, failed, error)
        if interrupted is not None:
            raise interrupted
        if stopped is not None:
            raise stopped

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
        self,
        migration: MigrationFile,
        direction: str,
        exc: psycopg.Error,
        progress: tuple[int, int] | None,
        unsure: bool = False,
    ) -> EnvironmentUnusable:
        if unsure:
            fate = (
                "the answer to its COMMIT never came: it either took effect together with its record or not at "
                "all (`mindscape migrate status` tells which)"
            )
        elif progress is None:
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


def _error(results: list[pq.abc.PGresult], failed: int | None) -> psycopg.Error:
    if failed is None:
        return psycopg.OperationalError("the connection was closed")
    return pg_errors.error_from_result(results[failed])


def _row(migration: MigrationFile, took_ms: int, applied_by: str, method: str) -> list[object]:
    return [migration.version, migration.name, migration.checksum, took_ms, applied_by, method]


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
