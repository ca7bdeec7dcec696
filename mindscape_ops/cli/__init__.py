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
from mindscape_ops.cli import backup, check, database, project
from mindscape_ops.cli import lifecycle as runtime
from mindscape_ops.cli.common import report_error  # noqa: E402

app = typer.Typer(
    name="mindscape",
    help="Bootstrap a service platform from one platform.yaml: render CI, monitoring and security "
    "configs; provision Postgres, Redis, Prometheus and friends; run migrations, backups and checks.",
    no_args_is_help=True,
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
) -> None:
    """Bootstrap a service platform from one platform.yaml."""


project.register(app)
app.add_typer(database.app, name="migrate")
app.add_typer(backup.app, name="backup")
runtime.register(app)
check.register(app)


def main() -> None:
    from mindscape_ops.cli.common import show_library_warnings
    from mindscape_ops.errors import MindscapeError, OperationFailed

    show_library_warnings()
    try:
        app()
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
