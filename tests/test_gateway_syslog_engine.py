"""The gateway's request metrics survive a new gateway_exporter, live, without restarting the
gateway: nginx logs each request line to a relay of its own on 127.0.0.1 (nothing to look up
when it starts), which looks gateway_exporter up per line. The gateway keeps answering while
gateway_exporter is stopped, and a new gateway_exporter container, on a new address, gets the
lines within the resolver's 10 s."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import local_image_refs, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def counted(port: int) -> float:
    """The requests gateway_exporter counted answered 502 (0 before the first)."""
    _, text = get(port, "/metrics")
    found = re.findall(r'^gateway_http_requests_total\{[^}]*status="502"[^}]*\} (\S+)$', text, re.MULTILINE)
    return sum(float(value) for value in found)


def count_reaches(port: int, wanted: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while (seen := counted(port)) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    return seen


def state_ports(directory: Path) -> dict[str, int]:
    return json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]


def address(client, project: str, service: str) -> tuple[str, str]:
    """(container id, its address on the platform network)."""
    container = client.containers.get(f"{project}-{service}")
    networks = container.attrs["NetworkSettings"]["Networks"]
    return container.id, next(iter(networks.values()))["IPAddress"]


def test_a_new_gateway_exporter_gets_the_lines_without_restarting_the_gateway(docker_client, local_images, tmp_path):
    images = local_image_refs()
    project = unique_project("gwlog")
    platform = {
        "version": 1,
        "project": project,
        "services": {
            # nothing listens on the upstream: every request is a 502, counted by status
            "gateway": {"image": images["gateway"], "port": "auto", "upstream": "http://127.0.0.1:9"},
            "gateway_exporter": {"image": images["gateway_exporter"], "port": "auto"},
        },
        "security": {"rate_limit": {"enabled": False}},
    }
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform))
    try:
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        ports = state_ports(tmp_path)
        for _ in range(3):
            assert get(ports["gateway"], "/orders")[0] == 502
        assert count_reaches(ports["gateway_exporter"], 3) >= 3
        exporter_before, address_before = address(docker_client, project, "gateway_exporter")
        gateway = docker_client.containers.get(f"{project}-gateway")
        started_before = gateway.attrs["State"]["StartedAt"]

        # gateway_exporter stopped: the gateway answers as before (its lines go nowhere)
        docker_client.containers.get(exporter_before).stop(timeout=1)
        for _ in range(3):
            assert get(ports["gateway"], "/orders")[0] == 502
        assert get(ports["gateway"], "/healthz")[0] == 200

        # A new exporter container: a setting of its spec changes. A filler container on the
        # network holds the freed address meanwhile, so the new exporter gets another one.
        platform["services"]["gateway_exporter"]["health"] = {"start_period": "3s"}
        (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform))
        plan = run_cli("plan", "--json", cwd=tmp_path)
        actions = {row["service"]: row for row in json.loads(plan.stdout)}
        assert actions["gateway_exporter"]["action"] == "recreate", plan.stdout
        assert actions["gateway"]["action"] == "unchanged", plan.stdout
        docker_client.containers.run(
            images["gateway"],
            name=f"{project}-filler",
            detach=True,
            labels={"io.mindscape.test": "1"},
            network=project,
            entrypoint=["sleep", "300"],
        )
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        exporter_after, address_after = address(docker_client, project, "gateway_exporter")
        assert exporter_after != exporter_before and address_after != address_before
        gateway.reload()
        assert gateway.attrs["State"]["StartedAt"] == started_before, "the gateway was restarted"
        assert gateway.attrs["RestartCount"] == 0

        ports = state_ports(tmp_path)
        # the new exporter's counters start at 0; the relay finds its new address within the
        # resolver's 10 s: requests keep coming until three reach it
        deadline = time.monotonic() + 30
        while counted(ports["gateway_exporter"]) < 3 and time.monotonic() < deadline:
            assert get(ports["gateway"], "/orders")[0] == 502
            time.sleep(0.5)
        assert counted(ports["gateway_exporter"]) >= 3
    finally:
        for container in docker_client.containers.list(all=True, filters={"name": f"{project}-filler"}):
            container.remove(force=True)
        remove_project(docker_client, project)
