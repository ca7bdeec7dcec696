"""images build, images list: the local service images (mindscape-local/*), built here from
Debian packages and Go modules with no container registry."""

from __future__ import annotations

from typing import Annotated

import typer

from mindscape_ops.cli.common import FilesOption, JsonOption, console, open_project, stdout_json

app = typer.Typer(
    help="Local service images (mindscape-local/*), built on this machine without a registry.",
    no_args_is_help=True,
)


@app.command("build")
def build(
    services: Annotated[
        list[str] | None,
        typer.Argument(help="Build these recipes (default: the local images the platform uses).", show_default=False),
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Build every recipe.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when current (a fresh debootstrap too).")
    ] = False,
    files: FilesOption = None,
) -> None:
    """Build the local images a platform uses, or those named, or --all; current ones are kept."""
    from mindscape_ops.images import actions
    from mindscape_ops.workspace.project import platform_files

    images = None
    if not services and not everything and platform_files(files)[0].is_file():
        images = actions.platform_images(open_project(files))
    err = console(stderr=True)
    actions.build(services or [], everything, force, images, lambda text: err.print(f"images: {text}", markup=False))


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """Each recipe: its tag, whether its image is built, stale or missing, Go or Debian, and the
    estimate of a cold build on 2 cores."""
    from mindscape_ops.images import actions
    from mindscape_ops.images.choice import duration

    rows = [row.as_dict() for row in actions.listing()]
    if as_json:
        stdout_json(rows)
        return
    out = console()
    style = {"built": "green", "stale": "yellow", "missing": "red"}
    for row in rows:
        cost = f"about {duration(row['estimate'])} cold" if row["source"] == "go" else "shared Debian base"
        state = row["state"]
        out.print(f"{row['tag']:<42} [{style[state]}]{state:<8}[/] {row['source']:<7} [dim]{cost}[/]")
