"""What a person reads: `plan` and `status` as text (not --json), and `logs` (a tail, a
follow, refusals), on a real engine with a small platform (redis and its exporter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def small_platform(tmp_path_factory, docker_client, local_images):
    directory = tmp_path_factory.mktemp("output")
    project = unique_project("out")
    (directory / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n"
        f"  redis: {{image: '{local_images['redis']}', port: auto}}\n"
        f"  redis_exporter: {{image: '{local_images['redis_exporter']}', port: auto}}\n"
    )
    try:
        result = run_cli("up", cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
        yield directory, project
    finally:
        remove_project(docker_client, project)


def rows(text: str) -> dict[str, str]:
    """Lines of a text table keyed by their first word."""
    return {line.split()[0]: line for line in text.splitlines() if line.strip() and not line.startswith("┏")}


def table_cells(text: str) -> dict[str, list[str]]:
    """The status table's rows: service -> its words (the table has no vertical borders)."""
    return {line.split()[0]: line.split() for line in text.splitlines()[3:] if line.strip() and "─" not in line}


def test_plan_as_text_says_what_up_would_do_and_why(small_platform):
    directory, _ = small_platform
    result = run_cli("plan", cwd=directory)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["redis", "redis_exporter"]  # start order
    assert all(re.fullmatch(r"\S+\s+unchanged\s+up to date", line) for line in lines), lines
    conf = directory / "deploy/redis/redis.conf"
    original = conf.read_text()
    conf.write_text(original + "# tuned by hand\n")
    try:
        plan = rows(run_cli("plan", cwd=directory).stdout)
        assert re.fullmatch(r"redis\s+recreate\s+mounted config changed", plan["redis"])
        assert re.fullmatch(r"redis_exporter\s+unchanged\s+up to date", plan["redis_exporter"])
        cells = table_cells(run_cli("status", cwd=directory).stdout)
        assert cells["redis"][-1] == "changed" and cells["redis_exporter"][-3:] == ["up", "to", "date"]
    finally:
        conf.write_text(original)
    assert {line.split()[1] for line in run_cli("plan", cwd=directory).stdout.strip().splitlines()} == {"unchanged"}


def test_plan_of_one_service_brings_what_it_needs(small_platform):
    directory, _ = small_platform
    assert list(rows(run_cli("plan", "redis_exporter", cwd=directory).stdout)) == ["redis", "redis_exporter"]
    assert list(rows(run_cli("plan", "redis", cwd=directory).stdout)) == ["redis"]
    unknown = run_cli("plan", "postgres", cwd=directory)
    assert unknown.returncode == 2 and "not an enabled service: postgres" in unknown.stderr
    assert "enabled: redis, redis_exporter" in unknown.stderr


def test_status_as_a_table(small_platform):
    directory, project = small_platform
    result = run_cli("status", cwd=directory)
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith(f"platform {project}")
    cells = table_cells(result.stdout)
    assert set(cells) == {"redis", "redis_exporter"}
    for service, (_, state, health, port, image, *config) in cells.items():
        assert state == "running" and config == ["up", "to", "date"], cells[service]
        assert port.isdigit(), port  # the host port alone
        assert image.startswith(f"{service}:") and health in ("healthy", "ready"), cells[service]


def test_logs_tail_and_its_refusals(small_platform):
    directory, _ = small_platform
    last = run_cli("logs", "redis", "--tail", "1", cwd=directory)
    assert last.returncode == 0 and len(last.stdout.strip().splitlines()) == 1, last.stdout
    every = run_cli("logs", "redis", "-n", "all", cwd=directory).stdout
    assert every.rstrip().endswith(last.stdout.strip()) and "Ready to accept connections" in every
    bad = run_cli("logs", "redis", "--tail", "-3", cwd=directory)
    assert bad.returncode == 2 and "--tail '-3': expected a number or all" in bad.stderr


def test_logs_follow_keeps_streaming_until_stopped(small_platform):
    directory, _ = small_platform
    env = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", "logs", "redis", "--follow", "--tail", "1"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first = process.stdout.readline()
        assert first.strip(), process.stderr.read()
        time.sleep(1)
        assert process.poll() is None  # still following
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_logs_of_a_service_not_up_says_to_run_up(tmp_path: Path, docker_client, local_images):
    project = unique_project("nolog")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  redis: {{image: '{local_images['redis']}', port: auto}}\n"
    )
    result = run_cli("logs", "redis", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"no container for redis ({project}-redis)" in result.stderr and "mindscape up" in result.stderr
    assert "Traceback" not in result.stderr
