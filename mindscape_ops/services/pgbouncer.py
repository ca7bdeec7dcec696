"""pgbouncer: connection pooling in front of Postgres. It authenticates the platform user
with a SCRAM verifier, the same one Postgres stores, so no plaintext password is written to
any file but secrets.env.

The verifier is made once from POSTGRES_PASSWORD (kept while it still matches), written to
.mindscape/pgbouncer/userlist.txt, and given to a fresh Postgres by an init script, so that
pgbouncer's SCRAM pass-through works for `mindscape up` and the compose export alike. On an
existing database `up` copies the verifier Postgres really stores (pg_authid) instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mindscape_ops.adapters.files import atomic_write, write_if_changed
from mindscape_ops.services.contract import Address, Credentials, NotReady, wait_until_ready
from mindscape_ops.services.definition import Artifact, KubeShape, ServiceDef, UpContext, deploy
from mindscape_ops.services.postgres import INITDB, SelectOne, connect
from mindscape_ops.services.postgres import credentials as postgres_credentials
from mindscape_ops.services.spec import Container, Mount
from mindscape_ops.settings.base import ImageRef, PortSpec, Service

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.workspace.project import Project


class Pgbouncer(Service):
    image: ImageRef = "edoburu/pgbouncer:v1.23.1-p3"
    port: PortSpec = 6432
    pool_mode: Literal["session", "transaction", "statement"] = "transaction"
    default_pool_size: int = Field(20, ge=1, le=10000)
    min_pool_size: int = Field(0, ge=0, le=10000)
    reserve_pool_size: int = Field(0, ge=0, le=10000)
    max_client_conn: int = Field(200, ge=1, le=100000)


def container(platform: Platform) -> Container:
    return Container(
        container_port=6432,
        command=("pgbouncer", "/etc/pgbouncer/pgbouncer.ini"),
        mounts=(
            Mount(f"{platform.paths.deploy}/pgbouncer/pgbouncer.ini", "/etc/pgbouncer/pgbouncer.ini"),
            Mount(".mindscape/pgbouncer/userlist.txt", "/etc/pgbouncer/userlist.txt"),
        ),
        healthcheck=("CMD-SHELL", "pg_isready -h 127.0.0.1 -p 6432 || exit 1"),
    )


def prepare(project: Project, secrets: Mapping[str, str]) -> list[str]:
    ensure_pooler_files(project.root, project.platform.services.postgres.user, secrets["POSTGRES_PASSWORD"])
    return []


def userlist_from_postgres(up: UpContext) -> None:
    """Before pgbouncer starts: the verifier Postgres really holds (postgres is started first)."""
    address, creds = up.address("postgres"), up.credentials("postgres")
    wait_until_ready(lambda: copy_verifier_from_postgres(up.project, address, creds), up.waiting("postgres"))


SERVICE = ServiceDef(
    name="pgbouncer",
    summary="connection pooling in front of Postgres",
    settings=Pgbouncer,
    container=container,
    probe=SelectOne(),  # SELECT 1 through the pooler
    depends_on=("postgres",),
    artifacts=(Artifact("pgbouncer/pgbouncer.ini.j2", deploy("pgbouncer/pgbouncer.ini")),),
    credentials=postgres_credentials,
    prepare=prepare,
    before_start=userlist_from_postgres,
    kubernetes=KubeShape(run_as=70, clients=True),
)


ITERATIONS = 4096
_VERIFIER_RE = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")


def scram_verifier(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """The SCRAM-SHA-256 secret Postgres stores for `password` (RFC 5802 / 7677)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def verifier_matches(verifier: str, password: str) -> bool:
    match = _VERIFIER_RE.match(verifier)
    if not match:
        return False
    iterations, salt = int(match.group(1)), base64.b64decode(match.group(2))
    return hmac.compare_digest(scram_verifier(password, salt, iterations), verifier)


def userlist_path(root: Path) -> Path:
    return root / ".mindscape" / "pgbouncer" / "userlist.txt"


def initdb_dir(root: Path) -> Path:
    return root / INITDB


def _write_userlist(root: Path, user: str, verifier: str) -> None:
    escaped = verifier.replace('"', '""')
    # readable by pgbouncer's unprivileged user in the container; .mindscape/ itself is 0700
    atomic_write(userlist_path(root), f'"{user}" "{escaped}"\n', mode=0o644)


def _current_verifier(root: Path) -> str | None:
    try:
        text = userlist_path(root).read_text()
    except OSError:
        return None
    match = re.match(r'^"[^"]*" "([^"]+)"', text)
    return match.group(1) if match else None


def ensure_pooler_files(root: Path, user: str, password: str) -> None:
    """userlist.txt and the Postgres init script, made once and kept while they match."""
    verifier = _current_verifier(root)
    if verifier is None or not verifier_matches(verifier, password):
        verifier = scram_verifier(password, os.urandom(16))
        _write_userlist(root, user, verifier)
    write_if_changed(initdb_dir(root) / "10-mindscape-scram.sql", f"ALTER ROLE \"{user}\" PASSWORD '{verifier}';\n")


def copy_verifier_from_postgres(project: Project, postgres: Address, creds: Credentials) -> None:
    """On an existing database, trust what Postgres stores (it may predate our init script)."""
    import psycopg

    try:
        with connect(postgres, creds, autocommit=False) as conn:
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (creds.user,)).fetchone()
    except psycopg.Error as exc:
        raise NotReady(f"postgres: {str(exc).strip() or type(exc).__name__}") from None
    if not row or not row[0]:
        raise NotReady(f"postgres has no password for {creds.user}")
    if row[0] != _current_verifier(project.root):
        _write_userlist(project.root, creds.user, row[0])
