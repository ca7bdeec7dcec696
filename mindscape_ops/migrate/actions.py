"""What `mindscape migrate ...` does, as library calls: files + database -> plan -> engine.
The CLI and `mindscape up` (migrate_on_up) call these; output goes through `echo`."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from mindscape_ops.adapters.files import atomic_write
from mindscape_ops.errors import OperationFailed
from mindscape_ops.migrate import runner as engine
from mindscape_ops.migrate.files import (
    MigrationFile,
    check_new_name,
    discover,
    new_file_text,
    new_version,
    shown,
    taken_versions,
)
from mindscape_ops.migrate.pending import Entry, entries, plan_baseline, plan_down, plan_up
from mindscape_ops.migrate.runner import Echo
from mindscape_ops.provision.endpoints import database_target
from mindscape_ops.workspace.project import Project
from mindscape_ops.workspace.store import current_user


def migrations_dir(project: Project) -> Path:
    return project.root / project.platform.database.migrations_dir


def _quiet(_: str) -> None:
    pass


def applied_by() -> str:
    return f"{current_user()}@{socket.gethostname()}"


def _lock_timeout(project: Project, lock_timeout: float | None) -> float:
    return project.platform.database.lock_timeout.seconds if lock_timeout is None else lock_timeout


@dataclass
class UpResult:
    database: str
    applied: list[tuple[MigrationFile, int]] = field(default_factory=list)  # (migration, ms)
    would_apply: list[MigrationFile] = field(default_factory=list)  # --dry-run
    already_applied: int = 0


def up(
    project: Project,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
    lock_timeout: float | None = None,
    echo: Echo = _quiet,
    external: bool = True,
) -> UpResult:
    """Apply pending migrations in version order, each in its own transaction with its record.
    Stops at the first failure (raising); what was applied before it stays applied.
    `external=False` ignores DATABASE_URL: the provisioned postgres only."""
    directory = migrations_dir(project)
    files = discover(directory)
    if not files:
        echo(f"no migration files in {shown(directory)}/ (mindscape migrate new NAME writes one)")
    target = database_target(project, external=external)
    result = UpResult(target.display)
    with engine.connect(target, echo) as db:
        if not dry_run:
            db.lock(_lock_timeout(project, lock_timeout), echo)
            db.ensure_tracking_table()
        applied = db.applied()
        plan = plan_up(files, applied, to=to, allow_out_of_order=allow_out_of_order)
        result.already_applied = len(applied)
        if plan.problems:
            listed = "\n".join(f"  - {p.message}" for p in plan.problems)
            raise OperationFailed(f"migrate up stopped before applying anything:\n{listed}", plan.hint)
        if dry_run:
            result.would_apply = plan.to_apply
            return result
        for migration, took in db.apply_all(plan.to_apply, applied_by(), echo):
            result.applied.append((migration, took))
            echo(f"applied {migration.filename} ({took} ms)")
    return result


def apply_pending(project: Project, echo: Echo = print) -> int:
    """For `mindscape up` with database.migrate_on_up: apply what is pending to the postgres
    `up` provisions (never to a DATABASE_URL exported in the shell); returns how many."""
    return len(up(project, echo=echo, external=False).applied)


def down(
    project: Project, *, steps: int = 1, dry_run: bool = False, lock_timeout: float | None = None, echo: Echo = _quiet
) -> list[MigrationFile]:
    """Run the down sections of the `steps` most recently applied migrations, newest first."""
    files = discover(migrations_dir(project))
    reverted: list[MigrationFile] = []
    with engine.connect(database_target(project), echo) as db:
        if not dry_run:
            db.lock(_lock_timeout(project, lock_timeout), echo)
        applied = db.applied()
        if not applied:
            echo("nothing to roll back: no migration is applied")
            return reverted
        if steps > len(applied):
            echo(f"only {len(applied)} migration(s) applied; rolling back all of them")
        planned = [revert.file for revert in plan_down(files, applied, steps)]
        if dry_run:
            for migration in planned:
                echo(f"would roll back {migration.filename}")
            return planned
        for migration, took in db.revert_all(planned):
            echo(f"rolled back {migration.filename} ({took} ms)")
            reverted.append(migration)
    return reverted


def baseline(
    project: Project, version: str, *, lock_timeout: float | None = None, echo: Echo = _quiet
) -> list[MigrationFile]:
    """Record every migration up to `version` as applied without running it."""
    files = discover(migrations_dir(project))
    with engine.connect(database_target(project), echo) as db:
        db.lock(_lock_timeout(project, lock_timeout), echo)
        db.ensure_tracking_table()
        marked = plan_baseline(files, db.applied(), version)
        if marked:
            db.mark_applied(marked, applied_by())
    for migration in marked:
        echo(f"marked {migration.filename} as applied (not run)")
    return marked


@dataclass
class StatusReport:
    database: str
    directory: Path
    tracking_table_exists: bool
    entries: list[Entry]


def status(project: Project, echo: Echo = _quiet) -> StatusReport:
    directory = migrations_dir(project)
    files = discover(directory)
    target = database_target(project)
    with engine.connect(target, echo) as db:
        exists = db.has_tracking_table()
        applied = db.applied() if exists else []
    return StatusReport(target.display, directory, exists, entries(files, applied))


def new(project: Project, name: str) -> Path:
    """Write `<version>_<name>.sql` from the template into the migrations directory."""
    check_new_name(name)
    directory = migrations_dir(project)
    version = new_version(taken_versions(directory))
    path = directory / f"{version}_{name}.sql"
    atomic_write(path, new_file_text(name))
    return path
