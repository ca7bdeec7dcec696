"""mindscape migrate new / up / down / status / baseline: schema migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
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
    from rich.console import Console

    from mindscape_ops.cli.common import Audit
    from mindscape_ops.migrate.actions import StatusReport

app = typer.Typer(
    help="Schema migrations: dbmate-style <version>_<name>.sql files in database.migrations_dir, "
    "applied in order, each in one transaction with its record in mindscape.migrations.",
    no_args_is_help=True,
)

LockTimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        show_default=False,
        help="How long to wait for another run's migration lock, e.g. 30s or 5m. Default: database.lock_timeout (60s).",
    ),
]


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="What the migration does, in [a-z0-9_], e.g. create_users.")],
    files: FilesOption = None,
) -> None:
    """Write a new <timestamp>_<name>.sql with empty up and down sections."""
    from mindscape_ops.migrate import actions

    with audited("migrate new", lock_root(files), name=name) as record:
        record.project = project = open_project(files)
        path = actions.new(project, name)
    console().print(f"[green]created[/] {_shown(path)}", highlight=False)


@app.command("up")
def up(
    to: Annotated[
        str | None, typer.Option("--to", metavar="VERSION", help="Apply up to this version, no further.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run; run nothing.")] = False,
    allow_out_of_order: Annotated[
        bool,
        typer.Option(
            "--allow-out-of-order",
            help="Also apply never-applied files sorting before the newest applied one.",
        ),
    ] = False,
    lock_timeout: LockTimeoutOption = None,
    files: FilesOption = None,
) -> None:
    """Apply pending migrations in version order; stop at the first failure."""
    from mindscape_ops.migrate import actions

    out = console()
    with audited(
        "migrate up", lock_root(files), to=to, dry_run=dry_run, allow_out_of_order=allow_out_of_order
    ) as record:
        record.project = project = open_project(files)
        with _interrupted(record, "applied"):
            result = actions.up(
                project,
                to=to,
                dry_run=dry_run,
                allow_out_of_order=allow_out_of_order,
                lock_timeout=_seconds(lock_timeout),
                echo=_echo(out),
            )
    if dry_run:
        _print_dry_run(out, result.would_apply, result.database)
    elif result.applied:
        total = sum(took for _, took in result.applied)
        count = len(result.applied)
        out.print(f"[green]applied {count} migration(s)[/] to {result.database} in {total / 1000:.2f}s")
    else:
        out.print(f"nothing to do: {result.database} is up to date ({result.already_applied} applied)")


def _print_dry_run(out: Console, migrations: list, database: str) -> None:
    if not migrations:
        out.print(f"nothing to do: {database} is up to date")
        return
    out.print(f"would apply {len(migrations)} migration(s) to {database}:")
    for migration in migrations:
        how = "" if migration.up.transaction else "  (transaction:false: statement by statement, no rollback)"
        out.print(f"[bold]-- {_shown(migration.path)}[/]{how}")
        out.print(migration.up.sql.strip("\n"), markup=False, highlight=False)
    out.print("[dim]dry run: nothing was run[/]")


@app.command("down")
def down(
    steps: Annotated[int, typer.Option("--steps", min=1, help="How many to roll back, newest first.")] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be rolled back.")] = False,
    lock_timeout: LockTimeoutOption = None,
    files: FilesOption = None,
) -> None:
    """Run the down sections of the most recently applied migrations and forget them."""
    from mindscape_ops.migrate import actions

    out = console()
    with audited("migrate down", lock_root(files), steps=steps, dry_run=dry_run) as record:
        record.project = project = open_project(files)
        with _interrupted(record, "rolled back"):
            reverted = actions.down(
                project, steps=steps, dry_run=dry_run, lock_timeout=_seconds(lock_timeout), echo=_echo(out)
            )
    if dry_run:
        out.print("[dim]dry run: nothing was rolled back[/]")
    elif reverted:
        out.print(f"[green]rolled back {len(reverted)} migration(s)[/]")


@app.command("baseline")
def baseline(
    version: Annotated[str, typer.Argument(help="The newest migration the database already has.")],
    lock_timeout: LockTimeoutOption = None,
    files: FilesOption = None,
) -> None:
    """Mark every migration up to VERSION as applied without running it (for an existing database)."""
    from mindscape_ops.migrate import actions

    out = console()
    with audited("migrate baseline", lock_root(files), version=version) as record:
        record.project = project = open_project(files)
        marked = actions.baseline(project, version, lock_timeout=_seconds(lock_timeout), echo=_echo(out))
    out.print(
        f"[green]baseline at {version}[/]: {len(marked)} migration(s) marked as applied"
        if marked
        else f"nothing to mark: everything up to {version} is already recorded"
    )


@app.command("status")
def status(json_output: JsonOption = False, files: FilesOption = None) -> None:
    """Applied, pending, changed and missing migrations (exit 1 when any changed or is missing)."""
    from mindscape_ops.migrate import actions

    project = open_project(files)
    report = actions.status(project, echo=_echo(console(stderr=True)))
    if json_output:
        stdout_json(_status_json(report))
    else:
        _print_status(report)
    exit_with(1 if any(e.state in ("changed", "missing") for e in report.entries) else 0)


_STATE_STYLE = {"applied": "green", "pending": "cyan", "changed": "red", "missing": "red"}


def _print_status(report: StatusReport) -> None:
    from mindscape_ops.migrate.runner import TABLE

    out = console()
    out.print(
        f"database {report.database}, migrations in {_shown(report.directory)}/, tracked in {TABLE}", highlight=False
    )
    for e in report.entries:
        state = str(e.state)
        note = _status_note(e)
        out.print(
            f"  [{_STATE_STYLE[state]}]{state:<8}[/] {e.label}" + (f"  [dim]{note}[/]" if note else ""), highlight=False
        )
    counts = _summary(report)
    shown = {state: n for state, n in counts.items() if n or state in ("applied", "pending")}
    out.print(", ".join(f"{n} {state.replace('_', '-')}" for state, n in shown.items()))


def _status_note(e: Any) -> str:
    if e.state == "pending":
        return "never applied, sorts before the newest applied migration" if e.out_of_order else ""
    if e.state == "changed":
        return "the file's up section changed since it was applied"
    if e.state == "missing":
        return "applied, but the file is gone"
    when = e.applied.applied_at.strftime("%Y-%m-%d %H:%M:%S %Z") if e.applied.applied_at else ""
    how = " (baseline, not run)" if e.applied.method == "baseline" else ""
    return f"{when} by {e.applied.applied_by}{how}"


def _summary(report: StatusReport) -> dict[str, int]:
    counts = {state: 0 for state in _STATE_STYLE}
    for e in report.entries:
        counts[str(e.state)] += 1
    counts["out_of_order"] = sum(1 for e in report.entries if e.out_of_order)
    return counts


def _status_json(report: StatusReport) -> dict[str, Any]:
    from mindscape_ops.migrate.runner import TABLE

    def one(e: Any) -> dict[str, Any]:
        row = e.applied
        return {
            "version": e.version,
            "name": e.name,
            "state": str(e.state),
            "out_of_order": e.out_of_order,
            "file": _shown(e.file.path) if e.file else None,
            "checksum": e.file.checksum if e.file else None,
            "applied_checksum": row.checksum if row else None,
            "applied_at": row.applied_at.isoformat() if row and row.applied_at else None,
            "duration_ms": row.duration_ms if row else None,
            "applied_by": row.applied_by if row else None,
            "method": row.method if row else None,
        }

    return {
        "database": report.database,
        "migrations_dir": _shown(report.directory),
        "tracking_table": TABLE,
        "tracking_table_exists": report.tracking_table_exists,
        "migrations": [one(e) for e in report.entries],
        "summary": _summary(report),
    }


@contextlib.contextmanager
def _interrupted(record: Audit, done: str) -> Iterator[None]:
    """Ctrl-C during a run: what it did stays done, the migration running takes no effect."""
    try:
        yield
    except KeyboardInterrupt:
        console(stderr=True, info=False).print(
            f"[yellow]interrupted:[/] the migrations listed above as {done} stay {done}; the one running was "
            "cancelled and took no effect (a transaction:false one keeps the statements it completed); "
            "`mindscape migrate status` shows where the run stopped",
            highlight=False,
        )
        record.outcome = "interrupted (exit 130)"
        raise typer.Exit(130) from None


def _echo(out: Console):
    """Progress lines as they are: plain text, a line per migration (10,000 of them through
    Rich's renderer took 1-2 s of a run)."""

    def echo(text: str) -> None:
        if not out.quiet:
            out.file.write(text + "\n")

    return echo


def _seconds(text: str | None) -> float | None:
    """--lock-timeout: a duration (30s, 2m) or plain seconds."""
    if text is None:
        return None
    from mindscape_ops.errors import UsageError
    from mindscape_ops.settings.types import Duration

    try:
        return float(text) if text.replace(".", "", 1).isdigit() else Duration.parse(text).seconds
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None


def _shown(path: Path) -> str:
    from mindscape_ops.migrate.files import shown

    return shown(path)
