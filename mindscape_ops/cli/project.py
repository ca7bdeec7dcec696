"""init, validate, render: the platform file and what it generates."""

from __future__ import annotations

from pathlib import Path
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


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("validate")(validate)
    app.command("render")(render)
    app.command("schema")(schema)


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write it here instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON Schema of platform.yaml (editors: `init` points the yaml-language-server
    line at .mindscape/platform.schema.json, which `render` keeps current)."""
    from mindscape_ops.adapters.files import atomic_write, cannot_write
    from mindscape_ops.config.schema import schema_text

    text = schema_text()
    if output is None:
        import sys

        sys.stdout.write(text)
        return
    try:
        atomic_write(output, text)
    except OSError as exc:
        raise cannot_write(output, exc) from None
    console(stderr=True).print(f"[green]wrote[/] {output}")


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
    from mindscape_ops.config.schema import write_schema
    from mindscape_ops.provision.prepare import prepare
    from mindscape_ops.render.starter import create_platform
    from mindscape_ops.workspace.project import given_files

    files = given_files(files)
    target = files[-1] if files else directory / "platform.yaml"
    folder = target.resolve().parent
    lock = folder if folder.is_dir() else None  # a new folder has nobody else in it
    with audited("init", lock, directory=str(directory), name=name, force=force, source=from_file) as record:
        created = create_platform(target, name=name, force=force, source=from_file)
        record.project = project = open_project([target])
        # --force replaces platform.yaml; it never licenses overwriting hand edits (`render --force` does)
        prepared = prepare(project, force=False)
        write_schema(project.workspace.dir)
        out = console(info=True)
        out.print(f"[green]created[/] {created.path}  (project [bold]{created.name}[/])")
        out.print(f"[green]secrets[/] {project.workspace.secrets_file} (mode 0600, git-ignored)")
        _print_changes(prepared.changes)
        _warn(prepared.warnings)
        if _kept(prepared.changes):
            record.outcome = "hand-edited files kept"
        out.print("next: [bold]mindscape up[/] to start the platform, [bold]mindscape status[/] to see it")


def validate(as_json: JsonOption = False, files: FilesOption = None) -> None:
    """Load and validate platform.yaml; print every problem as FILE:LINE:COL: path: message."""
    from mindscape_ops.errors import ConfigError

    try:
        project = open_project(files)
    except ConfigError as exc:
        if as_json:  # the problems on stdout as data, the usual report on stderr; exit 2
            stdout_json({"valid": False, "problems": [_problem(text) for text in exc.problems]})
        raise
    enabled = list(project.platform.services.enabled())
    names = [str(f) for f in project.loaded.files]
    if as_json:
        stdout_json({"valid": True, "files": names, "project": project.platform.project, "services": enabled})
        return
    console(info=True).print(
        f"[green]valid[/] {', '.join(names)}: project [bold]{project.platform.project}[/], "
        f"services: {', '.join(enabled) or 'none'}"
    )


def _problem(text: str) -> dict[str, object]:
    """`file:LINE:COL: dotted.path: message` as fields (the text kept whole too)."""
    import re

    found = re.match(r"(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?:(?P<path>[^\s:]+): )?(?P<message>.*)", text)
    if not found:
        return {"text": text}
    fields = found.groupdict()
    return {"text": text, **fields, "line": int(fields["line"]), "column": int(fields["column"])}


def render(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file is missing, stale or hand-edited.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show a unified diff of every change.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite hand-edited generated files too.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --check: the files out of date as JSON on stdout.")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="kubernetes: also deploy/kubernetes/ (Kustomize base + overlays), from the `kubernetes:` section.",
            show_default=False,
        ),
    ] = None,
    files: FilesOption = None,
) -> None:
    """Write every generated file (CI, monitoring, security, configs, compose, runbooks)."""
    if target is not None:
        from mindscape_ops.cli.kubernetes import check_target, require_section

        check_target(target)
        if target == "kubernetes":
            require_section(open_project(files))
    from mindscape_ops import render as rendering
    from mindscape_ops.config.schema import write_schema
    from mindscape_ops.errors import UsageError
    from mindscape_ops.provision.prepare import prepare

    if as_json and not check:
        raise UsageError("--json goes with --check (render itself writes files)", "add --check")
    if check:
        project = open_project(files)
        changes = [c for c in rendering.preview(project.loaded, project.workspace) if c.needs_write]
        if as_json:
            listed = [{"path": c.path, "status": str(c.status)} for c in changes]
            stdout_json({"up_to_date": not changes, "changes": listed})
            exit_with(1 if changes else 0)
            return
        _print_changes(changes, diff=diff, verb="would change")
        if changes:
            console(stderr=True).print(f"[red]{len(changes)} generated file(s) out of date;[/] run `mindscape render`")
        else:
            console(info=True).print("[green]all generated files are up to date[/]")
        exit_with(1 if changes else 0)
        return
    with audited("render", lock_root(files), diff=diff, force=force) as record:
        record.project = project = open_project(files)
        prepared = prepare(project, force=force)
        write_schema(project.workspace.dir)  # editors' schema follows the installed mindscape
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

    err = console(stderr=True, info=False)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


_STYLE = {"missing": "green", "stale": "cyan", "hand-edited": "yellow", "orphaned": "magenta", "unchanged": "dim"}
_DONE = {"missing": "created", "stale": "updated", "orphaned": "removed", "unchanged": "unchanged"}


def _print_changes(changes, diff: bool = False, verb: str | None = None) -> None:
    out = console(info=not verb)  # what --check finds is the data asked for; what render did, a message
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
