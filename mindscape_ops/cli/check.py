"""mindscape check: the platform's quality gates, proven against the running platform."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mindscape_ops.cli.common import FilesOption, JsonOption, console, exit_with

GROUPS_HELP = "config, services, database, security, monitoring or backups; repeatable."
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--only", metavar="GROUP", show_default=False, help=f"Run only this gate group: {GROUPS_HELP}"),
]
SkipOption = Annotated[
    list[str] | None,
    typer.Option("--skip", metavar="GROUP", show_default=False, help=f"Leave out this gate group: {GROUPS_HELP}"),
]


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Also write JUnit XML here (for CI).")
    ] = None,
    only: OnlyOption = None,
    skip: SkipOption = None,
    files: FilesOption = None,
) -> None:
    """Run the quality gates (concurrently, each with its own timeout); exit 1 when an
    error-severity gate fails. Warnings and skips are reported, never fatal."""
    from mindscape_ops.check import gates, report
    from mindscape_ops.check.model import exit_code, unknown_groups
    from mindscape_ops.errors import UsageError

    unknown = unknown_groups([*(only or []), *(skip or [])])
    if unknown:
        raise UsageError(f"unknown gate group: {', '.join(unknown)}", "groups: " + ", ".join(_groups()))
    started = time.monotonic()
    results = gates.check(files, only or (), skip or ())
    wall_ms = round((time.monotonic() - started) * 1000)
    if junit:
        _write(junit, report.junit(results, wall_ms))
    if as_json:
        import sys

        sys.stdout.write(report.as_json(results))
    else:
        console().print(report.table(results, "quality gates"))
    console(stderr=as_json).print(f"{report.summary(results)} in {wall_ms / 1000:.2f}s", highlight=False)
    exit_with(exit_code(results))


def _groups() -> tuple[str, ...]:
    from mindscape_ops.check.model import GROUPS

    return GROUPS


def _write(path: Path, text: str) -> None:
    from mindscape_ops.adapters.files import atomic_write, cannot_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError as exc:
        raise cannot_write(path, exc) from None
