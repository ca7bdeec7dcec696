"""Pure decisions: (migration files, tracking rows) -> what each migration's state is, and
what `up`, `down` and `baseline` would do. No I/O; the engine carries the plans out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mindscape_ops.errors import OperationFailed, UsageError
from mindscape_ops.migrate.files import MigrationFile, shown


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the tracking table."""

    version: str
    name: str
    checksum: str
    applied_at: datetime | None = None
    duration_ms: int | None = None
    applied_by: str = ""
    method: str = "transaction"  # transaction | no-transaction | baseline

    @property
    def key(self) -> int:
        return int(self.version)


class State(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"  # applied, but the file's up section is no longer what ran
    MISSING = "missing"  # applied, but its file is gone


@dataclass(frozen=True)
class Entry:
    version: str
    name: str
    state: State
    file: MigrationFile | None
    applied: AppliedMigration | None
    out_of_order: bool = False  # pending, yet sorts before the newest applied migration

    @property
    def key(self) -> int:
        return int(self.version)

    @property
    def label(self) -> str:
        return self.file.filename if self.file else f"{self.version}_{self.name}.sql"


def entries(files: list[MigrationFile], applied: list[AppliedMigration]) -> list[Entry]:
    """Every migration known from either side, in version order, with its state."""
    by_key = {row.key: row for row in applied}
    newest_applied = max(by_key, default=None)
    found: list[Entry] = []
    for migration in files:
        row = by_key.pop(migration.key, None)
        if row is None:
            late = newest_applied is not None and migration.key < newest_applied
            found.append(Entry(migration.version, migration.name, State.PENDING, migration, None, late))
        else:
            state = State.APPLIED if row.checksum == migration.checksum else State.CHANGED
            found.append(Entry(migration.version, migration.name, state, migration, row))
    found += [Entry(row.version, row.name, State.MISSING, None, row) for row in by_key.values()]
    return sorted(found, key=lambda entry: entry.key)


# -- up -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | out-of-order | empty | transaction-control
    message: str


HINTS = {
    "changed": "an applied migration is history: restore the file as it was (git log -p FILE) and put "
    "the new change in a new migration (mindscape migrate new NAME)",
    "missing": "restore the file from version control: migrations that ran stay in the directory",
    "out-of-order": "give the file a version newer than the newest applied one (rename it), or pass "
    "--allow-out-of-order if it does not depend on the migrations before it",
    "empty": "write the migration's SQL under `-- migrate:up`, or delete the file",
    "transaction-control": "remove BEGIN/COMMIT: each migration already runs in one transaction with its "
    "record; for statements that must run outside one, mark the section `transaction:false`",
}


@dataclass(frozen=True)
class UpPlan:
    to_apply: list[MigrationFile]
    problems: list[Problem]  # any problem stops `up` before it runs anything

    @property
    def hint(self) -> str:
        kinds = dict.fromkeys(p.kind for p in self.problems)
        return "; ".join(HINTS[kind] for kind in kinds)


def plan_up(
    files: list[MigrationFile],
    applied: list[AppliedMigration],
    to: str | None = None,
    allow_out_of_order: bool = False,
) -> UpPlan:
    known = entries(files, applied)
    limit = _target_key(known, to)
    pending = [e for e in known if e.state is State.PENDING and (limit is None or e.key <= limit)]
    problems = drift_problems(known)
    if not allow_out_of_order:
        newest = max((e for e in known if e.applied is not None), key=lambda e: e.key, default=None)
        problems += [
            Problem(
                "out-of-order",
                f"{e.label} was never applied but sorts before the newest applied "
                f"migration, {newest.label}; it is not applied out of order",
            )
            for e in pending
            if e.out_of_order and newest is not None
        ]
    problems += [
        Problem("empty", f"{e.label}: the `-- migrate:up` section holds no statements")
        for e in pending
        if e.file is not None and e.file.up.is_empty
    ]
    problems += [
        Problem("transaction-control", f"{shown(e.file.path)}:{line}: ends the migration's transaction")
        for e in pending
        if e.file is not None and (line := e.file.up.transaction_control_line())
    ]
    return UpPlan([e.file for e in pending if e.file is not None], problems)


def drift_problems(known: list[Entry]) -> list[Problem]:
    """Applied migrations that no longer match their files: they stop `up`."""
    problems = []
    for e in known:
        if e.state is State.CHANGED:
            problems.append(
                Problem(
                    "changed",
                    f"{e.label} changed after it was applied (the up section's checksum is now "
                    f"{e.file.checksum[:12]}..., it was {e.applied.checksum[:12]}... when applied)",
                )
            )
        elif e.state is State.MISSING:
            problems.append(Problem("missing", f"{e.label} was applied but its file is gone"))
    return problems


def _target_key(known: list[Entry], to: str | None) -> int | None:
    if to is None:
        return None
    if not to.isdigit() or not any(e.key == int(to) for e in known):
        raise UsageError(f"--to {to}: no migration has that version", "`mindscape migrate status` lists them")
    return int(to)


# -- down ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revert:
    file: MigrationFile
    applied: AppliedMigration


def plan_down(files: list[MigrationFile], applied: list[AppliedMigration], steps: int) -> list[Revert]:
    """The `steps` most recently applied migrations, newest first. Raises when any of them
    cannot be reverted, before anything runs."""
    if steps < 1:
        raise UsageError("--steps must be at least 1")
    by_key = {m.key: m for m in files}
    newest = sorted(applied, key=lambda row: (row.applied_at or datetime.min, row.key), reverse=True)[:steps]
    reverts, problems = [], []
    for row in newest:
        migration = by_key.get(row.key)
        label = migration.filename if migration else f"{row.version}_{row.name}.sql"
        if migration is None:
            problems.append(f"{label}: its file is gone, so there is no down section to run")
        elif migration.checksum != row.checksum:
            problems.append(f"{label}: the file changed since it was applied; its down section may not match")
        elif migration.down is None:
            problems.append(f"{label}: has no `-- migrate:down` section (or it holds no statements)")
        elif line := migration.down.transaction_control_line():
            problems.append(f"{label}:{line}: BEGIN/COMMIT would end the down section's transaction")
        else:
            reverts.append(Revert(migration, row))
    if problems:
        raise OperationFailed(
            "cannot roll back: " + "; ".join(problems),
            "nothing was rolled back; write the missing down section (or restore the file), or roll back fewer steps",
        )
    return reverts


# -- baseline -----------------------------------------------------------------------------


def plan_baseline(
    files: list[MigrationFile],
    applied: list[AppliedMigration],
    version: str,
) -> list[MigrationFile]:
    """Files up to and including `version` that are not recorded yet."""
    if not version.isdigit() or not any(m.key == int(version) for m in files):
        raise UsageError(
            f"baseline {version}: no migration file has that version",
            "pass the version of the newest migration the database already has (`mindscape migrate status` lists them)",
        )
    done = {row.key for row in applied}
    return [m for m in files if m.key <= int(version) and m.key not in done]
