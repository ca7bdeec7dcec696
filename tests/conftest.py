"""Shared fixtures. Tests that need a real engine use `engine`/`local_platform`: without an
engine they skip at a desk, and FAIL in CI (CI=true), never pass by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip locally, fail in CI: a missing engine or tool must not look like a pass."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required here)")
    pytest.skip(reason)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m mindscape_ops ARGS` as a user would run it."""
    base = {k: v for k, v in os.environ.items() if k != "MINDSCAPE_FILE"}
    full_env = {**base, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mindscape_ops", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine
        need(f"no Docker engine: {exc}")
    return client


LOCAL_IMAGES = (
    "postgres:15",
    "redis:7",
    "prometheus:2",
    "alertmanager:0.25",
    "gateway:1.22",
    "pgbouncer:1.18",
    "postgres_exporter:0.11",
    "redis_exporter:1",
)


@pytest.fixture(scope="session")
def local_images(docker_client):
    import docker.errors

    missing = []
    for tag in LOCAL_IMAGES:
        try:
            docker_client.images.get(f"mindscape-local/{tag}")
        except docker.errors.ImageNotFound:
            missing.append(tag)
    if missing:
        need(f"local images missing ({', '.join(missing)}): run scripts/build-local-images")
    return {tag.split(":")[0]: f"mindscape-local/{tag}" for tag in LOCAL_IMAGES}


def unique_project(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path


def write_platform(directory: Path, text: str) -> Path:
    path = directory / "platform.yaml"
    path.write_text(text)
    return path


def remove_project(docker_client, project: str) -> None:
    """Remove everything a test platform made: containers, network, volumes."""
    label = f"io.mindscape.project={project}"
    for container in docker_client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True, v=False)
    for network in docker_client.networks.list(filters={"label": label}):
        network.remove()
    for volume in docker_client.volumes.list(filters={"label": label}):
        volume.remove(force=True)
