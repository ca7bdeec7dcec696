"""A command's output streamed out of a container: the light socket client (what a backup
uses on a local engine, without the Docker SDK) gives what the SDK adapter gives, byte for
byte, with the exit code and the tail of stderr; a missing or stopped container is a clear
error from both. Both give the same times of a container's output lines."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from mindscape_ops.errors import MindscapeError

pytestmark = pytest.mark.engine

# 48 MiB of stdout in 1 MiB runs, a line of stderr after each, then exit 3
NOISY = (
    "i=0; while [ $i -lt 48 ]; do head -c 1048576 /dev/zero | tr '\\0' 'x'; echo \"warning $i\" >&2; "
    "i=$((i+1)); done; echo last words >&2; exit 3"
)


@pytest.fixture(scope="module")
def box(docker_client, local_images):
    container = docker_client.containers.run(
        local_images["redis"], ["sleep", "600"], detach=True, name=f"exec-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        yield container
    finally:
        container.remove(force=True)


@pytest.fixture
def clients(monkeypatch):
    from mindscape_ops.adapters.docker import Engine
    from mindscape_ops.adapters.engine_socket import SocketEngine, reader

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    light = reader()
    assert isinstance(light, SocketEngine)
    return {"socket": light, "sdk": Engine()}


@pytest.mark.parametrize("which", ["socket", "sdk"])
def test_stdout_whole_exit_code_and_stderr_tail(box, clients, which):
    output = clients[which].exec_output(box.name, ["sh", "-c", NOISY])
    digest, size = hashlib.sha256(), 0
    for chunk in output:
        digest.update(chunk)
        size += len(chunk)
    assert size == 48 << 20
    assert digest.hexdigest() == hashlib.sha256(b"x" * (48 << 20)).hexdigest()
    assert output.exit_code == 3
    assert output.stderr.endswith(b"warning 47\nlast words\n")


def test_both_clients_agree_on_a_binary_stream(box, clients):
    for _ in clients["sdk"].exec_output(box.name, ["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/r"]):
        pass
    same = ["cat", "/tmp/r", "/tmp/r"]
    light = b"".join(clients["socket"].exec_output(box.name, same))
    sdk = b"".join(clients["sdk"].exec_output(box.name, same))
    assert len(light) == 6_000_000 and light == sdk and light[:3_000_000] == light[3_000_000:]


@pytest.mark.parametrize("which", ["socket", "sdk"])
def test_a_missing_container_is_a_one_line_error(clients, which):
    with pytest.raises(MindscapeError) as caught:
        list(clients[which].exec_output("no-such-container-mindscape", ["true"]))
    assert "no-such-container-mindscape" in caught.value.message and "\n" not in caught.value.message


def test_a_stopped_container_is_refused_by_name(docker_client, local_images, clients):
    stopped = docker_client.containers.create(
        local_images["redis"], ["true"], name=f"exec-test-stopped-{uuid.uuid4().hex[:8]}"
    )
    try:
        with pytest.raises(MindscapeError) as caught:
            list(clients["socket"].exec_output(stopped.name, ["true"]))
        assert "409" in caught.value.message and "not running" in caught.value.message
        assert clients["socket"].container_by_name(stopped.name)["State"]["Running"] is False
        assert clients["socket"].container_by_name("no-such-container-mindscape") is None
    finally:
        stopped.remove(force=True)


def test_both_clients_give_the_times_of_a_containers_output_lines_in_a_window(docker_client, local_images, clients):
    """What logs.ingesting asks: stdout and stderr lines alike, the engine's own times, the
    window applied after the tail (as the engine does)."""
    import time

    container = docker_client.containers.run(
        local_images["redis"],
        ["sh", "-c", "echo one; echo two >&2; sleep 1.2; echo three; sleep 600"],
        detach=True,
        name=f"times-test-{uuid.uuid4().hex[:8]}",
    )
    try:
        time.sleep(2.5)
        now = time.time()
        every = clients["socket"].output_times(container.name, now - 60, now)
        assert len(every) == 3 and every == sorted(every) and now - 5 < every[0] < every[2] - 1 < now
        assert clients["sdk"].output_times(container.name, now - 60, now) == every
        assert clients["socket"].output_times(container.name, now - 60, every[1] + 0.5) == every[:2]
        assert clients["socket"].output_times(container.name, now - 60, every[1] + 0.5, tail=1) == []
        assert clients["sdk"].output_times(container.name, now - 60, now, tail=1) == every[2:]
    finally:
        container.remove(force=True)
