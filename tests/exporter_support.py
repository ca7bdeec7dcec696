"""An exporter's platform on a real engine, with a password of the test's choosing: what the
exporter engine tests share (the Redis exporter's password file, the pgbouncer exporter's)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from mindscape_ops.workspace.store import dotenv_line

from .conftest import run_cli, unique_project


def platform_with_password(
    docker_client, root: Path, prefix: str, images: dict[str, str], secret: tuple[str, str]
) -> str:
    """platform.yaml with these services (their images, ports auto) and .mindscape/secrets.env
    holding the secret (name, value); the images must be built (scripts/build-local-images).
    Returns the project, for remove_project."""
    for image in images.values():
        docker_client.images.get(image)
    project = unique_project(prefix)
    services = "".join(f"  {name}: {{image: '{image}', port: auto}}\n" for name, image in images.items())
    (root / "platform.yaml").write_text(f"version: 1\nproject: {project}\nservices:\n{services}")
    (root / ".mindscape").mkdir(mode=0o700)
    secrets = root / ".mindscape" / "secrets.env"
    secrets.write_text(dotenv_line(*secret))
    secrets.chmod(0o600)
    return project


def metrics_of(root: Path, service: str) -> list[str]:
    """The lines of a service's /metrics, at the host port `up` recorded for it."""
    port = json.loads((root / ".mindscape" / "state.json").read_text())["ports"][service]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:  # noqa: S310
        return response.read().decode().splitlines()


def assert_plan_unchanged(root: Path) -> None:
    again = run_cli("plan", "--json", cwd=root)
    assert {action["action"] for action in json.loads(again.stdout)} == {"unchanged"}, again.stdout
