"""What every command shares: the -f option, the consoles, error reporting, the audit trail."""

from __future__ import annotations

import contextlib
import functools
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
        help="Platform file; repeat to layer files (later ones override). Default: the global -f, "
        "$MINDSCAPE_FILE, or platform.yaml here or in the nearest parent folder.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout; messages go to stderr.")]


class Verbosity:
    """The global -q/-v: quiet hides progress and informational messages (never errors,
    warnings or the data a read command was asked for); verbose adds debug lines."""

    quiet = False
    verbose = False


def console(stderr: bool = False, info: bool | None = None) -> Console:
    """stdout carries data; stderr messages. `info`: a message -q hides (default: every stderr
    console; errors and warnings pass info=False)."""
    hide = Verbosity.quiet and (stderr if info is None else info)
    return _console_class()(stderr=stderr, highlight=False, soft_wrap=True, quiet=hide)


@functools.cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            """Rich exits 1 when the reader went away; the CLI's main turns it into a quiet 0."""
            self.quiet = True
            raise BrokenPipeError

    return PipeConsole


def debug(text: str) -> None:
    """A line for -v: what the command decided and why."""
    if Verbosity.verbose:
        console(stderr=True, info=False).print(f"[dim]debug: {_escape(text)}[/]")


def report_error(exc: MindscapeError) -> None:
    from mindscape_ops.errors import ConfigError

    err = console(stderr=True, info=False)
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(problem, markup=False)
    err.print(f"[bold red]error:[/] {_escape(exc.message)}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {_escape(exc.hint)}")


def show_library_warnings() -> None:
    """What the library notices on the way (a corrupt state file set aside, ...) reaches the
    user as `warning:` lines on stderr."""
    import logging

    class ToConsole(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                console(stderr=True, info=False).print(f"[yellow]warning:[/] {_escape(record.getMessage())}")
            else:
                debug(record.getMessage())

    logger = logging.getLogger("mindscape")
    logger.addHandler(ToConsole(logging.DEBUG))
    logger.propagate = False


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


def lock_root(files: list[Path] | None) -> Path | None:
    """The project folder whose lock a changing command takes: that of its platform file (none
    when the file does not exist: the command fails on that, and makes no .mindscape/ there)."""
    from mindscape_ops.workspace.project import platform_files

    path = platform_files(files)[0]
    return path.resolve().parent if path.is_file() else None


@contextlib.contextmanager
def audited(command: str, lock: Path | None = None, wait: bool = True, **arguments: Any) -> Iterator[Audit]:
    """Record a changing command in the audit log; with `lock` (a project folder), run it under
    that project's lock, waiting for another command that holds it unless not `wait`."""
    from mindscape_ops.errors import MindscapeError

    started = time.monotonic()
    record = Audit(command, arguments)
    try:
        with contextlib.ExitStack() as stack:
            if lock is not None:
                from mindscape_ops.workspace.lock import project_lock
                from mindscape_ops.workspace.store import Workspace

                record.workspace = Workspace(lock)
                notify = lambda text: console(stderr=True).print(f"[yellow]{_escape(text)}[/]")  # noqa: E731
                stack.enter_context(project_lock(record.workspace, command, wait, notify))
            yield record
    except MindscapeError as exc:
        record.outcome = f"failed (exit {exc.exit_code}): {exc.message}"
        raise
    except typer.Exit as exc:
        if exc.exit_code and record.outcome == "ok":  # an outcome set on purpose says more
            record.outcome = f"failed (exit {exc.exit_code})"
        raise
    except KeyboardInterrupt:
        record.outcome = "interrupted (exit 130)"  # as typer ends it
        raise
    except BaseException as exc:
        record.outcome = f"error: {type(exc).__name__}"
        raise
    finally:
        workspace = record.project.workspace if record.project is not None else record.workspace
        if workspace is not None:
            entry = workspace.audit(command, arguments, record.outcome, started)
            if record.project is not None and record.project.platform.services.log_store() is not None:
                from mindscape_ops.provision.logstore import ship_audit

                ship_audit(record.project, entry)  # also to the log store, when it runs


def exit_with(code: int) -> None:
    if code:
        raise typer.Exit(code)


def stdout_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
