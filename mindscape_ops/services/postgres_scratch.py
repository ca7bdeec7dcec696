"""Scratch databases of `verify` and `restore`, named so a stale one is recognised and dropped.

A scratch database is as big as the backup restored into it. A process killed while it works
(SIGKILL, a lost CI runner) cannot drop its own: so each is named for its project, the creating
process' pid and the time (`mindscape_verify_shop_4242_1767225600`), and its creator holds a
Postgres advisory lock named after it, on a connection of its own, for as long as it lives. The
next `verify` or `restore` of the project drops every scratch database of that project whose
lock is free (its creator is gone, on whatever machine it ran), and says so. A lock, not the
pid: the creator may have run on another machine, and a pid is reused. The locks are taken in
the maintenance database (`postgres`), as advisory locks are per database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

    from mindscape_ops.provision.endpoints import DatabaseTarget

log = logging.getLogger("mindscape")
KINDS = ("verify", "restore")
LOCK_SPACE = 0x6D73  # the first key of our two-key advisory locks: "ms"
_NAME = re.compile(r"^mindscape_(verify|restore)_([a-z0-9_]+)_(\d+)_(\d+)$")
_EARLIER = re.compile(r"^mindscape_(verify|restore)_[0-9a-f]{8}$")  # earlier versions: no project, no pid


_MINE = re.compile(r"^mindscape_(verify|restore|replaced)_")  # scratch, and a replaced live database set aside


def is_reserved(name: str) -> bool:
    """A name of the kind this tool makes and drops on its own: never a user's `--into`."""
    return bool(_MINE.match(name))


@dataclass(frozen=True)
class Scratch:
    kind: str
    project: str  # as it fits a database name (see slug)
    pid: int
    created: datetime


def slug(project: str) -> str:
    """The project as a database name may hold it ('-' as '_', at most 24 characters)."""
    return project.replace("-", "_")[:24]


def scratch_name(kind: str, project: str, pid: int | None = None, now: float | None = None) -> str:
    """At most 63 characters (Postgres' limit): 10 + 7 + 24 + 7 + 10 + 3 separators."""
    assert kind in KINDS
    return f"mindscape_{kind}_{slug(project)}_{pid or os.getpid()}_{int(now or time.time())}"


def parse(name: str) -> Scratch | None:
    match = _NAME.match(name)
    if match is None:
        return None
    kind, project, pid, at = match.groups()
    return Scratch(kind, project, int(pid), datetime.fromtimestamp(int(at), UTC))


def of_earlier_versions(names: list[str]) -> list[str]:
    """Pure: scratch databases named by earlier versions (whose project and creator cannot be told)."""
    return [name for name in names if _EARLIER.match(name)]


def of_project(names: list[str], project: str, but: str = "") -> list[str]:
    """Pure: the scratch databases among `names` that `project` made (except `but`)."""
    return [name for name in names if name != but and (found := parse(name)) and found.project == slug(project)]


@contextlib.contextmanager
def claimed(target: DatabaseTarget, kind: str, project: str) -> Iterator[str]:
    """A scratch database name for this process, its lock held until the block ends; the
    project's stale scratch databases are dropped first."""
    from mindscape_ops.services.postgres_databases import execute, maintenance

    name = scratch_name(kind, project)
    with maintenance(target) as guard:
        execute(guard, "SELECT pg_advisory_lock(%s, hashtext(%s))", args=(LOCK_SPACE, name))
        drop_stale(guard, project, but=name)
        yield name


def drop_stale(conn: psycopg.Connection, project: str, but: str = "") -> list[str]:
    """Drop the project's scratch databases whose creator is gone (nobody holds their lock)."""
    from mindscape_ops.services.postgres_databases import execute

    names = [
        row[0]
        for row in execute(conn, "SELECT datname FROM pg_database WHERE datname LIKE %s", args=("mindscape\\_%",))
    ]
    dropped = []
    for name in of_project(names, project, but):
        if not execute(conn, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", args=(LOCK_SPACE, name))[0][0]:
            continue  # its creator still works in it
        try:
            execute(conn, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
        finally:
            execute(conn, "SELECT pg_advisory_unlock(%s, hashtext(%s))", args=(LOCK_SPACE, name))
        found = parse(name)
        assert found is not None
        log.warning(
            f"dropped the scratch database {name}: left by a {found.kind} (pid {found.pid}, "
            f"{found.created:%Y-%m-%d %H:%M:%S}Z) that ended without removing it"
        )
        dropped.append(name)
    for name in of_earlier_versions(names):
        log.warning(
            f"database {name} looks like a scratch database an earlier version left (a verify or restore "
            f"killed midway); if none runs, drop it: DROP DATABASE {name};"
        )
    return dropped
