"""Schema migrations: dbmate-style SQL files applied to Postgres, each in one transaction with
its tracking row, under one advisory lock per run.

    files.py    finding and parsing migration files (pure)
    sql.py      splitting SQL into statements, offsets to lines (pure)
    pending.py  applied/pending/changed/missing and what up/down/baseline would do (pure)
    failures.py what a failed migration tells the user: file, line, column, fate (pure)
    pipeline.py batches and Postgres's pipeline mode: the queries of a batch, sent and answered
    runner.py   the psycopg adapter: connect, lock, track, apply and revert
    actions.py  the library calls the CLI and `mindscape up` use
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from mindscape_ops.workspace.project import Project


def apply_pending(project: Project, echo: Callable[[str], None] = print) -> int:
    """Apply pending migrations to the provisioned postgres (for `mindscape up` when
    database.migrate_on_up is true; a DATABASE_URL in the environment is not used).
    Returns how many ran; raises a MindscapeError when one fails or the database is unreachable."""
    from mindscape_ops.migrate.actions import apply_pending as _apply_pending

    return _apply_pending(project, echo=echo)
