"""Names of mindscape's own scratch space (issue 22): `restore --into` never takes one, and a
Redis verify tells its own scratch file from one a killed verify left."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "name", ["mindscape_verify_shop_4242_1767225600", "mindscape_restore_ab12cd34", "mindscape_replaced_0a1b2c3d"]
)
def test_restore_into_a_name_of_the_tools_own_scratch_databases_is_refused(tmp_path, name):
    """The next verify or restore drops a stale scratch database: a user's copy must not be one."""
    from .conftest import run_cli

    (tmp_path / "platform.yaml").write_text("version: 1\nproject: shop\nservices: {postgres: {}}\n")
    result = run_cli("backup", "restore", "20260102T030405Z-postgres-1a2b", "--into", name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"--into {name}: names starting with mindscape_verify_" in result.stderr
    assert "name the new database otherwise" in result.stderr and "Traceback" not in result.stderr
    other = run_cli("backup", "restore", "20260102T030405Z-postgres-1a2b", "--into", "mindscape_copy", cwd=tmp_path)
    assert "scratch databases" not in other.stderr and "no backup" in other.stderr.lower(), other.stderr


def test_a_redis_verify_counts_any_other_scratch_file_as_left_by_a_killed_one():
    from mindscape_ops.services import redis_backup as redis

    ours = redis.scratch_file("20260102T030405Z-redis-1a2b", pid=7, now=1767225600)
    assert ours == "/tmp/mindscape-verify-7-1767225600-20260102T030405Z-redis-1a2b.rdb"
    left = "/tmp/mindscape-verify-4242-1767225000-20260101T000000Z-redis-ffff.rdb"
    listed = f"{ours}\n{left}\n/tmp/mindscape-verify-20260101T000000Z-redis-ffff.rdb\n/tmp/other.rdb\n"
    assert redis.stale_scratch(listed, ours) == [left, "/tmp/mindscape-verify-20260101T000000Z-redis-ffff.rdb"]
