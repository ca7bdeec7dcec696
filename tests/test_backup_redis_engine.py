"""`mindscape backup` for redis on a real engine: BGSAVE + the RDB through the archive API,
restored by replacing the RDB (and the AOF base: this platform runs `appendonly yes`) and
restarting the container; the data is identical after the restore and after a later restart,
with `appendonly yes` (the default) and without."""

from __future__ import annotations

import json

import pytest

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module", params=[True, False], ids=["appendonly", "rdb-only"])
def platform(request, tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("backup-redis")
    project = unique_project("bkr")
    aof = "true" if request.param else "false"
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        f"  redis: {{image: {local_images['redis']}, port: auto, appendonly: {aof}}}\n"
    )
    result = run_cli("up", cwd=directory, timeout=600)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory, project
    finally:
        remove_project(docker_client, project)


def client(directory):
    import redis

    from mindscape_ops.workspace.store import Workspace

    workspace = Workspace(directory)
    port = workspace.read_state()["ports"]["redis"]
    return redis.Redis(host="127.0.0.1", port=port, password=workspace.read_secrets()["REDIS_PASSWORD"])


def snapshot(directory) -> dict[bytes, object]:
    """Every key with its type and full value (sets sorted: their order is not data)."""
    c = client(directory)
    read = {
        b"string": c.get,
        b"hash": c.hgetall,
        b"list": lambda key: c.lrange(key, 0, -1),
        b"set": lambda key: sorted(c.smembers(key)),
        b"zset": lambda key: c.zrange(key, 0, -1, withscores=True),
    }
    try:
        return {key: (kind, read[kind](key)) for key in c.scan_iter(count=1000) for kind in [c.type(key)]}
    finally:
        c.close()


def test_redis_round_trip_survives_a_restart_and_verifies(platform, docker_client):
    directory, project = platform
    c = client(directory)
    c.set("greeting", "héllo\nworld\0binary")
    c.hset("user:1", mapping={"name": "ada", "visits": 3})
    c.rpush("queue", *[f"job{i}" for i in range(1000)])
    c.sadd("tags", "a", "b", "c")
    c.zadd("scores", {"x": 1.5, "y": -2})
    for i in range(2000):
        c.set(f"k:{i}", "v" * (i % 50))
    before = snapshot(directory)

    result = run_cli("backup", "create", "--json", cwd=directory)  # default: backups.services = [redis]
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert [m["service"] for m in made] == ["redis"]
    backup_id = made[0]["id"]
    manifest = json.loads((directory / "backups" / project / f"{backup_id}.manifest.json").read_text())
    assert manifest["format"] == "rdb" and manifest["server_version"].startswith("7")

    c.delete("greeting", "queue")
    c.set("new", "after the backup")
    c.close()
    assert snapshot(directory) != before

    result = run_cli("backup", "restore", backup_id, "--into", "x", cwd=directory)
    assert result.returncode == 2 and "--into is for postgres" in result.stderr

    result = run_cli("backup", "restore", backup_id, "--yes", cwd=directory)
    assert result.returncode == 0, result.stderr
    assert snapshot(directory) == before

    c = client(directory)
    c.set("written-after-restore", "1")
    c.close()
    docker_client.containers.get(f"{project}-redis").restart()
    assert run_cli("up", cwd=directory).returncode == 0  # waits until ready
    after_restart = snapshot(directory)
    assert after_restart.pop(b"written-after-restore") is not None
    assert after_restart == before  # the AOF now starts from the restored RDB

    result = run_cli("backup", "verify", backup_id, cwd=directory)
    assert result.returncode == 0, result.stderr
    assert "RDB looks OK" in result.stderr
    container = docker_client.containers.get(f"{project}-redis")
    assert container.exec_run(["ls", "/tmp"]).output.strip() == b""  # the scratch copy is gone
    files = container.exec_run(["ls", "/data", "/data/appendonlydir"]).output.decode()
    assert ".mindscape-restore" not in files


def test_an_encrypted_redis_backup_round_trips(platform, tmp_path):
    import os

    directory, project = platform
    key = os.urandom(32).hex()
    (tmp_path / "enc.yaml").write_text("backups: {encryption: {key_file: " + str(tmp_path / "key") + "}}\n")
    (tmp_path / "key").write_text(key)
    (tmp_path / "key").chmod(0o600)
    files = ["-f", "platform.yaml", "-f", str(tmp_path / "enc.yaml")]
    c = client(directory)
    c.set("secret-ish", "value")
    c.close()
    before = snapshot(directory)
    result = run_cli("backup", "create", *files, "--json", cwd=directory)
    assert result.returncode == 0, result.stderr
    backup_id = json.loads(result.stdout)[0]["id"]
    assert (directory / "backups" / project / f"{backup_id}.backup").read_bytes().startswith(b"MINDSCAPE-AESGCM-1\n")
    c = client(directory)
    c.flushall()
    c.close()
    result = run_cli("backup", "restore", backup_id, *files, "--yes", cwd=directory)
    assert result.returncode == 0, result.stderr
    assert snapshot(directory) == before
    (tmp_path / "key").write_text(os.urandom(32).hex())
    result = run_cli("backup", "verify", backup_id, *files, cwd=directory)
    assert result.returncode == 1 and "was encrypted with key" in result.stderr


def test_a_scratch_file_a_killed_verify_left_is_removed_by_the_next_and_said(platform, docker_client):
    directory, project = platform
    made = json.loads(run_cli("backup", "create", "--json", cwd=directory).stdout)[0]["id"]
    container = docker_client.containers.get(f"{project}-redis")
    left = f"/tmp/mindscape-verify-4242-1767225600-{made}.rdb"  # as a verify killed with SIGKILL leaves it
    assert container.exec_run(["sh", "-c", f"head -c 100000 /dev/zero > {left}"]).exit_code == 0
    result = run_cli("backup", "verify", made, cwd=directory)
    assert result.returncode == 0, result.stderr
    assert f"removed the scratch file {left} in {project}-redis: left by a verify" in result.stderr
    listing = container.exec_run(["find", "/tmp", "-maxdepth", "1", "-name", "mindscape-verify-*"]).output
    assert listing.decode().strip() == ""  # neither the left one nor the verify's own
