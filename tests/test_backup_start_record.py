"""The start record `backup create` starts pg_dump from before it loads the model
(services/backup_start.py), without an engine: it is read back like any input (every other
shape is no record), it belongs to the platform files it was made from, an early dump is taken
over only when the loaded model agrees with the record field by field, and nothing there ever
fails or starts a dump that --service or $DATABASE_URL rule out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindscape_ops.services import backup_start
from mindscape_ops.services.backup_start import RECORD, StartRecord
from mindscape_ops.workspace.project import open_project

PLATFORM = "version: 1\nproject: shop\nservices:\n  postgres: {port: 55432}\n  redis: {}\n"


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(PLATFORM)
    return open_project([tmp_path / "platform.yaml"])


def test_the_record_of_a_project_says_what_starting_pg_dump_needs_and_no_secret(project):
    record = backup_start.record_for(project)
    assert record is not None
    assert (record.project, record.service, record.container) == ("shop", "postgres", "shop-postgres")
    assert (record.user, record.database, record.host, record.port) == ("app", "app", "127.0.0.1", 55432)
    assert record.url_env == "DATABASE_URL" and len(record.platform) == 64
    backup_start.remember(project)
    path = project.root / RECORD
    assert StartRecord.from_json(path.read_bytes()) == record
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "password" not in path.read_text().lower()


def test_every_other_shape_is_no_record(project):
    good = json.loads(backup_start.record_for(project).to_json())
    assert StartRecord.from_json(json.dumps(good).encode()) is not None
    bad = [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"x"',
        json.dumps({**good, "extra": 1}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "port"}).encode(),
        json.dumps({**good, "version": 2}).encode(),
        json.dumps({**good, "port": "5432"}).encode(),
        json.dumps({**good, "port": 70000}).encode(),
        json.dumps({**good, "port": True}).encode(),
        json.dumps({**good, "version": True}).encode(),
        json.dumps({**good, "user": ""}).encode(),
        json.dumps({**good, "database": None}).encode(),
        json.dumps({**good, "container": "a\nb"}).encode(),
    ]
    for data in bad:
        assert StartRecord.from_json(data) is None, data


def test_a_record_made_from_other_platform_files_is_not_read(project):
    backup_start.remember(project)
    files = list(project.loaded.files)
    assert backup_start.read(project.root, files) is not None
    files[0].write_text(PLATFORM.replace("redis: {}", "redis: {port: 6390}"))
    assert backup_start.read(project.root, files) is None


def test_an_early_dump_is_taken_over_only_when_the_loaded_model_agrees(project, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    record = backup_start.record_for(project)
    stopped: list[bool] = []
    early = backup_start.Early(record, object(), lambda *exc: stopped.append(True))
    assert early.agrees(project, "postgres")
    assert not early.agrees(project, "redis")
    moved = backup_start.Early(
        StartRecord(**{**json.loads(record.to_json()), "port": 5999}), object(), lambda *exc: None
    )
    assert not moved.agrees(project, "postgres")  # a record that says another port: the model decides
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@elsewhere/db")
    assert not early.agrees(project, "postgres")
    early.stop()
    assert stopped == [True]


def test_no_early_dump_without_a_record_with_database_url_or_for_another_service(project, monkeypatch):
    """Nothing is started (the engine is never asked) when the record rules it out."""
    started: list[str] = []
    monkeypatch.setattr(backup_start, "_start", lambda root, record: started.append(record.service) or "started")
    files = list(project.loaded.files)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert backup_start.start_early(files) is None  # no record yet
    backup_start.remember(project)
    assert backup_start.start_early(files, "redis") is None
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@elsewhere/db")
    assert backup_start.start_early(files) is None
    monkeypatch.delenv("DATABASE_URL")
    assert backup_start.start_early(files) == "started" and started == ["postgres"]
    (project.root / RECORD).write_text("{not json")
    assert backup_start.start_early(files) is None


def test_an_early_start_that_fails_is_no_error(project, monkeypatch):
    backup_start.remember(project)

    def broken(root, record):
        raise OSError("engine socket gone")

    monkeypatch.setattr(backup_start, "_start", broken)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert backup_start.start_early(list(project.loaded.files)) is None


def test_a_platform_whose_first_backup_is_not_postgres_has_no_record(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text(
        "version: 1\nproject: shop\nservices:\n  postgres: {port: 55432}\n  redis: {}\n"
        "backups: {services: [redis, postgres]}\n"
    )
    project = open_project([tmp_path / "platform.yaml"])
    (tmp_path / RECORD).parent.mkdir()
    (tmp_path / RECORD).write_text("{}")
    assert backup_start.record_for(project) is None
    backup_start.remember(project)
    assert not (tmp_path / RECORD).exists()  # a stale one is removed


def _waiting_shell(tmp_path: Path, stdin: bytes) -> tuple[int, str]:
    """`dump_waiting_command` run by this machine's sh, a pg_dump that prints its arguments
    first on PATH, `stdin` on its stdin: (exit status, what pg_dump printed)."""
    import os
    import subprocess

    from mindscape_ops.services.postgres_backup import dump_waiting_command

    (tmp_path / "pg_dump").write_text('#!/bin/sh\nprintf "%s|" "$@"\n')
    (tmp_path / "pg_dump").chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(dump_waiting_command("app", "shop db"), input=stdin, env=env, capture_output=True, timeout=10)
    return done.returncode, done.stdout.decode()


def test_the_waiting_shell_runs_pg_dump_in_the_snapshot_it_reads(tmp_path):
    """Started before the snapshot is taken, it runs pg_dump once a line names it."""
    code, printed = _waiting_shell(tmp_path, b"00000003-0000001B-1\n")
    assert code == 0 and printed == "-Fc|-U|app|-d|shop db|--snapshot=00000003-0000001B-1|"


def test_the_waiting_shell_runs_nothing_when_its_input_ends_before_a_snapshot(tmp_path):
    """The early start failed after the shell was started (the connection, say): its stdin is
    closed, and no pg_dump runs outside any snapshot."""
    assert _waiting_shell(tmp_path, b"") == (1, "")


@pytest.mark.parametrize("name", ["00000003-0000001B-1", "0A-1"])
def test_a_snapshots_name_is_sent_as_one_line(name):
    from mindscape_ops.services.postgres_backup import snapshot_line

    assert snapshot_line(name) == name.encode() + b"\n"


@pytest.mark.parametrize("name", ["", "1\n--file=/tmp/x", "00000003", "00000003-1 ; rm", "x-y"])
def test_anything_else_from_the_server_is_refused_before_it_reaches_the_shell(name):
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.services.postgres_backup import snapshot_line

    with pytest.raises(OperationFailed, match="snapshot named"):
        snapshot_line(name)


class _Waiting:
    """pg_dump's waiting shell, as the engine's exec stream: what it was sent, whether closed."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def __iter__(self):
        yield b"dump"


class _Session:
    def __init__(self, answers: list) -> None:
        self.answers, self.closed, self.asked = answers, False, []

    def query(self, text: str) -> list:
        self.asked.append(text)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel(self) -> None:
        pass

    def wait_as_long_as_it_takes(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def early_parts(project, monkeypatch):
    """The project's record and secrets in place; the engine and the session faked."""
    from mindscape_ops.adapters import engine_socket, pg_session

    backup_start.remember(project)
    (project.root / ".mindscape" / "secrets.env").write_text("POSTGRES_PASSWORD=pw\n")
    waiting, sessions = _Waiting(), []

    class Streams:
        def container_by_name(self, name):
            return {"State": {"Running": True}}

        def exec_output(self, container, cmd, stdin=False):
            return waiting

    def connect(*args, **kwargs):
        return sessions[0]

    monkeypatch.setattr(engine_socket, "reader", lambda: Streams())
    monkeypatch.setattr(pg_session.Session, "connect", connect)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return project, waiting, sessions


@pytest.mark.parametrize(
    "answer",
    [
        RuntimeError("the server went away"),
        [["x; rm -rf /", "15.1", "10"]],  # no snapshot name
        [["a-b"]],  # not the three values asked
    ],
)
def test_an_early_start_that_fails_after_the_shell_started_closes_it_and_the_session(early_parts, answer):
    project, waiting, sessions = early_parts
    sessions.append(_Session([answer]))
    assert backup_start.start_early(project.loaded.files) is None
    assert sessions[0].asked  # it got as far as the snapshot
    assert waiting.closed and sessions[0].closed and waiting.sent == []


def test_an_early_dump_stopped_unread_closes_the_shell_and_the_session(early_parts):
    project, waiting, sessions = early_parts
    sessions.append(_Session([[["00000003-0000001B-1", "15.1", "8000"]]]))
    early = backup_start.start_early(project.loaded.files)
    assert early is not None and waiting.sent == [b"00000003-0000001B-1\n"]
    assert (early.dump.server_version, early.dump.estimate) == ("15.1", 8000)
    assert not waiting.closed and not sessions[0].closed  # the snapshot is held
    early.stop()
    assert waiting.closed and sessions[0].closed
