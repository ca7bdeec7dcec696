"""Physical backups and point-in-time restores (backups.pitr), through pgBackRest in the
database's container: `backup create --physical`, the backups and the restorable window in
`backup list`, `backup restore --to TIME|latest` / `--to-backup LABEL`.

A restore never touches the live data until the restored copy has come up and answered: it
goes into a new data directory on the data volume (`pgdata.restore-<stamp>`, beside the live
`pgdata`), restored by pgBackRest and recovered by a Postgres of its own in a scratch
container; only when that one has promoted and answered a query is the live container stopped
and the two directories swapped by rename. The data it replaced is kept (`pgdata.replaced-<stamp>`)
until `backup prune` (it keeps the newest backups.pitr.keep_replaced). Before that, a restore
that would need a WAL segment the repository lacks is refused, naming it. `backup verify` of a
physical backup: pgBackRest's own verify, the window's segments, a scratch restore and a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mindscape_ops.backup.context import Context
from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.services import pitr
from mindscape_ops.services.pitr_info import (
    PhysicalBackup,
    Segment,
    Window,
    gauges,
    history_files,
    in_history,
    missing_segments,
    parse_archive,
    parse_history,
    parse_info,
    verify_damage,
    window_of,
)

__all__ = ["PhysicalBackup", "Window", "parse_info", "window_of"]  # read here by the CLI and the tests

if TYPE_CHECKING:
    from mindscape_ops.workspace.project import Project

KINDS = ("full", "diff", "incr")
LABEL = re.compile(r"\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?")  # pgBackRest's backup labels
DATA_ROOT = pitr.PGDATA.rsplit("/", 1)[0]  # the data volume's mount point
DIR_KINDS = ("replaced", "failed", "restore", "verify")  # pgdata.KIND-STAMP beside the live pgdata
RECOVERY_TIMEOUT = 600.0  # seconds a restored copy may take to replay its WAL and promote


def _settings(project: Project):
    """backups.pitr, with pgBackRest's configuration written afresh from platform.yaml (as `up`
    writes it): a command reads the repository with the key configured now, and a key that
    is not the one the repository was written with is said, not passed over."""
    found = pitr.settings(project.platform)
    if found is None:
        raise UsageError(
            "physical backups need backups.pitr (WAL archiving through pgBackRest)",
            "set backups.pitr.enabled: true in platform.yaml and run `mindscape up`",
        )
    pitr.prepare(project)
    return found


def _pgbackrest(ctx: Context, *args: str) -> str:
    stanza = pitr.stanza(ctx.project.platform)
    return pitr.run(ctx.engine, ctx.running_container(pitr.SERVICE), ["pgbackrest", f"--stanza={stanza}", *args])


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
    after = parse_info(_pgbackrest(ctx, "info", "--output=json"))
    made = [b for b in after if b.label not in before]
    if not made:
        raise OperationFailed("pgbackrest backup ended but no new backup is listed in the repository")
    from mindscape_ops.backup.actions import recorded
    from mindscape_ops.backup.metrics import record_pitr

    # for PostgresFullBackupMissing and PostgresRestorableWindowShort (node_exporter's textfile
    # collector, or recording rules Prometheus loads where no node_exporter runs)
    record_pitr(project.root, gauges(after, pitr.since(project)))
    recorded(project, ctx)
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


def restore_args(target: datetime | None, backup: str | None, base: str = "", timeline: int = 0) -> list[str]:
    """Pure: pgBackRest's restore options for a time, `latest` (both None) or a backup label. A
    time or `latest` is reached from the backup `base` along the live database's `timeline`
    (never along one an abandoned restore left in the repository); a backup as it was taken,
    along its own (pgBackRest sets that for type=immediate, and takes no --target-timeline then)."""
    if backup is not None:
        return [f"--set={backup}", "--type=immediate", "--target-action=promote"]
    along = [f"--set={base}", f"--target-timeline={timeline}"]
    if target is None:
        return along  # to the end of the archived WAL
    return [*along, "--type=time", f"--target={target:%Y-%m-%d %H:%M:%S.%f}+00", "--target-action=promote"]


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
    sweep(ctx)  # what an interrupted restore left
    backups = parse_info(_pgbackrest(ctx, "info", "--output=json"))
    timeline, history = _live_timeline(ctx) if backup is None else (0, {})  # a backup: along its own
    if not backups:
        raise OperationFailed("no physical backup in the repository: nothing to restore from", "take one first")
    if backup is not None and backup not in {b.label for b in backups}:
        raise UsageError(f"--to-backup {backup}: not in the repository", "see `mindscape backup list`")
    if backup is None:  # a time or latest: from a backup in the live database's past
        backups = [b for b in backups if in_history(b, timeline, history)]
        if not backups:
            raise OperationFailed(
                f"no physical backup is in the past of the live database (timeline {timeline}): nothing was touched",
                "take one (`mindscape backup create --physical`), or restore one as it was taken (`--to-backup`)",
            )
    if target is not None and target < backups[0].stopped:
        raise UsageError(
            f"--to {target:%Y-%m-%d %H:%M:%S}+00 is before the oldest backup's end "
            f"({backups[0].stopped:%Y-%m-%d %H:%M:%S}+00)",
            "pick a time in the restorable window (`mindscape backup list`)",
        )
    if target is not None and target > datetime.now(UTC):
        raise UsageError(f"--to {target:%Y-%m-%d %H:%M:%S}+00 is in the future", "pick a time in the restorable window")
    if backup is not None:
        chosen = next(b for b in backups if b.label == backup)
    else:
        chosen = [b for b in backups if target is None or b.stopped <= target][-1]
    archive = _archive(ctx)
    if backup is not None:  # along the backup's own timeline, to its end
        missing = missing_segments(archive.segments, chosen.wal_start, None, chosen.wal_stop)
    else:
        missing = archive.missing(chosen.wal_start, target, timeline)
    if missing:
        raise OperationFailed(
            f"the repository lacks {_segments(missing)}, which a restore from {chosen.label} to "
            f"{backup or (f'{target:%Y-%m-%d %H:%M:%S}+00' if target else 'latest')} replays: "
            "nothing was touched",
            "restore to a time before the gap (`--to`), or to a backup as it was taken (`--to-backup`)",
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with Scratch(ctx, live, stamp) as scratch:
        scratch.restore(restore_args(target, backup, chosen.label, timeline))
        scratch.recover(RECOVERY_TIMEOUT)
        kept = scratch.swap()
    what = (
        "the end of the archived WAL"
        if target is None and backup is None
        else (backup or f"{target:%Y-%m-%d %H:%M:%S}+00")
    )
    return PointRestored(what, kept)


@dataclass(frozen=True)
class PhysicalVerified:
    label: str
    ok: bool
    detail: str


def verify(project: Project, label: str | None = None, ctx: Context | None = None) -> PhysicalVerified:
    """pgBackRest's own `verify` (every backup file and archived WAL segment against its
    checksum), then the backup restored into a scratch directory, recovered to its end by a
    Postgres of its own that archives nothing, and queried. The live data is not touched."""
    from mindscape_ops.backup.physical_swap import Scratch

    _settings(project)
    ctx = ctx or Context(project)
    live = ctx.running_container(pitr.SERVICE)
    sweep(ctx)
    backups = parse_info(_pgbackrest(ctx, "info", "--output=json"))
    if not backups:
        raise OperationFailed("no physical backup in the repository: nothing to verify", "take one first")
    label = label or backups[-1].label
    if label not in {b.label for b in backups}:
        raise UsageError(f"{label}: not a physical backup in the repository", "see `mindscape backup list`")
    try:
        damage = verify_damage(_pgbackrest(ctx, "verify"))
    except OperationFailed as exc:
        damage = [exc.message]
    if damage:
        shown = "; ".join(damage[:4]) + (f" and {len(damage) - 4} more" if len(damage) > 4 else "")
        return PhysicalVerified(label, False, f"pgbackrest verify found damage in the repository: {shown}")
    timeline, history = _live_timeline(ctx)
    ours = [b for b in backups if in_history(b, timeline, history)]  # the window a restore --to reaches
    missing = _archive(ctx).missing(ours[0].wal_start, None, timeline) if ours else []
    if missing:
        return PhysicalVerified(
            label, False, f"the restorable window has a gap: the repository lacks {_segments(missing)}"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        with Scratch(ctx, live, stamp, purpose="verify") as scratch:
            scratch.restore(restore_args(None, label))
            tables = scratch.recover(RECOVERY_TIMEOUT, archive=False)
    except OperationFailed as exc:
        return PhysicalVerified(label, False, f"restored into scratch, it did not come up: {exc.message}")
    return PhysicalVerified(
        label, True, f"pgbackrest verify passed; restored into scratch, it came up and answered ({tables} tables)"
    )


def _live_timeline(ctx: Context) -> tuple[int, dict[int, int]]:
    """The live database's timeline and its history (the timelines it came from, and where)."""
    live = ctx.running_container(pitr.SERVICE)
    timeline = int(_psql(ctx, live, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16)
    history = f"{pitr.PGDATA}/pg_wal/{timeline:08X}.history"
    text = pitr.run(ctx.engine, live, ["sh", "-c", 'cat "$1" 2>/dev/null; true', "-", history])
    return timeline, parse_history(text)


@dataclass(frozen=True)
class _Archive:
    """What the repository's WAL archive holds: its segments and its timelines' history files."""

    ctx: Context
    segments: list[Segment]
    histories: dict[int, str]  # timeline -> its history file, under archive/STANZA

    def missing(self, start: str, target: datetime | None, timeline: int) -> list[str]:
        """What a restore along `timeline` from a backup whose WAL starts at `start` lacks: the
        timeline's history file (which the restore reads), or WAL segments along it."""
        history: dict[int, int] = {}
        if timeline > 1:
            if timeline not in self.histories:  # without it, which segments are read is not known either
                return [f"{timeline:08X}.history"]
            path = f"{_archive_path(self.ctx)}/{self.histories[timeline]}"
            history = parse_history(_pgbackrest_repo(self.ctx, "repo-get", path))
        return missing_segments(self.segments, start, target, None, timeline, history)


def _archive_path(ctx: Context) -> str:
    return f"archive/{pitr.stanza(ctx.project.platform)}"


def _pgbackrest_repo(ctx: Context, *args: str) -> str:
    """A pgBackRest repository command (`repo-ls`, `repo-get`: they take no stanza)."""
    return pitr.run(ctx.engine, ctx.running_container(pitr.SERVICE), ["pgbackrest", *args])


def _archive(ctx: Context) -> _Archive:
    """The archived WAL segments and history files in the repository."""
    text = _pgbackrest_repo(ctx, "repo-ls", "--recurse", "--output=json", _archive_path(ctx))
    return _Archive(ctx, parse_archive(text), history_files(text))


def _segments(names: list[str]) -> str:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    what = "WAL segment(s)" if not any(name.endswith(".history") for name in names) else "WAL file(s)"
    return f"{len(names)} {what}: {shown}"


@dataclass(frozen=True)
class DataDir:
    """A directory beside the live data on the data volume: the data a restore replaced
    (`replaced`), a restored copy the live container did not come up on (`failed`), or what an
    interrupted restore or verification left (`restore`, `verify`)."""

    path: str
    kind: str
    stamp: str
    size: int


def parse_data_dirs(text: str) -> list[DataDir]:
    """Pure: `du -sb` lines of the data volume's `pgdata.*` directories, newest first."""
    found = []
    for line in text.splitlines():
        size, _, path = line.partition("\t")
        name = path.rsplit("/", 1)[-1]
        kind, _, stamp = name.removeprefix("pgdata.").partition("-")
        if name.startswith("pgdata.") and kind in DIR_KINDS and size.strip().isdigit():
            found.append(DataDir(path.strip(), kind, stamp, int(size)))
    return sorted(found, key=lambda d: d.stamp, reverse=True)


def to_prune(dirs: list[DataDir], keep_replaced: int) -> list[DataDir]:
    """Pure: what `backup prune` removes: every replaced data directory but the newest
    `keep_replaced`, and what interrupted restores and verifications left. A restored copy the
    live container did not come up on (`failed`) is kept for the user to look at."""
    replaced = [d for d in dirs if d.kind == "replaced"]
    return replaced[keep_replaced:] + [d for d in dirs if d.kind in ("restore", "verify")]


def data_dirs(ctx: Context) -> list[DataDir]:
    live = ctx.running_container(pitr.SERVICE)
    script = f'for d in {DATA_ROOT}/pgdata.*; do [ -d "$d" ] && du -sb "$d"; done; true'
    return parse_data_dirs(pitr.run(ctx.engine, live, ["sh", "-c", script], user="root"))


def sweep(ctx: Context) -> list[str]:
    """Remove the scratch containers of interrupted restores and verifications (a kill -9 of
    mindscape leaves them) and the directories they were filling; what was removed. The live
    data is never among them: only `pgdata.restore-*` and `pgdata.verify-*` are."""
    from mindscape_ops.services.pitr_swap import LABEL as SCRATCH

    live = ctx.running_container(pitr.SERVICE)
    removed = []
    for name in ctx.engine.names_labelled(SCRATCH, live):
        ctx.engine.remove(name, stop_timeout=0)
        removed.append(f"container {name}")
    for leftover in [d for d in data_dirs(ctx) if d.kind in ("restore", "verify")]:
        pitr.run(ctx.engine, live, ["rm", "-rf", leftover.path], user="root")
        removed.append(leftover.path)
    return removed


def settle(project: Project, ctx: Context | None = None) -> str | None:
    """A restore's swap that was interrupted (mindscape killed in it), settled: the database on
    the old data or the restored, running and answering; what was found (None: nothing was)."""
    from mindscape_ops.services import pitr_swap

    if pitr.settings(project.platform) is None:
        return None
    return pitr_swap.settle(project, (ctx or Context(project)).engine)


def prune(project: Project, dry_run: bool, ctx: Context | None = None) -> tuple[list[DataDir], list[DataDir]]:
    """`backup prune` with backups.pitr: the data directories removed (or that would be) and kept."""
    settings = _settings(project)
    ctx = ctx or Context(project)
    dirs = data_dirs(ctx)
    gone = to_prune(dirs, settings.keep_replaced)
    if not dry_run:
        sweep(ctx)
        live = ctx.running_container(pitr.SERVICE)
        for item in gone:
            pitr.run(ctx.engine, live, ["rm", "-rf", item.path], user="root")
    return gone, [d for d in dirs if d not in gone]


def is_label(text: str) -> bool:
    """Pure: whether a backup ID names a physical backup (pgBackRest's label) rather than a dump."""
    return LABEL.fullmatch(text) is not None
