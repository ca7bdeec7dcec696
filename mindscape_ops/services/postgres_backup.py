"""Postgres backups: `pg_dump -Fc` streamed out, `pg_restore` streamed into.

Inside the postgres container (through the engine's exec: the server's own client version,
nothing needed on the host) or, with $DATABASE_URL set, the host's pg_dump/pg_restore against
that URL. The dump runs in a snapshot exported by our own connection, which counts every
table's rows in that same snapshot: the manifest's counts are exactly the dump's.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mindscape_ops.errors import BackupUnreadable, EnvironmentUnusable, OperationFailed
from mindscape_ops.services import postgres_scratch as scratch
from mindscape_ops.services.contract import BackupContext as Context
from mindscape_ops.services.contract import Checked, Chunks, Dump
from mindscape_ops.services.postgres_databases import connect, copy_properties, create_like, drop, swap

if TYPE_CHECKING:
    import psycopg

    from mindscape_ops.backup.model import Manifest
    from mindscape_ops.provision.endpoints import DatabaseTarget

FORMAT = "pg_dump-custom"
DUMP_ARGS = ("-Fc",)
# The password file is read inside the container: it never crosses the engine's API.
_WITH_PASSWORD = (
    'if [ -r "$POSTGRES_PASSWORD_FILE" ]; then PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"; export PGPASSWORD; fi; '
)
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""


restores_beside = True  # a backup goes into a new database first; --into names it


def refuses_into(name: str) -> str | None:
    """Why `--into name` is refused: the next verify or restore may drop one of these."""
    if not scratch.is_reserved(name):
        return None
    return (
        "names starting with mindscape_verify_, mindscape_restore_ or mindscape_replaced_ "
        "are mindscape's scratch databases (the next verify or restore may drop one)"
    )


def _target(ctx: Context) -> DatabaseTarget:
    return ctx.database_target()


Rows = Callable[[str], Sequence[Sequence[Any]]]  # a query's rows, in one session


def rows_of(conn: psycopg.Connection) -> Rows:
    def rows(query: str) -> Sequence[Sequence[Any]]:
        cursor = conn.execute(query)  # type: ignore[arg-type] - our own constant text
        return cursor.fetchall() if cursor.description else []

    return rows


def count_rows(rows: Rows, parallel: bool = True) -> dict[str, int]:
    """Every table's rows, in the session `rows` queries (psycopg's connection, or the early
    start's own session, whose values are text)."""
    if not parallel:  # one process, not a leader and two workers: beside a dump, the dump comes first
        rows("SET max_parallel_workers_per_gather = 0")
    tables = [str(row[0]) for row in rows(_TABLES)]
    return {table: int(rows(f"SELECT count(*) FROM {table}")[0][0]) for table in tables}


# One round trip opens the transaction whose snapshot the dump and the row counts share and
# reads what the manifest needs (it took four: BEGIN, the snapshot, the version, the size).
SNAPSHOT = (
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
    "SELECT pg_export_snapshot(), current_setting('server_version'), pg_database_size(current_database())"
)


@contextlib.contextmanager
def dump(ctx: Context) -> Iterator[Dump]:
    """The dump is started before this yields: pg_dump runs while the caller readies its store."""
    target = _target(ctx)
    external = target.external

    def start(snapshot: str) -> tuple[Iterator[bytes], Any]:
        args = [*DUMP_ARGS, f"--snapshot={snapshot}"]
        if external:
            return _host("pg_dump", args, target, None), None
        started = _started_in_container(ctx, "pg_dump", args)
        return output_of(started, "pg_dump"), started

    source = target.display if external else f"container {ctx.project.platform.container_name('postgres')}"
    with dumping(target, start, source) as made:
        yield made


@contextlib.contextmanager
def dumping(target: DatabaseTarget, start: Callable[[str], tuple[Iterator[bytes], Any]], source: str) -> Iterator[Dump]:
    """A dump in the snapshot our own connection to `target` exports: `start(snapshot)` runs
    `pg_dump DUMP_ARGS --snapshot=SNAPSHOT` (its output, and what to close when it is not read
    to its end); the rows of every table are counted in the same snapshot while it is read."""
    with connect(target) as conn:  # autocommit: the transaction is the one SNAPSHOT opens
        cursor = conn.execute(SNAPSHOT)
        cursor.nextset()
        snapshot, version, estimate = cursor.fetchone()  # type: ignore[misc]
        chunks, started = start(snapshot)
        made = Dump(chunks, FORMAT, str(version), source, None, estimate)
        with dumping_in(rows_of(conn), conn.cancel_safe, made, started) as reading:
            yield reading


@contextlib.contextmanager
def dumping_in(rows: Rows, cancel: Callable[[], None], made: Dump, started: Any) -> Iterator[Dump]:
    """`made`, a dump started in the snapshot of the session `rows` queries (ours, or the early
    start's, which holds it until `started` is closed): that session counts every table's rows
    while the chunks are read (`cancel` stops its query); `started` is closed at the end."""
    made.chunks = _counting_meanwhile(made.chunks, rows, cancel, made)
    try:
        yield made  # the snapshot lives until the dump is read
    finally:
        # Not read to its end (the store failed, a Ctrl-C between two chunks): the stream is
        # closed now, so its row count is cancelled and pg_dump stops, rather than this
        # connection's rollback waiting for the count to finish.
        made.chunks.close()  # type: ignore[attr-defined]
        if started is not None:
            started.close()


def _counting_meanwhile(chunks: Iterator[bytes], rows: Rows, cancel: Callable[[], None], made: Dump) -> Iterator[bytes]:
    """The dump's bytes, while our snapshot's session counts every table's rows beside it
    (the same snapshot: the counts are the dump's; a large table's two scans share one pass,
    as Postgres synchronizes concurrent sequential scans). The counts land in `made.tables`
    when the stream ends."""
    counted: dict[str, int] = {}
    failed: list[BaseException] = []
    stopping = threading.Event()

    def rows_unless_stopped(query: str) -> Sequence[Sequence[Any]]:
        if stopping.is_set():
            raise OperationFailed("the dump was stopped")
        return rows(query)

    def count() -> None:
        try:
            counted.update(count_rows(rows_unless_stopped, parallel=False))
        except BaseException as exc:  # noqa: BLE001 - reported by the stream below
            failed.append(exc)

    counter = threading.Thread(target=count, name="count-rows", daemon=True)
    counter.start()
    try:
        yield from chunks
        counter.join()
    except BaseException:
        # stopped (a failure, Ctrl-C, even while the last count runs): no query is sent after
        # this, and the one running is cancelled, again until it ends (a cancel that reaches
        # the server between two queries does nothing)
        stopping.set()
        while counter.is_alive():
            with contextlib.suppress(Exception):
                cancel()
            counter.join(0.5)
        raise
    if failed:
        reason = str(failed[0]).strip() or type(failed[0]).__name__
        raise OperationFailed(f"counting rows for the manifest failed: {reason}")
    made.tables = counted


def restore(ctx: Context, chunks: Chunks, manifest: Manifest, into: str | None) -> str:
    """Into a new database (`into`), or over the live one: restored beside it into a new
    database made like it, checked against the manifest's row counts, then swapped in by
    rename (see postgres_databases). Until the swap the live database is untouched."""
    target = _target(ctx)
    if into is not None:
        create_like(target, into, _dbname(target))
        try:
            _pg_restore(ctx, target, into, chunks())
        except BaseException:
            drop(target, into)
            raise
        return f"new database {into}"
    with scratch.claimed(target, "restore", ctx.project.platform.project) as fresh:
        return _replace_live(ctx, target, fresh, chunks, manifest)


def _replace_live(ctx: Context, target: DatabaseTarget, fresh: str, chunks: Chunks, manifest: Manifest) -> str:
    live = _dbname(target)
    create_like(target, fresh, live)
    aside = f"mindscape_replaced_{secrets.token_hex(4)}"
    try:
        _pg_restore(ctx, target, fresh, chunks())
        with connect(target, fresh) as conn:
            mismatches = _mismatches(manifest.tables or {}, count_rows(rows_of(conn)))
        if mismatches:
            raise OperationFailed(
                f"the restored copy differs from the manifest ({'; '.join(mismatches[:3])}): "
                f"the live database {live} is untouched",
                "use another backup (`mindscape backup list`); `mindscape backup verify ID` checks one",
            )
        copy_properties(target, live, fresh)
        swap(target, live, fresh, aside)
    except BaseException:
        drop(target, fresh)
        raise
    try:
        drop(target, aside)
    except OperationFailed:
        return f"database {live} (the one it replaced is kept as {aside}: drop it when done)"
    return f"database {live} (replaced whole)"


def verify(ctx: Context, chunks: Chunks, manifest: Manifest) -> Checked:
    target = _target(ctx)
    with scratch.claimed(target, "verify", ctx.project.platform.project) as name:
        create_like(target, name, _dbname(target))
        try:
            try:
                _pg_restore(ctx, target, name, chunks())
            except OperationFailed as exc:
                if isinstance(exc, BackupUnreadable):
                    raise  # the backup's own failure (corrupt) or none of it (a read error): not the restore's
                return Checked(False, f"the restore failed: {exc.message}")
            with connect(target, name) as conn:
                found = count_rows(rows_of(conn))
        finally:
            drop(target, name)
    mismatches = _mismatches(manifest.tables or {}, found)
    if mismatches:
        return Checked(False, f"{len(mismatches)} table(s) differ from the manifest", found, tuple(mismatches))
    return Checked(
        True, f"restored into a scratch database: {len(found)} table(s), {sum(found.values())} rows match", found
    )


def _dbname(target: DatabaseTarget) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(target.conninfo).get("dbname") or "")


def _mismatches(expected: dict[str, int], found: dict[str, int]) -> list[str]:
    return [
        f"{table}: {expected.get(table, 'absent')} in the manifest, {found.get(table, 'absent')} restored"
        for table in sorted(set(expected) | set(found))
        if expected.get(table) != found.get(table)
    ]


def _pg_restore(ctx: Context, target: DatabaseTarget, dbname: str, chunks: Iterable[bytes]) -> None:
    # Always into a new database; one transaction, so a cut-off restore fails whole.
    args = ["--single-transaction", "--exit-on-error"]
    if target.external:
        for _ in _host("pg_restore", args, target, chunks, dbname=dbname):
            pass
    else:
        for _ in _in_container(ctx, "pg_restore", args, dbname, chunks):
            pass


def _in_container(
    ctx: Context, tool: str, args: list[str], dbname: str | None, stdin: Iterable[bytes] | None
) -> Iterator[bytes]:
    if stdin is None:
        yield from output_of(_started_in_container(ctx, tool, args, dbname), tool)
        return
    container, cmd = _command(ctx, tool, args, dbname)
    result = ctx.engine.exec_input(container, cmd, stdin)
    if result.exit_code != 0:
        raise OperationFailed(f"{tool} failed in {container} (exit {result.exit_code}): {_last_line(result.stderr)}")


def _command(ctx: Context, tool: str, args: list[str], dbname: str | None) -> tuple[str, list[str]]:
    pg = ctx.project.platform.services.postgres
    container = ctx.running_container("postgres")
    return container, tool_command(tool, args, pg.user, dbname or pg.database)


def tool_command(tool: str, args: list[str], user: str, dbname: str) -> list[str]:
    """Pure: `tool ARGS -U user -d dbname` in the postgres container, with the password read
    there from its file (it never crosses the engine's API)."""
    return _in_shell(f'exec {tool} "$@"', tool, args, user, dbname)


def dump_waiting_command(user: str, dbname: str) -> list[str]:
    """Pure: a shell in the postgres container that reads a snapshot's name from its stdin, then
    runs `pg_dump DUMP_ARGS -U user -d dbname --snapshot=NAME` (started before the snapshot is
    taken, so the exec's start-up passes meanwhile). Its stdin closed before a line comes, it
    runs nothing."""
    script = 'IFS= read -r snapshot && exec pg_dump "$@" --snapshot="$snapshot"'
    return _in_shell(script, "pg_dump", list(DUMP_ARGS), user, dbname)


def _in_shell(script: str, tool: str, args: list[str], user: str, dbname: str) -> list[str]:
    """Pure: `sh -c SCRIPT` with the password read first and `ARGS -U user -d dbname` as "$@"."""
    return ["sh", "-c", _WITH_PASSWORD + script, tool, *args, "-U", user, "-d", dbname]


def snapshot_line(snapshot: str) -> bytes:
    """Pure: what `dump_waiting_command`'s shell reads (the server's name for an exported
    snapshot: hex digits and dashes)."""
    if not re.fullmatch(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+", snapshot):
        raise OperationFailed(f"the server exported a snapshot named {snapshot!r}, not the expected hex and dashes")
    return snapshot.encode() + b"\n"


def _started_in_container(ctx: Context, tool: str, args: list[str], dbname: str | None = None) -> Any:
    """`tool` running in the postgres container now (not when its output is first read)."""
    container, cmd = _command(ctx, tool, args, dbname)
    return ctx.streams.exec_output(container, cmd)


def output_of(output: Any, tool: str) -> Iterator[bytes]:
    yield from output
    if output.exit_code != 0:
        raise OperationFailed(
            f"{tool} failed in {output.container} (exit {output.exit_code}): {_last_line(output.stderr)}"
        )


def _host(
    tool: str, args: list[str], target: DatabaseTarget, stdin: Iterable[bytes] | None, dbname: str | None = None
) -> Iterator[bytes]:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if shutil.which(tool) is None:
        raise EnvironmentUnusable(
            f"{tool} is not installed on this machine (needed with $DATABASE_URL set)",
            "install the PostgreSQL client of the server's major version or newer (apt-get install postgresql-client)",
        )
    parts = conninfo_to_dict(target.conninfo)
    password = str(parts.pop("password", "") or "")
    if dbname:
        parts["dbname"] = dbname
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}  # never on the command line
    process = subprocess.Popen(
        [tool, *args, "-d", make_conninfo(**parts)],
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    errors = bytearray()
    drain = threading.Thread(target=lambda: errors.extend(process.stderr.read()[-8192:]), daemon=True)  # type: ignore[union-attr]
    drain.start()
    try:
        if stdin is not None:
            threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()  # type: ignore[union-attr]
            try:
                for chunk in stdin:
                    process.stdin.write(chunk)  # type: ignore[union-attr]
            except BrokenPipeError:
                pass  # the tool stopped reading: its exit code and stderr say why
            process.stdin.close()  # type: ignore[union-attr]
        else:
            while chunk := process.stdout.read1(1 << 20):  # type: ignore[union-attr]
                yield chunk
        code = process.wait()
        drain.join(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        raise OperationFailed(f"{tool} against {target.display} failed (exit {code}): {_last_line(bytes(errors))}")


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error output"
