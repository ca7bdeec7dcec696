"""plan, up, down, status, logs: the containers of the platform."""

from __future__ import annotations

import json
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


def plan(
    services: ServicesArg = None,
    as_json: JsonOption = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything would change (like `git diff --exit-code`).")
    ] = False,
    files: FilesOption = None,
) -> None:
    """Show what `up` would do per service: create, recreate (and why), start, unchanged, remove."""
    from mindscape_ops.provision import lifecycle

    project = open_project(files)
    actions = lifecycle.plan(project, services or ()).actions
    if as_json:
        stdout_json([a.as_dict() for a in actions])
    else:
        out = console()
        for action in actions:
            out.print(f"{action.service:<18} [bold]{action.kind:<10}[/] [dim]{action.reason}[/]")
    if exit_code:
        exit_with(1 if any(a.kind != "unchanged" for a in actions) else 0)


def up(
    services: ServicesArg = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for services to be ready.")] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="Seconds to wait per service (default: its health.timeout).", show_default=False
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="kubernetes: server-side apply to a cluster instead.", show_default=False),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Kubeconfig context (--target kubernetes).", show_default=False)
    ] = None,
    dry_run: Annotated[
        str | None,
        typer.Option("--dry-run", help="server: the API server checks it all, changes nothing.", show_default=False),
    ] = None,
    files: FilesOption = None,
) -> None:
    """Converge containers to platform.yaml and wait until every service is really ready."""
    if target not in (None, "compose") or context or dry_run:
        from mindscape_ops.cli import kubernetes

        return kubernetes.up(files, target, context, dry_run, services)
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


def _migrate_quietly(project) -> int:
    """What `up` runs once Postgres is ready (database.migrate_on_up): wired here, the composition
    root, because migrate/ sits above provision/ and services/."""
    from mindscape_ops.migrate import apply_pending

    return apply_pending(project, echo=lambda text: None)


def _full_up(record, paths, options, services, no_wait: bool, timeout: float | None) -> None:
    from mindscape_ops.cli.progress import Progress
    from mindscape_ops.provision import lifecycle
    from mindscape_ops.provision import noop as noop_up

    record.project = project = open_project(paths)
    err = console(stderr=True)
    with Progress(err) as progress:
        result = lifecycle.up(
            project, services or (), progress.event, wait=not no_wait, timeout=timeout, migrate=_migrate_quietly
        )
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
    """State, readiness, host port and image of each service, and whether it matches
    platform.yaml. Exits 1 when an enabled service is not running or not ready."""
    from mindscape_ops.cli.common import debug
    from mindscape_ops.provision import status as statuses
    from mindscape_ops.workspace.project import platform_files

    paths = platform_files(files)
    quick = statuses.quick(paths) if paths[0].is_file() else None
    if quick is None:
        from mindscape_ops.provision import lifecycle

        debug("status: planning against platform.yaml (something changed since the last full up)")
        project = open_project(paths)
        name, rows = project.platform.project, lifecycle.status(project)
    else:
        debug("status: nothing changed since the last full up; read from the engine alone")
        name, rows = quick
    if as_json:
        stdout_json(rows)
    else:
        out = console()
        out.print(_status_table(name, rows, out.width), soft_wrap=False)  # soft wrap would let it pass the width
    failing = statuses.failing(rows)
    if failing:
        console(stderr=True, info=False).print(f"[yellow]not running or not ready:[/] {', '.join(failing)}")
    if any(r["up_to_date"] is False for r in rows) and not as_json:
        console(stderr=True).print("[dim]changed: `mindscape plan` says how, `mindscape up` applies it[/]")
    exit_with(1 if failing else 0)


_READY = {"healthcheck": ("healthy", "unhealthy"), "up": ("ready", "not ready"), "probe": ("ready", "not ready")}


def _status_table(name: str, rows: list[dict], width: int = 80):
    """One line a service at 80 columns: the host port alone, the image without its registry."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"platform {name}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    cells = []
    for row in rows:
        config = {True: "[green]up to date[/]", False: "[yellow]changed[/]", None: "-"}[row["up_to_date"]]
        state_style = "green" if row["state"] == "running" else "yellow"
        if row["ready_by"] in _READY:
            health = _READY[row["ready_by"]][0 if row["ready"] else 1]
            health = f"[green]{health}[/]" if row["ready"] else f"[red]{health}[/]"
        else:
            health = row["health"] or "-"
        ports = ",".join(sorted({p.split("->")[0].rsplit(":", 1)[-1] for p in row["ports"]}))
        cells.append(
            [row["service"], f"[{state_style}]{row['state']}[/]", health, ports or "-", _short(row["image"]), config]
        )
    from rich.text import Text

    names = ("service", "state", "health", "port", "image", "config")
    widest = [max([len(column), *(Text.from_markup(c[i]).cell_len for c in cells)]) for i, column in enumerate(names)]
    for i, column in enumerate(names):
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=None if column == "image" else widest[i])
    for row_cells in cells:
        table.add_row(*row_cells)
    # only the image gives way when the screen is narrow (left to Rich, every column loses a little)
    from rich.console import Console
    from rich.measure import Measurement

    wide = Console(width=1000)
    excess = Measurement.get(wide, wide.options, table).maximum - width
    if excess > 0:
        table.columns[4].max_width = max(6, widest[4] - excess)
    return table


def _short(image: str | None) -> str:
    """postgres:15 for mindscape-local/postgres:15; a digest cut to 12 hex digits."""
    if not image:
        return "-"
    name = image.rsplit("/", 1)[-1]
    if "@sha256:" in name:
        base, digest = name.split("@sha256:", 1)
        return f"{base}@{digest[:12]}"
    return name


def logs(
    service: Annotated[str, typer.Argument(help="The service whose logs to show.")],
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep streaming new lines.")] = False,
    tail: Annotated[str, typer.Option("--tail", "-n", help="Lines from the end (a number, or all).")] = "all",
    query: Annotated[
        str, typer.Option("--query", "-q", help="LogsQL (filters, then | pipes), run by the log store.")
    ] = "",
    since: Annotated[str, typer.Option("--since", help="Only lines this recent (a duration: 30s, 5m, 1h).")] = "",
    as_json: JsonOption = False,
    files: FilesOption = None,
) -> None:
    """Show a service's logs: from the log store when it runs, else the engine's."""
    from mindscape_ops.errors import UsageError
    from mindscape_ops.provision import lifecycle
    from mindscape_ops.provision.logstore import (
        AUDIT_SERVICE,
        as_text,
        audit_rows,
        check_query,
        engine_since,
        read_store,
    )
    from mindscape_ops.settings.types import Duration

    if tail != "all" and not tail.isdigit():
        raise UsageError(f"--tail {tail!r}: expected a number or all")
    try:
        window = Duration.parse(since) if since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    if follow and (query or as_json):
        raise UsageError("--follow reads the engine's stream: it takes no --query or --json")
    check_query(query)
    project = open_project(files)
    count: int | str = int(tail) if tail.isdigit() else "all"
    rows = None if follow else read_store(project, service, query, window, count)
    if rows == [] and not query and service != AUDIT_SERVICE:
        # right after `up` the store may not have the driver's first batch yet (it posts every
        # few seconds): the engine keeps its own copy of every line, as `docker compose logs` reads
        console(stderr=True).print(f"[dim]the log store has no lines of {service} yet: showing the engine's copy[/]")
        rows = None
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
    if service == AUDIT_SERVICE and service not in project.platform.services.enabled():
        rows = audit_rows(project.workspace.audit_file, count, window.seconds if window else None, time.time())
        if as_json:
            stdout_json(rows)
        else:
            sys.stdout.write("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
        return
    engine, name = lifecycle.logs(project, service)
    if follow:
        for chunk in engine.follow_logs(name, tail=count):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return
    text = engine.logs(name, tail=count, since=engine_since(window.seconds, time.time()) if window else None)
    if as_json:
        stdout_json([{"_msg": line, "source": "engine"} for line in text.splitlines()])
    else:
        sys.stdout.write(text)
