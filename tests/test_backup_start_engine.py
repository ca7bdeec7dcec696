"""`backup create` of postgres starts pg_dump before it readies the store and the key (the
start-up overlaps the dump), and a store failing then stops the dump: real engine. The platform
fixture and helpers come from test_backup_postgres_engine.py."""

from __future__ import annotations

import json
import os
import time

import psycopg
import pytest

from .conftest import remove_project, run_cli, unique_project
from .test_backup_postgres_engine import backups, db_url, platform_text

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("backup-start")
    project = unique_project("bs")
    (directory / "platform.yaml").write_text(platform_text(project, local_images))
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory
    finally:
        remove_project(docker_client, project)


def _pg_dumps_running(container) -> int:
    found = container.exec_run(
        [
            "sh",
            "-c",
            'n=0; for p in /proc/[0-9]*; do grep -qa "^pg_dump" "$p/cmdline" 2>/dev/null && n=$((n+1)); done; echo $n',
        ]
    )
    return int(found.output.decode().strip())


def test_the_dump_starts_before_the_store_is_ready_and_a_failing_store_stops_it(platform, docker_client, monkeypatch):
    """pg_dump starts first and runs while the store and the key are made ready (start-up
    overlapped); a store that then fails ends the dump, stores nothing and leaves no pg_dump."""
    from mindscape_ops.backup import actions
    from mindscape_ops.backup.stores import LocalStore
    from mindscape_ops.errors import OperationFailed
    from mindscape_ops.services import postgres_backup as postgres
    from mindscape_ops.workspace.project import open_project

    monkeypatch.delenv("DATABASE_URL", raising=False)
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE bulk3 AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g")
    listed_before = {b["id"] for b in backups(platform)}
    events: list[str] = []
    start = postgres._started_in_container
    monkeypatch.setattr(postgres, "_started_in_container", lambda *a, **kw: events.append("pg_dump") or start(*a, **kw))

    def full(store: LocalStore) -> None:
        events.append("store check")
        raise OperationFailed("the backup folder is full")

    monkeypatch.setattr(LocalStore, "check", full)
    try:
        with pytest.raises(OperationFailed, match="the backup folder is full"):
            actions.create(open_project([platform / "platform.yaml"]), "postgres")
        assert events == ["pg_dump", "store check"]
        container = docker_client.containers.get(
            json.loads(run_cli("status", "--json", cwd=platform).stdout)[0]["container"]
        )
        deadline = time.monotonic() + 20
        while _pg_dumps_running(container) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pg_dumps_running(container) == 0
        assert {b["id"] for b in backups(platform)} == listed_before
        assert not list((platform / "backups").glob("*.partial"))
    finally:
        with psycopg.connect(db_url(platform), autocommit=True) as conn:
            conn.execute("DROP TABLE bulk3")


# `backup create` as a user runs it, with pg_dump's start traced (its exec, or the snapshot's
# name sent to the shell that waits for it): whether the platform model was loaded by then, and
# the process's CPU seconds up to it (bench/backup --startup reads the same).
TRACED = """
import json, os, runpy, sys
from mindscape_ops.adapters import engine_socket, exec_stream
def seen():
    if not os.path.exists(trace):
        times = os.times()
        with open(trace, "w") as out:
            loaded = {"model": "mindscape_ops.config.models", "manifests": "mindscape_ops.backup.model",
                      "psycopg": "psycopg"}
            json.dump({k: m in sys.modules for k, m in loaded.items()} | {"cpu": times.user + times.system}, out)
exec_output, send = engine_socket.SocketEngine.exec_output, exec_stream.ExecOutput.send
def traced_exec(self, container, cmd, user="", stdin=False):
    if "pg_dump" in cmd and not stdin:
        seen()
    return exec_output(self, container, cmd, user, stdin)
def traced_send(self, data):
    seen()
    return send(self, data)
engine_socket.SocketEngine.exec_output, exec_stream.ExecOutput.send = traced_exec, traced_send
trace = sys.argv[1]
sys.argv = ["mindscape", "backup", "create", "--json"]
runpy.run_module("mindscape_ops", run_name="__main__")
"""


def traced_create(directory, trace) -> tuple[dict, dict]:
    import subprocess
    import sys

    trace.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MINDSCAPE_FILE", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", TRACED, str(trace)], cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(trace.read_text()), json.loads(done.stdout)[0]


def test_with_the_start_record_pg_dump_starts_before_the_model_is_loaded(platform, docker_client, tmp_path):
    """`up` wrote the start record: pg_dump is exec'd before the platform model (or the backup
    manifests' model, or psycopg) is imported, and the backup is whole (listed, its rows
    counted). Without the record the model comes first, and `backup create` writes the record
    again."""
    record = platform / ".mindscape" / "backup-start.json"
    assert record.is_file()
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE early AS SELECT g FROM generate_series(1, 1234) g")
    try:
        seen, made = traced_create(platform, tmp_path / "trace.json")
        assert seen["model"] is False and seen["manifests"] is False, seen  # nor pydantic (~75 ms)
        assert seen["psycopg"] is False, seen  # the snapshot is our own session's (~90 ms)
        [listed] = [b for b in backups(platform) if b["id"] == made["id"]]
        assert listed["service"] == "postgres"
        [manifest] = platform.rglob(f"{made['id']}.manifest.json")
        assert json.loads(manifest.read_text())["tables"]["public.early"] == 1234
        record.unlink()
        seen, _ = traced_create(platform, tmp_path / "trace.json")
        assert seen["model"] is True, seen
        assert record.is_file()  # written again, from the model
    finally:
        with psycopg.connect(db_url(platform), autocommit=True) as conn:
            conn.execute("DROP TABLE early")


def test_an_early_dump_the_model_disagrees_with_is_stopped_and_the_right_one_taken(platform, docker_client, tmp_path):
    """A record that names another database (its digest still that of the platform files): the
    early pg_dump reads that one, the loaded model disagrees, so it is stopped and the dump of the
    configured database is taken instead; no pg_dump is left running."""
    record = platform / ".mindscape" / "backup-start.json"
    good = record.read_text()
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE rightone AS SELECT g FROM generate_series(1, 77) g")
    try:
        record.write_text(json.dumps({**json.loads(good), "database": "postgres"}))
        seen, made = traced_create(platform, tmp_path / "trace.json")
        assert seen["model"] is False, seen  # it did start early, on the wrong database
        [listed] = [b for b in backups(platform) if b["id"] == made["id"]]
        assert listed["service"] == "postgres"
        [manifest] = platform.rglob(f"{made['id']}.manifest.json")
        assert json.loads(manifest.read_text())["tables"].get("public.rightone") == 77
        container = docker_client.containers.get(json.loads(good)["container"])
        assert _pg_dumps_running(container) == 0
        assert json.loads(record.read_text()) == json.loads(good)  # rewritten from the model
    finally:
        with psycopg.connect(db_url(platform), autocommit=True) as conn:
            conn.execute("DROP TABLE rightone")


def test_the_early_session_counts_the_rows_of_its_snapshot_and_cancels(platform):
    """The standard library's session (SCRAM) exports the dump's snapshot and counts the rows
    in it: rows added after the export are not counted; a query of it is cancelled from another
    thread, as psycopg's cancel_safe does; a wrong password is refused, for the usual start to
    take over."""
    import threading

    from mindscape_ops.adapters.pg_session import Session, SessionRefused
    from mindscape_ops.services import postgres_backup as postgres
    from mindscape_ops.services.contract import Dump

    params = psycopg.conninfo.conninfo_to_dict(db_url(platform))
    host, port, user, password, database = (str(params[k]) for k in ("host", "port", "user", "password", "dbname"))
    with pytest.raises(SessionRefused, match="password authentication failed"):
        Session.connect(host, int(port), user, "not-" + password, database)

    class Started:
        closed = False

        def close(self) -> None:
            self.closed = True

    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE exported AS SELECT g FROM generate_series(1, 10) g")
        holder = Session.connect(host, int(port), user, password, database)
        try:
            [[snapshot, version, estimate]] = holder.query(postgres.SNAPSHOT)
            conn.execute("INSERT INTO exported SELECT generate_series(11, 15)")
            made = Dump(iter([b"dump"]), postgres.FORMAT, str(version), "test", None, int(estimate or 0))
            started = Started()
            with postgres.dumping_in(holder.query, holder.cancel, made, started) as reading:
                assert b"".join(reading.chunks) == b"dump"
            assert reading.tables is not None and reading.tables["public.exported"] == 10
            assert started.closed and snapshot and str(version).split(".")[0].isdigit()
            threading.Timer(0.5, holder.cancel).start()
            began = time.monotonic()
            with pytest.raises(SessionRefused, match="canceling statement due to user request"):
                holder.query("SELECT pg_sleep(30)")
            assert time.monotonic() - began < 10
        finally:
            holder.close()
            conn.execute("DROP TABLE exported")
