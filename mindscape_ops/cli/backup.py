"""mindscape backup create / list / restore / verify / prune."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mindscape_ops.cli.common import (
    FilesOption,
    JsonOption,
    audited,
    console,
    exit_with,
    lock_root,
    open_project,
    stdout_json,
)

if TYPE_CHECKING:
    from mindscape_ops.backup.actions import Taking
    from mindscape_ops.backup.model import Manifest

app = typer.Typer(
    help="Backups of postgres (pg_dump -Fc) and redis (its RDB), streamed with a sha256 to "
    "backups.local.dir or backups.s3; each verified by a real restore with `verify`.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    service: Annotated[
        str | None,
        typer.Option("--service", metavar="NAME", help="Back up this service only. Default: backups.services."),
    ] = None,
    physical: Annotated[
        bool, typer.Option("--physical", help="A physical backup of the database through pgBackRest (backups.pitr).")
    ] = False,
    kind: Annotated[
        str, typer.Option("--type", metavar="full|diff|incr", help="With --physical: the backup's type.")
    ] = "full",
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Take a backup of each data service; its manifest is written last. With --physical: a
    pgBackRest backup of the database, the base of point-in-time restores."""
    try:
        if physical or kind != "full":
            from mindscape_ops.cli.backup_physical import create_physical

            create_physical(files, physical, service, kind, as_json)
            return
        made: list[Manifest] = []
        with audited("backup create", lock_root(files), service=service) as record:
            taking: Taking | None = None
            early = None
            try:
                # pg_dump started from the start record while the model loads (None without one);
                # the backup code after it: it loads pydantic and the manifest's model (~75 ms)
                early = _start_early(files, service)
                from mindscape_ops.backup import actions

                record.project = project = open_project(files)
                for name in actions.services_to_back_up(project, service):
                    taking = actions.Taking(name)
                    with _progress(name) as progress:
                        manifest = actions.create(project, name, progress, taking=taking, early=early)
                    early = None  # taken over or stopped by the first backup
                    made.append(manifest)
                    console(stderr=True).print(
                        f"[green]backed up[/] {name}: {manifest.id} ({_size(manifest.size)}, "
                        f"{manifest.duration_s:.1f}s{', encrypted' if manifest.encrypted else ''}) "
                        f"to {_text(actions.store_where(project))}"
                    )
            except KeyboardInterrupt:
                kept = actions.taken(project, taking) if taking is not None else None
                record.outcome = _interrupted(kept, taking, made)
                raise typer.Exit(130) from None
            finally:
                if early is not None:  # not taken over (the project failed to load, say)
                    early.stop()
            _remember_start(project)
        if as_json:
            stdout_json([{"id": m.id, "service": m.service, "size": m.size, "sha256": m.sha256} for m in made])
    except KeyboardInterrupt:  # before the project was open, or after every backup was made
        if physical or kind != "full":  # pgBackRest lists a backup only once it is complete
            console(stderr=True, info=False).print(
                "[yellow]interrupted:[/] the physical backup was stopped; "
                "pgBackRest lists only the backups it completed"
            )
        else:
            _interrupted(None, None, locals().get("made", []))
        raise typer.Exit(130) from None


def _start_early(files: FilesOption, service: str | None) -> Any:
    from mindscape_ops.services.backup_start import start_early
    from mindscape_ops.workspace.project import platform_files

    return start_early(platform_files(files), service)


def _remember_start(project: Any) -> None:
    """The start record for the next `backup create`, from the model now loaded."""
    from mindscape_ops.services.backup_start import remember

    remember(project)


def _interrupted(kept: Manifest | None, taking: Any, made: list[Manifest]) -> str:
    """Ctrl-C during `create`: say whether the backup it was taking is kept (its manifest was
    written before it came: whole and listed) or nothing of it is, and which ones before it
    are; the outcome for the audit log."""
    before = [m.id for m in made if kept is None or m.id != kept.id]
    done = f" (the backups finished before it are kept: {', '.join(before)})" if before else ""
    if taking is None:
        what, outcome = "no backup was begun", "interrupted (exit 130) before any backup"
    elif kept is None:
        what = f"the backup of {taking.service} was stopped; nothing of it was kept"
        outcome = f"interrupted (exit 130) during the backup of {taking.service}"
    else:
        what = f"the backup of {taking.service} was already complete: {kept.id} is kept"
        outcome = f"interrupted (exit 130) after the backup of {taking.service} ({kept.id} kept)"
    if taking is None and made:
        what = "the backups it made are kept: " + ", ".join(m.id for m in made)
    else:
        what += done
    console(stderr=True, info=False).print(f"[yellow]interrupted:[/] {what}")
    return outcome


ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        metavar="NAME",
        help="The backups of project NAME, which shares this store, named on purpose (say, production's into staging).",
    ),
]


@app.command("list")
def list_(as_json: JsonOption = False, other: ProjectOption = None, files: FilesOption = None) -> None:
    """Complete backups (those with a manifest) of this project, newest first."""
    from mindscape_ops.backup import actions
    from mindscape_ops.cli.backup_physical import list_physical, physical_listing

    project = open_project(files)
    listed = actions.listing(project, actions.owner_of(project, other))
    physical = physical_listing(project) if other is None else None
    now = datetime.now(UTC)
    if as_json:
        stdout_json([item.as_json(now) for item in listed] + [b.as_json() for b in (physical[0] if physical else [])])
        return
    out = console()
    if physical is not None:
        list_physical(out, physical)
    if not listed:
        console(stderr=True).print(f"no backups in {actions.store_where(project, other)}")
        return
    out.print(f"{'ID':<32} {'SERVICE':<9} {'SIZE':>9} {'AGE':>6}  VERIFIED")
    for item in listed:
        m, v = item.manifest, item.verification
        verified = "[dim]never[/]" if v is None else ("[green]yes[/]" if v.ok else "[red]FAILED[/]")
        lock = " (encrypted)" if m.encrypted else ""
        out.print(f"{m.id:<32} {m.service:<9} {_size(m.size):>9} {_age(now, m):>6}  {verified}{lock}")


@app.command("restore")
def restore(
    backup_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The backup to restore (`mindscape backup list`).")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="TIME|latest",
            help="Point-in-time restore (backups.pitr) to TIME ('2026-12-06 10:15:00+00') or the latest archived WAL.",
        ),
    ] = None,
    to_backup: Annotated[
        str | None,
        typer.Option("--to-backup", metavar="LABEL", help="Restore a physical backup as it was taken (backups.pitr)."),
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(
            "--into", metavar="DB", help="Postgres: restore into this NEW database; the live one is untouched."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Restore over the live data without asking.")] = False,
    other: ProjectOption = None,
    files: FilesOption = None,
) -> None:
    """Check the backup's sha256, then restore it (over the live data only with --yes or a confirmation)."""
    from mindscape_ops.backup import actions
    from mindscape_ops.errors import UsageError

    def confirm(manifest: Manifest) -> bool:
        if yes:
            return True
        of = f" of project {manifest.project}" if other else ""
        what = f"{manifest.service} backup {manifest.id}{of} from {manifest.created_at}"
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to restore {what} over the live data without confirmation",
                "pass --yes to confirm"
                + (", or --into NEW_DB to restore beside it" if actions.restores_beside(manifest.service) else ""),
            )
        return typer.confirm(f"Replace the live {manifest.service} data with {what}?", default=False)

    if to is not None or to_backup is not None or backup_id is None:
        from mindscape_ops.cli.backup_physical import restore_physical

        restore_physical(files, backup_id, to, to_backup, into, yes)
        return
    err = console(stderr=True)
    with audited("backup restore", lock_root(files), id=backup_id, into=into, yes=yes, project=other) as record:
        record.project = project = open_project(files)
        restored = actions.restore(project, backup_id, into, confirm, owner=other)
    err.print(f"[green]restored[/] {restored.manifest.id} into {_text(restored.target)}")


@app.command("verify")
def verify(
    backup_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="Default: the newest backup.")] = None,
    physical: Annotated[
        bool, typer.Option("--physical", help="A physical backup (backups.pitr); default: the newest.")
    ] = False,
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Restore a backup into scratch space and compare it with its manifest (exit 1 when it differs).
    A physical backup (its pgBackRest label, or --physical): pgBackRest's own verify, then it is
    restored into a scratch container and queried."""
    from dataclasses import asdict

    from mindscape_ops.backup import actions
    from mindscape_ops.backup import physical as pitr

    physical = physical or (backup_id is not None and pitr.is_label(backup_id))
    audit = {"physical": True} if physical else {}
    with audited("backup verify", lock_root(files), id=backup_id, **audit) as record:
        record.project = project = open_project(files)
        if physical:
            from mindscape_ops.cli.backup_physical import settle_first

            settle_first(project)
        result = pitr.verify(project, backup_id) if physical else actions.verify(project, backup_id)
        if not result.ok:
            record.outcome = f"failed (exit 1): {result.detail}"
    if as_json:
        stdout_json(asdict(result))
    err = console(stderr=True)
    name = result.label if physical else result.id
    if result.ok:
        err.print(f"[green]verified[/] {name}: {_text(result.detail)}")
    else:
        # the detail and mismatches name tables (of the restored database, and of the manifest)
        # or quote pgBackRest ("[028]"): never read as markup
        err.print(f"[bold red]verification failed:[/] {name}: {_text(result.detail)}")
        for line in getattr(result, "mismatches", ()):
            err.print(f"  {line}", markup=False)
    exit_with(0 if result.ok else 1)


@app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")] = False,
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Remove backups beyond backups.retention (keep_last, max_age, keep_daily/weekly/monthly) and
    leftovers of interrupted ones. Each service's newest backup and newest verified backup are always kept.
    With backups.pitr: the data directories point-in-time restores replaced, but the newest
    backups.pitr.keep_replaced, and what interrupted restores left."""
    from dataclasses import asdict

    from mindscape_ops.backup import actions

    err = console(stderr=True)
    from mindscape_ops.cli.backup_physical import prune_physical

    with audited("backup prune", lock_root(files), dry_run=dry_run) as record:
        record.project = project = open_project(files)
        result = actions.prune(project, dry_run)
        physical = prune_physical(project, dry_run)
    if as_json:
        stdout_json({**asdict(result), **({"data_dirs": physical} if physical is not None else {})})
    verb = "would remove" if dry_run else "removed"
    if dry_run:
        for backup_id, why in result.kept.items():
            err.print(f"[green]would keep[/] {backup_id}  [dim]{_text(why)}[/]")
    for backup_id, why in result.removed.items():
        err.print(f"[yellow]{verb}[/] {backup_id}  [dim]{_text(why)}[/]")
    for name in result.leftovers:
        err.print(f"[yellow]{verb}[/] {_text(name)}  [dim]left by an interrupted backup[/]")
    for name in result.aborted_uploads:
        err.print(f"[yellow]{'would abort' if dry_run else 'aborted'}[/] the unfinished upload of {_text(name)}")
    err.print(
        f"{verb} {len(result.removed)} backup(s) and {len(result.leftovers)} leftover(s); kept {len(result.kept)}"
        + (" [dim](dry run: nothing was removed)[/]" if dry_run else "")
    )


def _text(text: str) -> str:
    """Text from a store, a manifest or a database, shown as it is (never read as markup: a
    closing tag in it would end the command in a traceback)."""
    from rich.markup import escape

    return escape(str(text))


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _age(now: datetime, manifest: Manifest) -> str:
    seconds = max(0, int((now - manifest.created).total_seconds()))
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds // span}{unit}"
    return f"{seconds}s"


@contextmanager
def _progress(service: str) -> Iterator[Callable[[int], None] | None]:
    """Bytes and rate at a terminal; nothing in CI or a pipe."""
    err = console(stderr=True)
    if not err.is_terminal or os.environ.get("CI"):
        yield None
        return
    started = time.monotonic()
    with err.status(f"{service}: starting") as status:

        def show(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-3)
            status.update(f"{service}: {_size(done)} at {_size(rate)}/s")

        yield show
