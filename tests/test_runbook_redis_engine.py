"""The rendered runbooks' Redis commands work as written, in the real Redis container: they
read the password from the file the container has ($REDIS_PASSWORD_FILE), so `info` answers
and the emergency RDB copy lands next to platform.yaml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project
from .test_runbook_shell import shell_blocks

pytestmark = pytest.mark.engine


def redis_lines(directory: Path, runbook: str) -> list[str]:
    text = (directory / "docs" / "runbooks" / runbook).read_text()
    return [
        line for block in shell_blocks(text) for line in block.splitlines() if "-redis" in line and "docker " in line
    ]


@pytest.fixture(scope="module")
def redis_platform(tmp_path_factory, docker_client, local_images):
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is needed: the runbooks' commands call it")
    directory = tmp_path_factory.mktemp("runbook-redis")
    project = unique_project("rbk")
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\n"
        f'services:\n  redis: {{image: "{local_images["redis"]}", port: auto}}\n'
        "backups: {local: {dir: backups}}\n"
    )
    try:
        up = run_cli("up", cwd=directory, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        yield directory
    finally:
        remove_project(docker_client, project)


def _run(directory: Path, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=directory, capture_output=True, text=True, timeout=120
    )


def test_incident_response_redis_commands_answer(redis_platform: Path):
    memory, stats = redis_lines(redis_platform, "incident-response.md")
    done = _run(redis_platform, memory)
    assert done.returncode == 0 and "used_memory:" in done.stdout, done.stdout + done.stderr
    done = _run(redis_platform, stats)
    assert done.returncode == 0 and "evicted_keys:" in done.stdout, done.stdout + done.stderr


def test_the_emergency_rdb_copy_lands_here(redis_platform: Path):
    dump, copy = redis_lines(redis_platform, "backup-and-restore.md")
    done = _run(redis_platform, dump)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run(redis_platform, copy)
    assert done.returncode == 0, done.stdout + done.stderr
    (rdb,) = redis_platform.glob("redis-*.rdb")
    assert rdb.read_bytes().startswith(b"REDIS")
