"""The `mindscape` command line. Typer only: options in, one library call, Rich out.

Command modules import nothing heavy at the top (no pydantic, docker, boto3, psycopg or
redis): `--help` and `--version` stay as fast as Typer itself.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

# Typer's Rich help pulls in a Markdown renderer (~100 ms, more than Typer itself): plain
# help keeps `mindscape --help` about as fast as `import typer`. Our own output still uses Rich.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

from mindscape_ops import __version__  # noqa: E402
from mindscape_ops.cli import auth, backup, check, database, images, project
from mindscape_ops.cli import lifecycle as runtime
from mindscape_ops.cli.common import FilesOption, Verbosity, report_error  # noqa: E402

EXIT_CODES = (
    "\b\nExit codes:\n"
    "  0  success\n"
    "  1  a check, drift or operation failed; status: a service down or not ready\n"
    "  2  bad usage or invalid platform.yaml\n"
    "  3  environment unusable (Docker engine, database or S3 unreachable)"
)

app = typer.Typer(
    name="mindscape",
    help="Bootstrap a service platform from one platform.yaml: render CI, monitoring and security "
    "configs; provision Postgres, Redis, Prometheus and friends; run migrations, backups and checks.",
    no_args_is_help=True,
    epilog=EXIT_CODES,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"mindscape {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    files: FilesOption = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors, warnings and the data asked for; no progress.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also say what was decided and why.")] = False,
) -> None:
    """Bootstrap a service platform from one platform.yaml."""
    import logging

    from mindscape_ops.errors import UsageError
    from mindscape_ops.workspace.project import use_files

    if quiet and verbose:
        raise UsageError("-q/--quiet and -v/--verbose exclude each other", "pass one of them")
    use_files(files)
    Verbosity.quiet, Verbosity.verbose = quiet, verbose
    logging.getLogger("mindscape").setLevel(logging.DEBUG if verbose else logging.WARNING)


project.register(app)
app.add_typer(database.app, name="migrate")
app.add_typer(backup.app, name="backup")
app.add_typer(images.app, name="images")
app.add_typer(auth.app, name="auth")
runtime.register(app)
check.register(app)


def _epilogs(group: typer.Typer) -> None:
    """Every command's --help ends with the exit codes."""
    for command in group.registered_commands:
        command.epilog = command.epilog or EXIT_CODES
    for sub in group.registered_groups:
        sub.epilog = sub.epilog or EXIT_CODES
        if sub.typer_instance is not None:
            sub.typer_instance.info.epilog = sub.typer_instance.info.epilog or EXIT_CODES
            _epilogs(sub.typer_instance)


_epilogs(app)


def main() -> None:
    from mindscape_ops.workspace import collector

    collector.pause()  # resumed once the model is loaded (workspace.project.open_project)
    try:
        _main()
    finally:
        collector.restore()


def _main() -> None:
    from mindscape_ops.cli.common import show_library_warnings
    from mindscape_ops.errors import MindscapeError, OperationFailed

    show_library_warnings()
    try:
        app()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except SystemExit as exc:
        # Typer answers a broken pipe with exit 1 after wrapping stdout to keep it quiet
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _quiet_broken_pipe()
        raise
    except MindscapeError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # The last net: a file or socket failure no adapter translated is still no traceback.
        if exc.filename:
            report_error(
                OperationFailed(f"{exc.filename}: {exc.strerror or exc}", "check that path and its permissions")
            )
        else:
            report_error(OperationFailed(str(exc) or type(exc).__name__))
        sys.exit(1)


def _quiet_broken_pipe() -> None:
    """The reader went away (`mindscape plan | head -1`): stop quietly with 0, like other CLIs.
    stdout points at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(0)
