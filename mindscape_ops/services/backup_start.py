"""`backup create` starts pg_dump before it loads the platform model.

What starting the dump needs (the postgres container, its user and database, where Postgres
answers on this machine) is kept in a small start record, `.mindscape/backup-start.json`,
written by `up` once Postgres is ready and by every `backup create` once the model is loaded
(when it changed). The next `backup create` reads it before anything else, as it reads any input
file (a record of the wrong shape, or made from other platform files, is no record), opens its
snapshot and starts pg_dump in the container, and only then loads the model: the interpreter
imports and validates while pg_dump connects and reads its catalog. Once the model is loaded the
record must agree with it field by field (the configuration may interpolate the environment),
else the early dump is stopped and the dump starts the usual way. Nothing here ever fails a
backup: whatever keeps the dump from starting early leaves it to the usual start, which says
what is wrong. The record holds no secret: the password is read from secrets.env, as the usual
start reads it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindscape_ops.services.contract import Dump
    from mindscape_ops.workspace.project import Project

RECORD = ".mindscape/backup-start.json"
VERSION = 1
SERVICE = "postgres"


@dataclass(frozen=True)
class StartRecord:
    version: int
    project: str
    platform: str  # sha256 of the platform files (names and bytes), in order
    url_env: str  # the variable that, when set, points backups at another database
    service: str  # the first service `backup create` backs up
    container: str
    user: str
    database: str
    host: str
    port: int

    @classmethod
    def from_json(cls, data: bytes) -> StartRecord | None:
        """Pure: the record in `data`, or None when it is not one (any other shape or value)."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        names = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or set(raw) != names:
            return None
        version, port = raw["version"], raw["port"]
        if any(isinstance(n, bool) or not isinstance(n, int) for n in (version, port)):
            return None
        if version != VERSION or not 1 <= port <= 65535:
            return None
        texts = [raw[name] for name in names - {"version", "port"}]
        if not all(isinstance(t, str) and t and "\0" not in t and "\n" not in t for t in texts):
            return None
        return cls(**raw)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def files_digest(files: Sequence[Path]) -> str | None:
    """The platform files' names and bytes, hashed (None when one cannot be read)."""
    digest = hashlib.sha256()
    try:
        for path in files:
            digest.update(str(path.resolve()).encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def record_for(project: Project) -> StartRecord | None:
    """The record of a loaded project: None when its first backup is not of Postgres in its
    container (another service first, or none)."""
    platform = project.platform
    chosen = platform.backup_services
    digest = files_digest(project.loaded.files)
    if not chosen or chosen[0] != SERVICE or digest is None:
        return None
    pg = platform.services.enabled().get(SERVICE)
    if pg is None:
        return None
    # where `up` published it, as provision/endpoints.service_address says (a lower layer here)
    host = "127.0.0.1" if pg.bind in ("0.0.0.0", "") else pg.bind
    port = pg.port if pg.port != "auto" else project.workspace.read_state().get("ports", {}).get(SERVICE)
    if isinstance(port, bool) or not isinstance(port, int):
        return None  # no port picked yet
    return StartRecord(
        VERSION,
        platform.project,
        digest,
        platform.database.url_env,
        SERVICE,
        platform.container_name(SERVICE),
        pg.user,
        pg.database,
        host,
        port,
    )


def remember(project: Project) -> None:
    """Write the project's record when it changed (or remove a stale one); never fails."""
    with contextlib.suppress(Exception):
        path = project.root / RECORD
        record = record_for(project)
        if record is None:
            path.unlink(missing_ok=True)
            return
        text = record.to_json()
        if not path.is_file() or path.read_text() != text:
            from mindscape_ops.adapters.files import atomic_write

            atomic_write(path, text, mode=0o600)


def read(root: Path, files: Sequence[Path]) -> StartRecord | None:
    """The record beside `files`, when it was made from these very files; else None."""
    try:
        record = StartRecord.from_json((root / RECORD).read_bytes())
    except OSError:
        return None
    if record is None or record.platform != files_digest(files):
        return None
    return record


@dataclass
class Early:
    """A dump started before the model was loaded: the record it was started from, the dump,
    and how to end it (pg_dump stopped, the snapshot's transaction ended)."""

    record: StartRecord
    dump: Dump
    close: Callable[..., Any]  # a context manager's __exit__

    def agrees(self, project: Project, service: str) -> bool:
        """Whether the loaded model would have started this very dump."""
        return (
            service == self.record.service
            and record_for(project) == self.record
            and not os.environ.get(self.record.url_env)
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.close(None, None, None)


def start_early(files: Sequence[Path], service: str | None = None) -> Early | None:
    """pg_dump started from the start record beside `files`, before the model is loaded; None
    when there is no valid record, `service` (--service) is another one, or anything keeps the
    dump from starting (never raises)."""
    try:
        root = files[0].resolve().parent
        record = read(root, files)
        if record is None or os.environ.get(record.url_env) or service not in (None, record.service):
            return None
        return _start(root, record)
    except Exception:  # noqa: BLE001 - the usual start says what is wrong
        return None


def _start(root: Path, record: StartRecord) -> Early | None:
    from dotenv import dotenv_values

    from mindscape_ops.adapters.engine_socket import reader

    # secrets.env, read as the workspace reads it (python-dotenv's rules)
    secrets = dotenv_values(root / ".mindscape" / "secrets.env", interpolate=False, encoding="utf-8")
    password = secrets.get("POSTGRES_PASSWORD")
    if not password:
        return None
    streams = reader()
    details = streams.container_by_name(record.container)
    if details is None or not details.get("State", {}).get("Running"):
        return None
    # pg_dump's shell first, waiting for the snapshot's name on its stdin: the exec's start-up in
    # the container (~40 ms) passes while our session takes the snapshot
    from mindscape_ops.adapters.pg_session import Session
    from mindscape_ops.services import postgres_backup
    from mindscape_ops.services.contract import Dump

    waiting = streams.exec_output(
        record.container, postgres_backup.dump_waiting_command(record.user, record.database), stdin=True
    )
    with contextlib.ExitStack() as stop:  # unwound when the dump does not start
        stop.callback(waiting.close)  # its shell reads no line and runs nothing, or pg_dump stops
        # the snapshot exported by a session of the standard library's, which counts the rows in
        # it while the dump is read and holds it until the dump ends (psycopg's import: ~90 ms)
        holder = Session.connect(record.host, record.port, record.user, password, record.database)
        stop.callback(holder.close)  # the snapshot's transaction ends with its session
        [[snapshot, version, estimate]] = holder.query(postgres_backup.SNAPSHOT)
        holder.wait_as_long_as_it_takes()  # the counts
        waiting.send(postgres_backup.snapshot_line(snapshot or ""))
        chunks = postgres_backup.output_of(waiting, "pg_dump")
        source = f"container {record.container}"
        made = Dump(chunks, postgres_backup.FORMAT, str(version), source, None, int(estimate or 0))
        manager = postgres_backup.dumping_in(holder.query, holder.cancel, made, stop.pop_all())
        made = manager.__enter__()
    return Early(record, made, manager.__exit__)
