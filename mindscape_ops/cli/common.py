"""What every command shares: the -f option, the consoles, error reporting, the audit trail."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mindscape_ops.errors import MindscapeError
    from mindscape_ops.workspace.project import Project
    from mindscape_ops.workspace.store import Workspace

FilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "-f",
        "--file",
        metavar="PATH",
        help="Platform file; repeat to layer files (later ones override). Default ./platform.yaml, or $MINDSCAPE_FILE.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout; messages go to stderr.")]


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def report_error(exc: MindscapeError) -> None:
    from mindscape_ops.errors import ConfigError

    err = console(stderr=True)
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(problem, markup=False)
    err.print(f"[bold red]error:[/] {_escape(exc.message)}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {_escape(exc.hint)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def open_project(files: list[Path] | None) -> Project:
    from mindscape_ops.workspace.project import open_project as _open

    return _open(files)


class Audit:
    """Records a changing command in .mindscape/audit.log once the project is known."""

    def __init__(self, command: str, arguments: dict[str, Any]) -> None:
        self.command, self.arguments = command, arguments
        self.project: Project | None = None
        self.workspace: Workspace | None = None  # when known without a project (the no-op `up`)
        self.outcome = "ok"


@contextlib.contextmanager
def audited(command: str, **arguments: Any) -> Iterator[Audit]:
    from mindscape_ops.errors import MindscapeError

    started = time.monotonic()
    record = Audit(command, arguments)
    try:
        yield record
    except MindscapeError as exc:
        record.outcome = f"failed (exit {exc.exit_code}): {exc.message}"
        raise
    except typer.Exit as exc:
        if exc.exit_code and record.outcome == "ok":  # an outcome set on purpose says more
            record.outcome = f"failed (exit {exc.exit_code})"
        raise
    except BaseException as exc:
        record.outcome = f"error: {type(exc).__name__}"
        raise
    finally:
        workspace = record.project.workspace if record.project is not None else record.workspace
        if workspace is not None:
            workspace.audit(command, arguments, record.outcome, started)


def exit_with(code: int) -> None:
    if code:
        raise typer.Exit(code)


def stdout_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
