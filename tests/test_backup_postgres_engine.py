"""`mindscape backup` for postgres on a real engine: round trips with identical rows (checksums
of every table's ordered rows, not just counts), the checksum checked before anything is
touched, verify by a real restore, an interrupted backup never listed, and the engine down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, created timestamptz DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, total numeric(12, 2),
                     note text, payload bytea, tags jsonb);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id int PRIMARY KEY, amount double precision, paid boolean);
INSERT INTO customers (name, email) SELECT 'c' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g || '@x.test' END
  FROM generate_series(1, 500) g;
INSERT INTO orders (customer, total, note, payload, tags)
  SELECT 1 + g % 500, g * 1.25, E'line\\nwith ''quotes'' and \\t tabs ' || g, decode(md5(g::text), 'hex'),
         jsonb_build_object('n', g, 'odd', g % 2 = 1)
  FROM generate_series(1, 5000) g;
INSERT INTO billing.invoices SELECT g, g / 3.0, g % 2 = 0 FROM generate_series(1, 300) g;
"""


def platform_text(project: str, images: dict[str, str]) -> str:
    return f"version: 1\nproject: {project}\nservices:\n  postgres: {{image: {images['postgres']}, port: auto}}\n"


def db_url(directory, dbname: str = "app") -> str:
    from mindscape_ops.workspace.store import Workspace

    workspace = Workspace(directory)
    password = workspace.read_secrets()["POSTGRES_PASSWORD"]
    port = workspace.read_state()["ports"]["postgres"]
    return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=port, user="app", password=password, dbname=dbname)


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """Every user table: (rows, md5 of its rows in order)."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
            )
        ]
        return {
            t: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
            ).fetchone()
            for t in tables
        }


def backups(directory) -> list[dict]:
    result = run_cli("backup", "list", "--json", cwd=directory)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def create(directory, *extra: str) -> dict:
    result = run_cli("backup", "create", "--json", *extra, cwd=directory)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)[0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("backup-pg")
    project = unique_project("bk")
    (directory / "platform.yaml").write_text(platform_text(project, local_images))
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        with psycopg.connect(db_url(directory), autocommit=True) as conn:
            conn.execute(SCHEMA)
        yield directory
    finally:
        remove_project(docker_client, project)


def test_round_trip_restores_identical_rows_live_and_into_a_new_database(platform):
    before = checksums(db_url(platform))
    assert len(before) == 3 and before["public.orders"][0] == 5000
    made = create(platform, "--service", "postgres")
    manifest = json.loads((platform / "backups" / f"{made['id']}.manifest.json").read_text())
    assert manifest["tables"] == {"billing.invoices": 300, "public.customers": 500, "public.orders": 5000}
    assert manifest["format"] == "pg_dump-custom" and manifest["server_version"].startswith("15")
    assert manifest["size"] == (platform / "backups" / f"{made['id']}.backup").stat().st_size

    with psycopg.connect(db_url(platform), autocommit=True) as conn:  # the live data moves on
        conn.execute(
            "DELETE FROM orders WHERE id % 3 = 0; UPDATE customers SET name = 'changed'; DROP TABLE billing.invoices"
        )
    assert checksums(db_url(platform)) != before

    refused = run_cli("backup", "restore", made["id"], cwd=platform)
    assert refused.returncode == 2 and "--yes" in refused.stderr and "Traceback" not in refused.stderr

    into = run_cli("backup", "restore", made["id"], "--into", "restored_copy", cwd=platform)
    assert into.returncode == 0, into.stderr
    assert checksums(db_url(platform, "restored_copy")) == before
    again = run_cli("backup", "restore", made["id"], "--into", "restored_copy", cwd=platform)
    assert again.returncode == 2 and "already exists" in again.stderr

    live = run_cli("backup", "restore", made["id"], "--yes", cwd=platform)
    assert live.returncode == 0, live.stderr
    assert checksums(db_url(platform)) == before


def databases(url: str) -> dict[str, str]:
    """Every database (templates aside) with its owner."""
    with psycopg.connect(url, autocommit=True) as conn:
        query = "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE NOT datistemplate"
        return dict(conn.execute(query).fetchall())


def test_a_live_restore_gives_exactly_the_backed_up_database(platform):
    url = db_url(platform)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ALTER DATABASE app SET work_mem = '7MB'; ALTER DATABASE app SET search_path = \"$user\", public, billing; "
            "COMMENT ON DATABASE app IS 'the app'"
        )
    before, dbs = checksums(url), databases(url)
    made = create(platform, "--service", "postgres")
    with psycopg.connect(url, autocommit=True) as conn:  # made after the backup: must not survive it
        conn.execute(
            "CREATE TABLE after_backup (x int); INSERT INTO after_backup VALUES (1); "
            "CREATE SCHEMA later; CREATE TABLE later.t (y int); UPDATE customers SET name = 'changed'"
        )
    idle = psycopg.connect(url, autocommit=True)  # a session left open in the live database
    try:
        result = run_cli("backup", "restore", made["id"], "--yes", cwd=platform)
        assert result.returncode == 0, result.stderr
        assert "replaced whole" in result.stderr
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")  # ended by the swap
    finally:
        idle.close()
    assert checksums(url) == before  # identical rows, and nothing else
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('after_backup'), to_regnamespace('later')").fetchone() == (None, None)
        assert conn.execute("SHOW work_mem").fetchone()[0] == "7MB"  # the database's own settings came along
        assert conn.execute("SHOW search_path").fetchone()[0] == '"$user", public, billing'  # a list, item by item
        assert (
            conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'app'"
            ).fetchone()[0]
            == "the app"
        )
    assert databases(url) == dbs  # same owner; no staging or replaced database left


def test_a_live_restore_that_does_not_match_its_manifest_leaves_the_live_database_untouched(platform):
    url = db_url(platform)
    made = create(platform, "--service", "postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS marker_live (x int); INSERT INTO marker_live VALUES (2)")
    live, dbs = checksums(url), databases(url)
    manifest_path = platform / "backups" / f"{made['id']}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["public.customers"] += 1
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("backup", "restore", made["id"], "--yes", cwd=platform)
    assert result.returncode == 1 and "differs from the manifest" in result.stderr, result.stderr
    assert "the live database app is untouched" in result.stderr and result.stderr.count("error:") == 1
    assert checksums(url) == live and databases(url) == dbs


def test_a_corrupted_object_is_refused_before_anything_is_touched_and_fails_verify(platform):
    made = create(platform, "--service", "postgres")
    data = platform / "backups" / f"{made['id']}.backup"
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS marker (x int); INSERT INTO marker VALUES (1)")
    live = checksums(db_url(platform))
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    data.write_bytes(bytes(blob))

    result = run_cli("backup", "restore", made["id"], "--yes", cwd=platform)
    assert result.returncode == 1 and "is corrupt" in result.stderr and "nothing was touched" in result.stderr
    assert "Traceback" not in result.stderr
    assert checksums(db_url(platform)) == live
    result = run_cli("backup", "restore", made["id"], "--into", "never_made", cwd=platform)
    assert result.returncode == 1
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'never_made'").fetchone()

    verify = run_cli("backup", "verify", made["id"], cwd=platform)
    assert verify.returncode == 1 and "is corrupt" in verify.stderr
    listed = {b["id"]: b for b in backups(platform)}
    assert listed[made["id"]]["verified"] is False and listed[made["id"]]["verification"]["ok"] is False


def test_verify_passes_on_a_good_backup_and_fails_on_a_tampered_manifest(platform):
    made = create(platform, "--service", "postgres")
    result = run_cli("backup", "verify", made["id"], cwd=platform)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stderr
    assert backups(platform)[0]["verified"] is True
    with psycopg.connect(db_url(platform), autocommit=True) as conn:  # the scratch database is gone
        assert not conn.execute("SELECT 1 FROM pg_database WHERE datname LIKE 'mindscape_verify_%'").fetchone()

    manifest_path = platform / "backups" / f"{made['id']}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["public.orders"] += 1  # a manifest that no longer matches its data
    manifest_path.write_text(json.dumps(manifest))
    result = run_cli("backup", "verify", "--json", made["id"], cwd=platform)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and any("public.orders" in line for line in report["mismatches"]), report
    recorded = json.loads((platform / "backups" / f"{made['id']}.verify.json").read_text())
    assert recorded["ok"] is False


def test_an_interrupted_backup_is_never_listed(platform):
    with psycopg.connect(db_url(platform), autocommit=True) as conn:  # enough data to be caught mid-way
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1500000) g"
        )
    listed_before = {b["id"] for b in backups(platform)}
    folder = platform / "backups"
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "backup", "create", "--service", "postgres"],
        cwd=platform,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in folder.glob("*.partial")):
            assert process.poll() is None, "the backup ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert any(p.name.endswith(".partial") for p in folder.iterdir())  # leftovers for prune
    assert {b["id"] for b in backups(platform)} == listed_before
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("DROP TABLE bulk")
    for leftover in folder.glob("*.partial"):
        leftover.unlink()


def test_a_dump_cut_off_mid_way_fails_in_one_line_and_leaves_nothing(platform, docker_client):
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("CREATE TABLE bulk2 AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1500000) g")
    listed_before = {b["id"] for b in backups(platform)}
    folder = platform / "backups"
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "backup", "create", "--service", "postgres"],
        cwd=platform,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in folder.glob("*.partial")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        container = docker_client.containers.get(
            json.loads(run_cli("status", "--json", cwd=platform).stdout)[0]["container"]
        )
        killed = container.exec_run(
            [
                "sh",
                "-c",
                'for p in /proc/[0-9]*; do grep -qa "^pg_dump" "$p/cmdline" && kill -9 "${p#/proc/}"; done; true',
            ]
        )
        assert killed.exit_code == 0
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "pg_dump failed" in stderr and "Traceback" not in stderr and stderr.count("error:") == 1
    assert not list(folder.glob("*.partial")) and {b["id"] for b in backups(platform)} == listed_before
    with psycopg.connect(db_url(platform), autocommit=True) as conn:
        conn.execute("DROP TABLE bulk2")


def test_no_engine_is_the_contracts_exit_3_in_one_line(platform):
    result = run_cli(
        "backup", "create", "--service", "postgres", cwd=platform, env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "Docker engine" in result.stderr
    assert not list((platform / "backups").glob("*.partial"))


def test_secrets_reach_neither_manifests_nor_audit_log_nor_json(platform):
    from mindscape_ops.workspace.store import Workspace

    secrets = set(Workspace(platform).read_secrets().values())
    shown = run_cli("backup", "list", "--json", cwd=platform).stdout
    shown += "".join(p.read_text() for p in (platform / "backups").glob("*.json"))
    shown += (platform / ".mindscape" / "audit.log").read_text()
    assert "backup create" in shown
    assert not any(secret in shown for secret in secrets)


def test_with_database_url_the_hosts_pg_dump_and_pg_restore_do_the_work(platform, docker_client):
    from urllib.parse import quote

    from mindscape_ops.workspace.store import Workspace

    url = db_url(platform)
    workspace = Workspace(platform)
    password, port = workspace.read_secrets()["POSTGRES_PASSWORD"], workspace.read_state()["ports"]["postgres"]
    env = {"DATABASE_URL": f"postgresql://app:{quote(password, safe='')}@127.0.0.1:{port}/app"}
    before = checksums(url)
    result = run_cli("backup", "create", "--json", "--service", "postgres", cwd=platform, env=env)
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)[0]
    manifest = json.loads((platform / "backups" / f"{made['id']}.manifest.json").read_text())
    assert manifest["source"].startswith("postgresql://app@127.0.0.1:") and "password" not in manifest["source"]
    result = run_cli("backup", "restore", made["id"], "--into", "from_url", cwd=platform, env=env)
    assert result.returncode == 0, result.stderr
    assert checksums(db_url(platform, "from_url")) == before


def test_encrypted_round_trip_and_a_wrong_key_refused_before_anything_is_touched(platform):
    key, other = os.urandom(32).hex(), os.urandom(32).hex()
    original = (platform / "platform.yaml").read_text()
    (platform / "platform.yaml").write_text(original + "backups: {encryption: {key_env: BACKUP_KEY}}\n")
    try:
        before = checksums(db_url(platform))
        result = run_cli("backup", "create", "--json", "--service", "postgres", cwd=platform, env={"BACKUP_KEY": key})
        assert result.returncode == 0, result.stderr
        made = json.loads(result.stdout)[0]
        stored = (platform / "backups" / f"{made['id']}.backup").read_bytes()
        assert stored.startswith(b"MINDSCAPE-AESGCM-1\n") and b"PGDMP" not in stored[:4096]
        manifest_text = (platform / "backups" / f"{made['id']}.manifest.json").read_text()
        manifest = json.loads(manifest_text)
        assert manifest["encrypted"] is True and manifest["key_fingerprint"] and key not in manifest_text

        wrong = run_cli("backup", "restore", made["id"], "--into", "wrong_key", cwd=platform, env={"BACKUP_KEY": other})
        assert wrong.returncode == 1 and "was encrypted with key" in wrong.stderr and "Traceback" not in wrong.stderr
        missing = run_cli("backup", "restore", made["id"], "--into", "no_key", cwd=platform)
        assert missing.returncode == 3 and "$BACKUP_KEY is not set" in missing.stderr
        with psycopg.connect(db_url(platform), autocommit=True) as conn:
            assert not conn.execute("SELECT 1 FROM pg_database WHERE datname IN ('wrong_key', 'no_key')").fetchone()

        right = run_cli("backup", "restore", made["id"], "--into", "decrypted", cwd=platform, env={"BACKUP_KEY": key})
        assert right.returncode == 0, right.stderr
        assert checksums(db_url(platform, "decrypted")) == before
        verify = run_cli("backup", "verify", made["id"], cwd=platform, env={"BACKUP_KEY": key})
        assert verify.returncode == 0, verify.stderr
        audit = (platform / ".mindscape" / "audit.log").read_text()
        assert key not in audit and other not in audit
    finally:
        (platform / "platform.yaml").write_text(original)
