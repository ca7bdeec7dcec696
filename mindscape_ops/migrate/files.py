"""Migration files: finding them, reading their sections, writing a new one. No database here.

The format is dbmate's, so users can bring their files:

    <version>_<name>.sql          version: digits, by convention a UTC time YYYYMMDDHHMMSS
    -- migrate:up [transaction:false]
    ...SQL...
    -- migrate:down [transaction:false]
    ...SQL...
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from mindscape_ops.errors import UsageError
from mindscape_ops.migrate.sql import Statement, has_statements, split_statements

FILE_RE = re.compile(r"^(?P<version>\d+)_(?P<name>[^/\\]+)\.sql$")
NAME_RE = re.compile(r"^[a-z0-9_]{1,100}$")
_MARKER = re.compile(r"^--\s*migrate:(?P<section>up|down)\b(?P<options>[^\n]*)$", re.MULTILINE)
_OPTIONS = {"transaction": ("true", "false")}
_TRANSACTION_CONTROL = re.compile(
    r"(begin|commit|rollback|abort|end|start\s+transaction)\b(?!\s+atomic)", re.IGNORECASE
)


class MigrationFileError(UsageError):
    """A migration file that cannot be understood; the message starts with `path:line:`."""


@dataclass(frozen=True)
class Section:
    sql: str
    line: int  # file line of the section's first SQL line (the line after its marker)
    transaction: bool = True

    @cached_property
    def statements(self) -> list[Statement]:
        # Split once: planning, checking and running a section all need its statements.
        return split_statements(self.sql)

    @property
    def is_empty(self) -> bool:
        """Only blank lines and comments: there is nothing to run."""
        return not has_statements(self.sql)

    def transaction_control_line(self) -> int | None:
        """File line of a BEGIN/COMMIT/ROLLBACK in a transactional section: it would end the
        transaction that makes the migration and its record one unit."""
        if not self.transaction:
            return None
        for statement in self.statements:
            if _TRANSACTION_CONTROL.match(statement.text):
                return self.line + self.sql.count("\n", 0, statement.offset)
        return None


@dataclass(frozen=True)
class MigrationFile:
    version: str
    name: str
    path: Path
    up: Section
    down: Section | None  # None: no down section, or one without statements

    @property
    def key(self) -> int:
        return int(self.version)

    @property
    def filename(self) -> str:
        return self.path.name

    @cached_property
    def checksum(self) -> str:
        return checksum(self.up.sql)


def checksum(sql: str) -> str:
    """sha256 of an up section. Line endings and the blank edges of the section don't count,
    so a checkout with CRLF line endings or an extra blank line is not a changed migration."""
    normalized = sql.replace("\r\n", "\n").strip("\n").rstrip()
    return hashlib.sha256(normalized.encode()).hexdigest()


def parse(path: Path, text: str) -> MigrationFile:
    match = FILE_RE.match(path.name)
    if not match:
        raise MigrationFileError(
            f"{path}: not a migration file name",
            "name it <version>_<name>.sql, e.g. 20240131120000_create_users.sql",
        )
    text = text.replace("\r\n", "\n")
    markers = list(_MARKER.finditer(text))
    sections: dict[str, Section] = {}
    for i, marker in enumerate(markers):
        line = text.count("\n", 0, marker.start()) + 1
        kind = marker.group("section")
        if kind in sections:
            raise MigrationFileError(f"{path}:{line}: a second `-- migrate:{kind}` marker")
        if kind == "down" and "up" not in sections:
            raise MigrationFileError(f"{path}:{line}: `-- migrate:down` comes before `-- migrate:up`")
        body_start = min(marker.end() + 1, len(text))
        body_end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        transaction = _transaction_option(path, line, marker.group("options"))
        sections[kind] = Section(text[body_start:body_end], line + 1, transaction)
    if "up" not in sections:
        raise MigrationFileError(f"{path}:1: no `-- migrate:up` marker", "put `-- migrate:up` above the SQL")
    if has_statements(text[: markers[0].start()]):
        first = split_statements(text[: markers[0].start()])[0]
        line = text.count("\n", 0, first.offset) + 1
        raise MigrationFileError(f"{path}:{line}: SQL before `-- migrate:up`", "move it below that line")
    down = sections.get("down")
    if down is not None and down.is_empty:
        down = None
    return MigrationFile(match["version"], match["name"], path, sections["up"], down)


def _transaction_option(path: Path, line: int, options: str) -> bool:
    transaction = True
    for option in options.split():
        key, _, value = option.partition(":")
        if key not in _OPTIONS or value not in _OPTIONS[key]:
            raise MigrationFileError(
                f"{path}:{line}: unknown migration option {option!r}",
                "the one option is `transaction:false` (for statements that cannot run in a transaction)",
            )
        transaction = value == "true"
    return transaction


def discover(directory: Path) -> list[MigrationFile]:
    """Every `*.sql` in `directory` (not recursive), in version order. A `.sql` file whose
    name does not follow the pattern is an error: silently skipping it would skip a migration."""
    if not directory.is_dir():
        return []
    found: dict[int, MigrationFile] = {}
    for path in sorted(directory.glob("*.sql"), key=lambda path: path.name):  # names: one folder, and faster
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MigrationFileError(f"{path}: cannot be read ({exc})") from None
        migration = parse(path, text)
        other = found.get(migration.key)
        if other is not None:
            raise MigrationFileError(
                f"{path}: version {migration.version} is also used by {other.filename}",
                "every migration needs its own version; rename one (mindscape migrate new gives a fresh one)",
            )
        found[migration.key] = migration
    return [found[key] for key in sorted(found)]


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- a new file ---------------------------------------------------------------------------

TEMPLATE = """\
-- {name}: created by `mindscape migrate new` on {created}.
-- Write the change under migrate:up and how to undo it under migrate:down.
-- Each migration runs in one transaction with its bookkeeping: it applies entirely or not at all.
-- Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...) need
-- `-- migrate:up transaction:false`; such a migration cannot roll back, so make it re-runnable
-- (IF NOT EXISTS / IF EXISTS).

-- migrate:up


-- migrate:down

"""


def check_new_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a valid migration name",
            "use 1-100 lower-case letters, digits and '_', e.g. create_users or add_orders_index",
        )
    return name


def taken_versions(directory: Path) -> set[int]:
    """Versions in use, from file names alone (a broken file elsewhere must not block `new`)."""
    matches = (FILE_RE.match(path.name) for path in directory.glob("*.sql")) if directory.is_dir() else ()
    return {int(match["version"]) for match in matches if match}


def new_version(taken: set[int], now: datetime | None = None) -> str:
    """Now, as YYYYMMDDHHMMSS (UTC); a second later when that version is taken."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    version = int(moment.strftime("%Y%m%d%H%M%S"))
    while version in taken:
        version = _next_second(version)
    return str(version)


def _next_second(version: int) -> int:
    try:
        moment = datetime.strptime(str(version), "%Y%m%d%H%M%S")
    except ValueError:
        return version + 1
    return int((moment + timedelta(seconds=1)).strftime("%Y%m%d%H%M%S"))


def new_file_text(name: str, now: datetime | None = None) -> str:
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return TEMPLATE.format(name=name, created=created)
