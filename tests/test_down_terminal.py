"""`down --volumes` at a terminal asks before deleting data. Run under a real pseudo-terminal
(stdin a tty, as a person at a shell has) against a real engine: "n", or just Enter, must leave
every container, the network and the volume as they were; "y" deletes them."""

from __future__ import annotations

import errno
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import remove_project, unique_project

pytestmark = pytest.mark.engine

PROMPT = b"[y/N]"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def at_terminal(args: list[str], cwd: Path, answer: str, timeout: float = 120) -> tuple[int, str, bool]:
    """Run `python -m mindscape_ops ARGS` on a pty, type `answer` + Enter at the [y/N] prompt;
    return the exit code, everything the terminal showed, and whether the prompt came."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"} | {"COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    shown, asked, deadline = b"", False, time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"no exit within {timeout}s; the terminal showed:\n{shown.decode(errors='replace')}")
            if not select.select([master], [], [], 0.2)[0]:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError as exc:  # EIO: the child is gone and its side of the pty closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            shown += chunk
            if not asked and PROMPT in shown:
                os.write(master, answer.encode() + b"\r")
                asked = True
        return process.wait(timeout=30), ANSI.sub("", shown.decode(errors="replace")), asked
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)


@pytest.fixture
def redis_up(tmp_path: Path, docker_client, local_images):
    """A running one-service platform with a data volume, brought up at a terminal too (where
    `up` shows its progress live, in place)."""
    project = unique_project("tty")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {project}\nservices:\n  redis: {{image: '{local_images['redis']}', port: auto}}\n"
    )
    try:
        code, shown, asked = at_terminal(["up"], tmp_path, "", timeout=300)
        assert code == 0 and not asked, shown
        assert re.search(r"redis\s+ready", shown) and f"platform {project} is up (1 services, 1 changed)" in shown
        yield tmp_path, project
    finally:
        remove_project(docker_client, project)


def what_the_engine_holds(docker_client, project: str) -> dict[str, object]:
    label = {"label": f"io.mindscape.project={project}"}
    return {
        "containers": sorted((c.name, c.id, c.status) for c in docker_client.containers.list(all=True, filters=label)),
        "networks": sorted(n.name for n in docker_client.networks.list(filters=label)),
        "volumes": sorted(v.name for v in docker_client.volumes.list(filters=label)),
    }


def test_answering_no_at_the_terminal_removes_nothing(redis_up, docker_client):
    directory, project = redis_up
    before = what_the_engine_holds(docker_client, project)
    assert before["volumes"] == [f"{project}-redis-data"]
    assert before["containers"][0][0] == f"{project}-redis" and before["containers"][0][2] == "running"
    assert before["networks"] == [project]
    for answer in ("n", "no", ""):  # Enter alone takes the default, No
        code, shown, asked = at_terminal(["down", "--volumes"], directory, answer)
        assert asked, f"no [y/N] prompt at a terminal; it showed:\n{shown}"
        assert f"Delete 1 volume(s) and all their data: {project}-redis-data (" in shown
        assert code == 1, shown
        assert "nothing removed: deleting volumes was not confirmed" in shown and "Traceback" not in shown
        assert what_the_engine_holds(docker_client, project) == before, f"answer {answer!r} removed something"
    audit = [json.loads(line) for line in (directory / ".mindscape/audit.log").read_text().splitlines()]
    refused = [e for e in audit if e["command"] == "down" and "not confirmed" in e["outcome"]]
    assert len(refused) == 3 and all(e["arguments"]["volumes"] is True for e in refused)


def test_answering_yes_at_the_terminal_removes_the_volume_too(redis_up, docker_client):
    directory, project = redis_up
    code, shown, asked = at_terminal(["down", "--volumes"], directory, "y")
    assert asked and code == 0, shown
    assert "removed 1 container(s), network, 1 volume(s)" in shown
    assert what_the_engine_holds(docker_client, project) == {"containers": [], "networks": [], "volumes": []}
