"""`mindscape check` gates of point-in-time recovery (backups.pitr).

`backups.wal_archiving` reads pg_stat_archiver. It fails when the last attempt failed (no
success since the last failure), or when completed WAL segments wait while the last success
is older than the bound (twice archive_timeout, plus a minute). An idle server archives nothing
and is not late.

`backups.restorable_window` reads pgBackRest's repository (`pgbackrest info` in the database's
container) and holds the window against what backups.pitr promises (services/pitr_info.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mindscape_ops.services import pitr, pitr_info
from mindscape_ops.services.contract import Failed, Gate, Skipped

if TYPE_CHECKING:
    from mindscape_ops.services.contract import GateContext

_ARCHIVER = """
SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       pg_walfile_name(pg_current_wal_lsn()), now()
FROM pg_stat_archiver
"""
REMEDY = (
    "`mindscape logs postgres` shows pgBackRest's archive-push errors (repository full or unreachable, "
    "wrong key); fix the cause: Postgres keeps the segments and archives them once it can"
)


@dataclass(frozen=True)
class Archiver:
    """A row of pg_stat_archiver, with the server's current WAL file and clock."""

    archived: int
    last_wal: str | None
    last_time: datetime | None
    failed: int
    failed_wal: str | None
    failed_time: datetime | None
    current_wal: str
    now: datetime


def segment(name: str) -> int:
    """Pure: a WAL file's position on its timeline (16 MB segments: 256 per log file)."""
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def verdict(row: Archiver, bound: timedelta) -> str:
    """Pure: what passed, or Failed saying what was seen."""
    if row.failed_time is not None and (row.last_time is None or row.failed_time > row.last_time):
        since = f"last success {_ago(row.now - row.last_time)} ago" if row.last_time else "nothing archived yet"
        raise Failed(
            f"archiving fails: {row.failed} failure(s), the last on {row.failed_wal} {_ago(row.now - row.failed_time)} "
            f"ago, none succeeded since ({since})"
        )
    if row.last_wal is None or row.last_time is None:
        raise Failed("nothing archived yet: pgBackRest's stanza may not exist", "run `mindscape up` (it creates it)")
    waiting = max(0, segment(row.current_wal) - segment(row.last_wal) - 1)
    age = row.now - row.last_time
    if waiting and age > bound:
        raise Failed(f"{waiting} WAL segment(s) wait; the last was archived {_ago(age)} ago (bound {_ago(bound)})")
    return f"last WAL segment archived {_ago(age)} ago ({row.archived} archived, {waiting} waiting)"


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def wal_archiving(ctx: GateContext) -> str:
    settings = pitr.settings(ctx.platform)
    if settings is None:
        raise Skipped("backups.pitr is off")
    import psycopg

    from mindscape_ops.services.postgres import connect  # postgres imports this module

    address, creds = ctx.address(pitr.SERVICE), ctx.credentials(pitr.SERVICE)
    try:
        with connect(address, creds, timeout=5) as conn:
            row = conn.execute(_ARCHIVER).fetchone()
    except psycopg.Error as exc:
        raise Failed(f"cannot read pg_stat_archiver: {str(exc).strip().splitlines()[-1]}") from None
    assert row is not None
    bound = timedelta(seconds=2 * settings.archive_timeout.seconds + 60)
    return verdict(Archiver(*row), bound)


def restorable_window(ctx: GateContext) -> str:
    settings = pitr.settings(ctx.platform)
    if settings is None:
        raise Skipped("backups.pitr is off")
    import psycopg

    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.services.postgres import connect  # postgres imports this module

    container = ctx.platform.container_name(pitr.SERVICE)
    try:
        text = pitr.run(
            Engine(), container, ["pgbackrest", f"--stanza={pitr.stanza(ctx.platform)}", "info", "--output=json"]
        )
        backups = pitr_info.parse_info(text)
    except OperationFailed as exc:
        raise Failed(exc.message) from None
    address, creds = ctx.address(pitr.SERVICE), ctx.credentials(pitr.SERVICE)
    try:
        with connect(address, creds, timeout=5) as conn:
            row = conn.execute("SELECT last_archived_time FROM pg_stat_archiver").fetchone()
    except psycopg.Error as exc:
        raise Failed(f"cannot read pg_stat_archiver: {str(exc).strip().splitlines()[-1]}") from None
    window = pitr_info.window_of(backups, row[0] if row else None)
    return pitr_info.window_verdict(backups, window, settings, pitr.since(ctx.project), datetime.now(UTC))


WINDOW_REMEDY = (
    "`mindscape backup list` shows the backups and the window; take the missing one with "
    "`mindscape backup create --physical` (and schedule it: backups.pitr.full_schedule)"
)
GATES = (
    Gate("backups.wal_archiving", wal_archiving, REMEDY),
    Gate("backups.restorable_window", restorable_window, WINDOW_REMEDY, timeout=60.0),
)
