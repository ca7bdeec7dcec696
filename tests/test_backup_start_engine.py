"""`backup create` of postgres starts pg_dump before it readies the store and the key (the
start-up overlaps the dump), and a store failing then stops the dump: real engine. The platform
fixture and helpers come from test_backup_postgres_engine.py."""

from __future__ import annotations

import json
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
