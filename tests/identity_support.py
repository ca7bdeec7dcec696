"""What the identity service's engine tests share: the local images of its platforms, a free
port on this machine for the identity service's admin API, a platform brought up with its first
user, and a recovery code asked for."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mindscape_ops.images.recipe import namespace

from .conftest import need, run_cli

PASSWORD = "correct-horse-battery-staple"  # ada@example.com's
IMAGES = {"postgres": "15", "gateway": "1.22", "identity": "1.3.1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def identity_images(docker_client, go_image, **more: str) -> dict[str, str]:
    """service -> local image of postgres, the gateway, the identity service and `more` (service
    -> tag); the Go-built ones waited for (the build `make test` started in the background)."""
    import docker.errors

    tags = {**IMAGES, **more}
    for service in ("identity", *more):
        go_image(service)
    refs = {service: f"{namespace()}/{service}:{tag}" for service, tag in tags.items()}
    for service, ref in refs.items():
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            need(f"image {ref} missing: run `mindscape images build {service}`")
    return refs


def create_ada(directory: Path) -> None:
    """ada@example.com, role user, with PASSWORD, created by `mindscape auth create-user`."""
    created = run_cli("auth", "create-user", "ada@example.com", "--role", "user", cwd=directory, input=PASSWORD)
    assert created.returncode == 0, created.stderr


def up_with_ada(directory: Path, env: dict[str, str] | None = None) -> dict[str, int]:
    """`mindscape up` in directory, then ada@example.com created; the published ports up kept
    in the project's state (service -> port)."""
    result = run_cli("up", cwd=directory, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    create_ada(directory)
    return json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]


def ask_recovery(public, email: str) -> str:
    """A recovery code for `email` asked for through the public API's flow (its courier then
    sends the e-mail): the flow's id, where the code is then submitted."""
    status, flow = public.call("GET", "/self-service/recovery/api")
    assert status == 200, flow
    status, answer = public.call(
        "POST", f"/self-service/recovery?flow={flow['id']}", {"method": "code", "email": email}
    )
    assert status == 200, answer
    return flow["id"]
