"""Physical backups and point-in-time restores (backups.pitr), through pgBackRest in the
database's container: `backup create --physical`, the backups and the restorable window in
`backup list`, `backup restore --to TIME|latest` / `--to-backup LABEL`.

A restore never touches the live data until the restored copy has come up and answered: it
goes into a new data directory on the data volume (`pgdata.restore-<stamp>`, beside the live
`pgdata`), restored by pgBackRest and recovered by a Postgres of its own in a scratch
container; only when that one has promoted and answered a query is the live container stopped
and the two directories swapped by rename. The data it replaced is kept (`pgdata.replaced-<stamp>`)
until the user removes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mindscape_ops.backup.context import Context
from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.services import pitr

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

KINDS = ("full", "diff", "incr")
DATA_ROOT = pitr.PGDATA.rsplit("/", 1)[0]  # the data volume's mount point
RECOVERY_TIMEOUT = 600.0  # seconds a restored copy may take to replay its WAL and promote
# pgbackrest info's stanza status codes that still list backups: ok, none yet, a backup or expire running
_USABLE = (0, 2, 6)


def _settings(project: Project):
    found = pitr.settings(project.platform)
    if found is None:
        raise UsageError(
            "physical backups need backups.pitr (WAL archiving through pgBackRest)",
            "set backups.pitr.enabled: true in platform.yaml and run `mindscape up`",
        )
    return found


def _pgbackrest(ctx: Context, *args: str) -> str:
    stanza = pitr.stanza(ctx.project.platform)
    return pitr.run(ctx.engine, ctx.running_container(pitr.SERVICE), ["pgbackrest", f"--stanza={stanza}", *args])


@dataclass(frozen=True)
class PhysicalBackup:
    label: str
    kind: str  # full, diff, incr
    started: datetime
    stopped: datetime
    size: int  # of the database when it was taken
    stored: int  # in the repository (compressed, and only what changed for diff/incr)
    wal_start: str
    wal_stop: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.label,
            "kind": "physical",
            "type": self.kind,
            "started_at": self.started.isoformat(timespec="seconds"),
            "stopped_at": self.stopped.isoformat(timespec="seconds"),
            "size": self.size,
            "stored": self.stored,
        }


@dataclass(frozen=True)
class Window:
    """From the end of the oldest backup to the last archived WAL segment (None: no backup yet)."""

    start: datetime | None
    end: datetime | None

    def text(self) -> str:
        if self.start is None or self.end is None:
            return "no restorable window yet: take a physical backup (`mindscape backup create --physical`)"
        return f"restorable from {self.start:%Y-%m-%d %H:%M:%S}+00 to {self.end:%Y-%m-%d %H:%M:%S}+00"


def parse_info(text: str) -> list[PhysicalBackup]:
    """Pure: the backups in `pgbackrest info --output=json`, oldest first."""
    try:
        stanzas = json.loads(text)
    except json.JSONDecodeError:
        raise OperationFailed("pgbackrest info did not answer JSON") from None
    found = []
    for stanza in stanzas:
        status = stanza.get("status", {})
        if status.get("code", 0) not in _USABLE:
            raise OperationFailed(
                f"the pgBackRest repository of stanza {stanza.get('name', '?')} cannot be used: "
                f"{status.get('message', 'unknown status')} (status {status.get('code')})",
                "check the repository (backups.pitr: its folder or bucket, its key) and `mindscape up`",
            )
        for item in stanza.get("backup", []):
            stamp, archive, info = item.get("timestamp", {}), item.get("archive", {}), item.get("info", {})
            found.append(
                PhysicalBackup(
                    label=item["label"],
                    kind=item.get("type", "?"),
                    started=datetime.fromtimestamp(stamp.get("start", 0), UTC),
                    stopped=datetime.fromtimestamp(stamp.get("stop", 0), UTC),
                    size=int(info.get("size", 0)),
                    stored=int(info.get("repository", {}).get("delta", 0)),
                    wal_start=archive.get("start") or "",
                    wal_stop=archive.get("stop") or "",
                )
            )
    return sorted(found, key=lambda b: b.stopped)


def window_of(backups: list[PhysicalBackup], last_archived: datetime | None) -> Window:
    """Pure: the span a `restore --to` can reach."""
    if not backups:
        return Window(None, None)
    newest = backups[-1].stopped
    return Window(backups[0].stopped, max(last_archived, newest) if last_archived else newest)


def listing(project: Project, ctx: Context | None = None) -> tuple[list[PhysicalBackup], Window]:
    _settings(project)
    ctx = ctx or Context(project)
    backups = parse_info(_pgbackrest(ctx, "info", "--output=json"))
    return backups, window_of(backups, _last_archived(ctx))


def _last_archived(ctx: Context) -> datetime | None:
    text = _psql(
        ctx, ctx.running_container(pitr.SERVICE), "SELECT extract(epoch FROM last_archived_time) FROM pg_stat_archiver"
    )
    return datetime.fromtimestamp(float(text), UTC) if text.strip() else None


def _psql(ctx: Context, container: str, sql: str) -> str:
    return pitr.run(ctx.engine, container, pitr.psql(ctx.project.platform, sql)).strip()


def create(project: Project, kind: str = "full", ctx: Context | None = None) -> PhysicalBackup:
    """A full, differential or incremental backup into the repository; the one it made."""
    if kind not in KINDS:
        raise UsageError(f"--type {kind}: not a backup type", f"use one of {', '.join(KINDS)}")
    _settings(project)
    ctx = ctx or Context(project)
    before = {b.label for b in parse_info(_pgbackrest(ctx, "info", "--output=json"))}
    _pgbackrest(ctx, f"--type={kind}", "backup")
    made = [b for b in parse_info(_pgbackrest(ctx, "info", "--output=json")) if b.label not in before]
    if not made:
        raise OperationFailed("pgbackrest backup ended but no new backup is listed in the repository")
    return made[-1]


def parse_target(text: str) -> datetime | None:
    """Pure: `--to` as a UTC time (None: latest). A time must say its zone."""
    if text.strip().lower() == "latest":
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace(" +", "+"))
    except ValueError:
        raise UsageError(
            f"--to {text!r}: not a time", "write it as '2026-12-06 10:15:00+00' (with its zone), or `latest`"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"--to {text!r}: says no time zone", "add it, e.g. '2026-12-06 10:15:00+00'")
    return when.astimezone(UTC)


def restore_args(target: datetime | None, backup: str | None) -> list[str]:
    """Pure: pgBackRest's restore options for a time, `latest` (both None) or a backup label."""
    if backup is not None:
        return [f"--set={backup}", "--type=immediate", "--target-action=promote"]
    if target is None:
        return []  # to the end of the archived WAL
    return ["--type=time", f"--target={target:%Y-%m-%d %H:%M:%S.%f}+00", "--target-action=promote"]


@dataclass(frozen=True)
class PointRestored:
    what: str
    kept: str  # the data directory it replaced, kept on the data volume


def restore(project: Project, target: datetime | None, backup: str | None, ctx: Context | None = None) -> PointRestored:
    """Restore beside the live data, recover and check it in a scratch container, then swap."""
    from mindscape_ops.backup.physical_swap import Scratch

    _settings(project)
    ctx = ctx or Context(project)
    live = ctx.running_container(pitr.SERVICE)
    backups = parse_info(_pgbackrest(ctx, "info", "--output=json"))
    if not backups:
        raise OperationFailed("no physical backup in the repository: nothing to restore from", "take one first")
    if backup is not None and backup not in {b.label for b in backups}:
        raise UsageError(f"--to-backup {backup}: not in the repository", "see `mindscape backup list`")
    if target is not None and target < backups[0].stopped:
        raise UsageError(
            f"--to {target:%Y-%m-%d %H:%M:%S}+00 is before the oldest backup's end "
            f"({backups[0].stopped:%Y-%m-%d %H:%M:%S}+00)",
            "pick a time in the restorable window (`mindscape backup list`)",
        )
    if target is not None and target > datetime.now(UTC):
        raise UsageError(f"--to {target:%Y-%m-%d %H:%M:%S}+00 is in the future", "pick a time in the restorable window")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with Scratch(ctx, live, stamp) as scratch:
        scratch.restore(restore_args(target, backup))
        scratch.recover(RECOVERY_TIMEOUT)
        kept = scratch.swap()
    what = (
        "the end of the archived WAL"
        if target is None and backup is None
        else (backup or f"{target:%Y-%m-%d %H:%M:%S}+00")
    )
    return PointRestored(what, kept)


def wait_until(check, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            return check()
        except OperationFailed as exc:
            last = exc.message
        if time.monotonic() > deadline:
            raise OperationFailed(f"{what} did not happen within {timeout:.0f}s: {last}")
        time.sleep(interval)
