"""init, validate, render: the platform file and what it generates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mindscape_ops.cli.common import FilesOption, audited, console, exit_with, lock_root, open_project


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("validate")(validate)
    app.command("render")(render)


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the platform (created if missing).")] = Path("."),
    name: Annotated[str | None, typer.Option("--name", help="Project name; default: the directory's name.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing platform.yaml (hand-edited generated files are kept).")
    ] = False,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Start from this platform file (e.g. examples/local/platform.yaml).")
    ] = None,
    files: FilesOption = None,
) -> None:
    """Write a commented starter platform.yaml, generate secrets, then render everything."""
    from mindscape_ops.render.starter import create_platform
    from mindscape_ops.workspace.prepare import prepare

    target = files[-1] if files else directory / "platform.yaml"
    folder = target.resolve().parent
    lock = folder if folder.is_dir() else None  # a new folder has nobody else in it
    with audited("init", lock, directory=str(directory), name=name, force=force, source=from_file) as record:
        created = create_platform(target, name=name, force=force, source=from_file)
        record.project = project = open_project([target])
        # --force replaces platform.yaml; it never licenses overwriting hand edits (`render --force` does)
        prepared = prepare(project, force=False)
        out = console()
        out.print(f"[green]created[/] {created.path}  (project [bold]{created.name}[/])")
        out.print(f"[green]secrets[/] {project.workspace.secrets_file} (mode 0600, git-ignored)")
        _print_changes(prepared.changes)
        _warn(prepared.warnings)
        if _kept(prepared.changes):
            record.outcome = "hand-edited files kept"
        out.print("next: [bold]mindscape up[/] to start the platform, [bold]mindscape status[/] to see it")


def validate(files: FilesOption = None) -> None:
    """Load and validate platform.yaml; print every problem as FILE:LINE:COL: path: message."""
    project = open_project(files)
    enabled = ", ".join(project.platform.services.enabled()) or "none"
    names = ", ".join(str(f) for f in project.loaded.files)
    console().print(f"[green]valid[/] {names}: project [bold]{project.platform.project}[/], services: {enabled}")


def render(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file is missing, stale or hand-edited.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show a unified diff of every change.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite hand-edited generated files too.")] = False,
    files: FilesOption = None,
) -> None:
    """Write every generated file (CI, monitoring, security, configs, compose, runbooks)."""
    from mindscape_ops import render as rendering
    from mindscape_ops.workspace.prepare import prepare

    if check:
        project = open_project(files)
        changes = [c for c in rendering.preview(project.loaded, project.workspace) if c.needs_write]
        _print_changes(changes, diff=diff, verb="would change")
        if changes:
            console(stderr=True).print(f"[red]{len(changes)} generated file(s) out of date;[/] run `mindscape render`")
        else:
            console().print("[green]all generated files are up to date[/]")
        exit_with(1 if changes else 0)
        return
    with audited("render", lock_root(files), diff=diff, force=force) as record:
        record.project = project = open_project(files)
        prepared = prepare(project, force=force)
        _print_changes(prepared.changes, diff=diff)
        _warn(prepared.warnings)
        if not force and _kept(prepared.changes):
            record.outcome = "hand-edited files kept"
            exit_with(1)


def _kept(changes) -> bool:
    """Say which hand-edited generated files were left alone; True if any."""
    from mindscape_ops import render as rendering

    kept = [c for c in changes if c.status is rendering.Status.HAND_EDITED]
    if kept:
        console(stderr=True).print(
            f"[yellow]kept {len(kept)} hand-edited file(s);[/] move your change into platform.yaml, "
            "or run `mindscape render --force` to overwrite"
        )
    return bool(kept)


def _warn(warnings: list[str]) -> None:
    from rich.markup import escape

    err = console(stderr=True)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


_STYLE = {"missing": "green", "stale": "cyan", "hand-edited": "yellow", "orphaned": "magenta", "unchanged": "dim"}
_DONE = {"missing": "created", "stale": "updated", "orphaned": "removed", "unchanged": "unchanged"}


def _print_changes(changes, diff: bool = False, verb: str | None = None) -> None:
    out = console()
    changed = [c for c in changes if c.needs_write]
    for change in changed:
        status = str(change.status)
        label = status if verb else _DONE.get(status, status)
        out.print(f"[{_STYLE[status]}]{label:>11}[/] {change.path}", markup=True)
        if diff:
            out.print(change.diff(), markup=False, highlight=False, end="")
    unchanged = len(changes) - len(changed)
    if not verb:
        out.print(f"[dim]{len(changed)} changed, {unchanged} unchanged[/]")
