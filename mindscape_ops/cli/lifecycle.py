"""plan, up, down, status, logs: the containers of the platform."""

from __future__ import annotations

import sys
import time
from typing import Annotated

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

ServicesArg = Annotated[
    list[str] | None, typer.Argument(help="Only these services (and what they need).", show_default=False)
]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.command("logs")(logs)


def plan(services: ServicesArg = None, as_json: JsonOption = False, files: FilesOption = None) -> None:
    """Show what `up` would do per service: create, recreate (and why), start, unchanged, remove."""
    from mindscape_ops.provision import lifecycle

    project = open_project(files)
    actions = lifecycle.plan(project, services or ()).actions
    if as_json:
        stdout_json([a.as_dict() for a in actions])
        return
    out = console()
    for action in actions:
        out.print(f"{action.service:<18} [bold]{action.kind:<10}[/] [dim]{action.reason}[/]")


def up(
    services: ServicesArg = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for services to be ready.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Seconds to wait per service (default: its health.timeout).", show_default=False
        ),
    ] = None,
    files: FilesOption = None,
) -> None:
    """Converge containers to platform.yaml and wait until every service is really ready."""
    from mindscape_ops.provision import noop as noop_up
    from mindscape_ops.workspace.project import platform_files

    paths = platform_files(files)
    options = {"services": sorted(services or []), "wait": not no_wait, "timeout": timeout}
    # --no-wait: not for readiness, and not for another command holding the project either
    lock = lock_root(paths)
    with audited("up", lock, not no_wait, services=services or [], no_wait=no_wait, timeout=timeout) as record:
        unchanged = noop_up.try_noop(paths, options)
        if unchanged is not None:
            err = console(stderr=True)
            for service in unchanged:
                err.print(f"{service:<18} [green]ready[/]      unchanged", highlight=False)
            err.print(f"[green]platform is up[/] ({len(unchanged)} services, 0 changed)")
            return
        _full_up(record, paths, options, services, no_wait, timeout)


def _full_up(record, paths, options, services, no_wait: bool, timeout: float | None) -> None:
    from mindscape_ops.cli.progress import Progress
    from mindscape_ops.provision import lifecycle
    from mindscape_ops.provision import noop as noop_up

    record.project = project = open_project(paths)
    err = console(stderr=True)
    with Progress(err) as progress:
        result = lifecycle.up(project, services or (), progress.event, wait=not no_wait, timeout=timeout)
    for warning in result.prepared.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    if result.hand_edited:
        err.print(
            f"[yellow]kept {len(result.hand_edited)} hand-edited generated file(s), used as edited:[/] "
            f"{', '.join(result.hand_edited)}; `mindscape render --diff` shows the difference"
        )
    if result.failures:
        for failure in result.failures:
            err.print(f"[red]✗ {failure.service}:[/] {failure.message}", markup=True)
            if failure.logs is not None:
                err.print(f"[dim]last log lines of {project.platform.container_name(failure.service)}:[/]")
                err.print(failure.logs.rstrip() or "(none yet)", markup=False, highlight=False)
        err.print(
            "[dim]hint:[/] `mindscape logs SERVICE` for more; raise `health.timeout` in platform.yaml "
            "or pass --timeout if the service is just slow"
        )
        record.outcome = f"failed: {', '.join(f.service for f in result.failures)}"
        exit_with(1)
    changed = sum(1 for a in result.actions if a.kind != "unchanged")
    err.print(
        f"[green]platform {project.platform.project} is up[/] ({len(result.outcomes)} services, {changed} changed)"
    )
    # Remember this converged state for the no-op path, when it was checked end to end.
    if not services and not no_wait and not result.hand_edited and not project.platform.database.migrate_on_up:
        noop_up.remember(project.root, paths, options, lifecycle.noop_facts(project, result))


def down(
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the data volumes (asks first).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm deleting volumes without asking.")] = False,
    files: FilesOption = None,
) -> None:
    """Stop and remove containers and the network. Volumes are kept unless --volumes is confirmed."""
    from mindscape_ops.errors import UsageError
    from mindscape_ops.provision import lifecycle

    err = console(stderr=True)

    def confirm(found: dict[str, int | None]) -> bool:
        listing = ", ".join(f"{name} ({_size(size)})" for name, size in sorted(found.items()))
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to delete volumes without confirmation: {listing}",
                "pass --yes to confirm, or drop --volumes to keep the data",
            )
        return typer.confirm(f"Delete {len(found)} volume(s) and all their data: {listing}?", default=False)

    with audited("down", lock_root(files), volumes=volumes, yes=yes) as record:
        record.project = project = open_project(files)
        result = lifecycle.down(project, volumes, confirm, lambda text: err.print(f"[dim]{text}[/]"))
    kept = "" if volumes else " (volumes kept; `down --volumes` deletes them)"
    err.print(
        f"[green]removed[/] {len(result.removed)} container(s)"
        f"{', network' if result.network_removed else ''}"
        f"{', ' + str(len(result.volumes_removed)) + ' volume(s)' if result.volumes_removed else ''}{kept}"
    )


def _size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def status(as_json: JsonOption = False, files: FilesOption = None) -> None:
    """State, health, ports and image of each service, and whether it matches platform.yaml."""
    from mindscape_ops.provision import lifecycle

    project = open_project(files)
    rows = lifecycle.status(project)
    if as_json:
        stdout_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"platform {project.platform.project}", title_justify="left")
    for column in ("service", "state", "health", "ports", "image", "config"):
        table.add_column(column, overflow="fold")  # ports and images are read whole, never cut
    for row in rows:
        config = {True: "[green]up to date[/]", False: "[yellow]changed: run up[/]", None: "-"}[row["up_to_date"]]
        state_style = "green" if row["state"] == "running" else "yellow"
        table.add_row(
            row["service"],
            f"[{state_style}]{row['state']}[/]",
            row["health"] or "-",
            "\n".join(row["ports"]) or "-",
            row["image"] or "-",
            config,
        )
    console().print(table)


def logs(
    service: Annotated[str, typer.Argument(help="The service whose logs to show.")],
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep streaming new lines.")] = False,
    tail: Annotated[str, typer.Option("--tail", "-n", help="Lines from the end (a number, or all).")] = "all",
    query: Annotated[
        str, typer.Option("--query", "-q", help="A LogsQL filter, run by the log store (victorialogs).")
    ] = "",
    since: Annotated[str, typer.Option("--since", help="Only lines this recent (a duration: 30s, 5m, 1h).")] = "",
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Show a service's logs: from the log store when it runs, else the engine's."""
    from mindscape_ops.config.types import Duration
    from mindscape_ops.errors import UsageError
    from mindscape_ops.provision import lifecycle
    from mindscape_ops.provision.logstore import as_text, read_store

    if tail != "all" and not tail.isdigit():
        raise UsageError(f"--tail {tail!r}: expected a number or all")
    try:
        window = Duration.parse(since) if since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    if follow and (query or as_json):
        raise UsageError("--follow reads the engine's stream: it takes no --query or --json")
    project = open_project(files)
    count: int | str = int(tail) if tail.isdigit() else "all"
    rows = None if follow else read_store(project, service, query, window, count)
    if rows is not None:
        if as_json:
            stdout_json(rows)
        else:
            sys.stdout.write("".join(as_text(row) + "\n" for row in rows))
        return
    if query:
        from mindscape_ops.errors import OperationFailed

        raise OperationFailed(
            f"--query needs the log store, and it does not hold {service}'s lines now (not running?)",
            f"`mindscape up victorialogs`, or drop --query to read the engine's logs of {service}",
        )
    engine, name = lifecycle.logs(project, service)
    if follow:
        for chunk in engine.follow_logs(name, tail=count):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return
    text = engine.logs(name, tail=count, since=int(time.time() - window.seconds) if window else None)
    if as_json:
        stdout_json([{"_msg": line, "source": "engine"} for line in text.splitlines()])
    else:
        sys.stdout.write(text)
