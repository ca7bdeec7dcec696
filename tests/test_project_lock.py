"""One changing command at a time per project folder: a second one waits and says for what,
or with `up --no-wait` fails at once; two `up` at once leave one network and both succeed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mindscape_ops.workspace.lock import project_lock
from mindscape_ops.workspace.store import Workspace

from .conftest import EXAMPLES, remove_project, unique_project


@pytest.fixture
def project(tmp_path):
    (tmp_path / "platform.yaml").write_text((EXAMPLES / "minimal" / "platform.yaml").read_text())
    return tmp_path


def cli(*args: str, cwd) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mindscape_ops", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_up_no_wait_fails_at_once_naming_the_holder(project):
    with project_lock(Workspace(project), "migrate up"):
        started = time.monotonic()
        result = cli("up", "--no-wait", cwd=project)
        _, err = result.communicate(timeout=60)
    assert result.returncode == 1 and "Traceback" not in err
    assert "another `migrate up` is running in this project (pid " in err
    assert time.monotonic() - started < 30


def test_a_second_command_waits_for_the_first_then_runs(project):
    with project_lock(Workspace(project), "up"):
        render = cli("render", cwd=project)
        deadline = time.monotonic() + 30
        while not (project / ".mindscape" / "audit.log").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
            if render.poll() is not None:
                break
        time.sleep(1)
        assert render.poll() is None, "render did not wait for the lock"
        assert not (project / "deploy").exists()  # nothing written while waiting
    _, err = render.communicate(timeout=60)
    assert render.returncode == 0, err
    assert "another `up` is running in this project" in err and "waiting for it to finish" in err
    assert (project / "deploy" / "compose.yaml").exists()


HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from mindscape_ops.workspace.lock import project_lock
from mindscape_ops.workspace.store import Workspace
project_lock(Workspace(Path(sys.argv[1])), "up").__enter__()
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_is_released_when_its_holder_dies(project):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(project)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    result = cli("render", cwd=project)
    _, err = result.communicate(timeout=60)
    assert result.returncode == 0, err


@pytest.mark.engine
def test_two_ups_at_once_both_succeed_with_one_network(tmp_path, docker_client, local_images):
    name = unique_project("lock")
    (tmp_path / "platform.yaml").write_text(
        f"version: 1\nproject: {name}\nservices:\n  redis: {{image: {local_images['redis']}, port: auto}}\n"
    )
    try:
        first, second = cli("up", cwd=tmp_path), cli("up", cwd=tmp_path)
        outputs = [p.communicate(timeout=300) for p in (first, second)]
        assert (first.returncode, second.returncode) == (0, 0), outputs
        assert any("waiting for it to finish" in err for _, err in outputs)
        assert len(docker_client.networks.list(names=[name])) == 1
        assert len(docker_client.containers.list(filters={"label": f"io.mindscape.project={name}"})) == 1
    finally:
        remove_project(docker_client, name)
