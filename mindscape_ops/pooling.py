"""Connection pooling: pgbouncer authenticates the platform user with the SCRAM verifier
that Postgres itself stores, so no plaintext password is written to any file."""

from __future__ import annotations

from .endpoints import Address
from .fsutil import atomic_write
from .project import Project
from .runtime.readiness import Credentials, NotReady


def userlist_path(project: Project):
    return project.workspace.dir / "pgbouncer" / "userlist.txt"


def write_userlist(project: Project, postgres: Address, creds: Credentials) -> None:
    """Copy the user's verifier from pg_authid into .mindscape/pgbouncer/userlist.txt."""
    import psycopg

    try:
        with psycopg.connect(host=postgres.host, port=postgres.port, user=creds.user, password=creds.password,
                             dbname=creds.database, connect_timeout=2) as conn:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (creds.user,)).fetchone()
    except psycopg.Error as exc:
        raise NotReady(f"postgres: {str(exc).strip() or type(exc).__name__}") from None
    if not row or not row[0]:
        raise NotReady(f"postgres has no password for {creds.user}")
    verifier = row[0].replace('"', '""')
    # readable by pgbouncer's unprivileged user in the container; .mindscape/ itself is 0700
    atomic_write(userlist_path(project), f'"{creds.user}" "{verifier}"\n', mode=0o644)
