"""The physical side of `mindscape backup` (backups.pitr): create --physical, the physical
backups and the restorable window in `list`, restore --to / --to-backup."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from mindscape_ops.cli.common import audited, console, lock_root, open_project, stdout_json

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from mindscape_ops.backup.physical import PhysicalBackup, Window
    from mindscape_ops.workspace.project import Project


def create_physical(files: list[Path] | None, physical: bool, service: str | None, kind: str, as_json: bool) -> None:
    from mindscape_ops.backup import physical as pitr
    from mindscape_ops.errors import UsageError

    if not physical:
        raise UsageError("--type is for physical backups", "add --physical")
    if service is not None:
        raise UsageError("--service is for dumps; a physical backup is of the database", "leave out --service")
    with audited("backup create", lock_root(files), physical=True, type=kind) as record:
        record.project = project = open_project(files)
        settle_first(project)
        made = pitr.create(project, kind)
    console(stderr=True).print(
        f"[green]backed up[/] the database: {made.label} ({made.kind}, {_mb(made.stored)} stored of {_mb(made.size)}, "
        f"{(made.stopped - made.started).total_seconds():.0f}s) with pgBackRest"
    )
    if as_json:
        stdout_json([made.as_json()])


def physical_listing(project: Project) -> tuple[list[PhysicalBackup], Window] | None:
    """The physical backups and the window, when backups.pitr is on; a repository that cannot be
    read is said (on stderr), not fatal: the dumps are still listed."""
    from mindscape_ops.backup import physical as pitr
    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.services.pitr import settings

    if settings(project.platform) is None:
        return None
    try:
        return pitr.listing(project)
    except MindscapeError as exc:
        from rich.markup import escape

        console(stderr=True).print(f"[yellow]physical backups not listed:[/] {escape(exc.message)}", markup=True)
        return None


def list_physical(out: Console, found: tuple[list[PhysicalBackup], Window]) -> None:
    backups, window = found
    out.print(f"{'PHYSICAL (pgBackRest)':<32} {'TYPE':<9} {'STORED':>9} {'TAKEN AT (UTC)':>20}")
    for b in reversed(backups):
        out.print(f"{b.label:<32} {b.kind:<9} {_mb(b.stored):>9} {b.stopped:%Y-%m-%d %H:%M:%S}")
    out.print(window.text(), markup=False)


def restore_physical(
    files: list[Path] | None, backup_id: str | None, to: str | None, to_backup: str | None, into: str | None, yes: bool
) -> None:
    from mindscape_ops.backup import physical as pitr
    from mindscape_ops.errors import UsageError

    given = [name for name, value in (("ID", backup_id), ("--to", to), ("--to-backup", to_backup)) if value is not None]
    if len(given) != 1:
        raise UsageError(
            "name what to restore: a dump's ID, --to TIME|latest, or --to-backup LABEL (one of them)",
            "see `mindscape backup list`",
        )
    if into is not None:
        raise UsageError("--into is for dumps; a point-in-time restore replaces the whole database")
    target = pitr.parse_target(to) if to is not None else None
    what = to_backup or (f"{target:%Y-%m-%d %H:%M:%S}+00" if target else "the latest archived WAL")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to replace the live database with {what} without confirmation", "pass --yes")
        if not typer.confirm(f"Replace the live database with its state at {what}?", default=False):
            raise UsageError("restore cancelled: nothing was touched")
    with audited("backup restore", lock_root(files), to=to, to_backup=to_backup, yes=yes) as record:
        record.project = project = open_project(files)
        settle_first(project)
        done = pitr.restore(project, target, to_backup)
    console(stderr=True).print(
        f"[green]restored[/] the database to {done.what}; the data it replaced is kept on the data volume "
        f"as {done.kept}: `mindscape backup prune` removes it (it keeps the newest backups.pitr.keep_replaced)",
        markup=True,
    )


def prune_physical(project: Project, dry_run: bool) -> dict[str, list[str]] | None:
    """The data directories left by point-in-time restores, pruned (said on stderr); None when
    backups.pitr is off. The database not running is said, not fatal: the dumps were pruned."""
    from rich.markup import escape

    from mindscape_ops.backup import physical as pitr
    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.services import pitr_swap
    from mindscape_ops.services.pitr import settings

    if settings(project.platform) is None:
        return None
    err = console(stderr=True)
    try:
        if not dry_run:
            settle_first(project)
        elif pitr_swap.read_journal(project) is not None:
            err.print("[yellow]a restore's swap was interrupted:[/] the next command without --dry-run settles it")
        gone, kept = pitr.prune(project, dry_run)
    except MindscapeError as exc:
        err.print(f"[yellow]data directories not pruned:[/] {escape(exc.message)}", markup=True)
        return None
    verb = "would remove" if dry_run else "removed"
    for item in gone:
        err.print(f"[yellow]{verb}[/] {item.path} ({_mb(item.size)})  [dim]{item.kind}[/]", markup=True)
    for item in kept:
        err.print(f"[green]kept[/] {item.path} ({_mb(item.size)})  [dim]{item.kind}[/]", markup=True)
    return {"removed": [d.path for d in gone], "kept": [d.path for d in kept]}


def settle_first(project: Project) -> None:
    """A restore's swap that mindscape was killed in, settled before anything else (said)."""
    from rich.markup import escape

    from mindscape_ops.backup import physical as pitr

    said = pitr.settle(project)
    if said is not None:
        console(stderr=True).print(f"[yellow]settled:[/] {escape(said)}", markup=True)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
