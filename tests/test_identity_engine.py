"""Authentication end to end on a real engine: `mindscape up` of Postgres, the identity service
(Ory Kratos, local image) and the gateway; a user made with `mindscape auth create-user` logs in
through Kratos' API flow; the gateway refuses the anonymous (401) and the wrong role (403), and
hands the application (an nginx echoing what it received, on the platform network) a JWT that
verifies against the gateway's JWKS, never the session; a forged token, a logged-out session
and a disabled user are refused; `mindscape check --only auth` passes."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from mindscape_ops.images.recipe import namespace
from mindscape_ops.services import identity_client as kratos

from .conftest import need, remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine
PASSWORD = "correct-horse-battery-staple"
# The application: nginx answering with what it received, as JSON.
ECHOED = '{"authorization":"$http_authorization","cookie":"$http_cookie","session":"$http_x_session_token"}'
ECHO_CONF = """pid /tmp/echo.pid;
events {}
http {
    access_log off;
    server {
        listen 8000;
        location / {
            default_type application/json;
            return 200 'ECHOED';
        }
    }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def published(docker_client, container: str, port: int) -> int:
    details = docker_client.api.inspect_container(container)
    return int(details["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, go_image):
    import docker.errors

    go_image("identity")
    refs = {name: f"{namespace()}/{name}:{tag}" for name, tag in (("postgres", "15"), ("gateway", "1.22"))}
    refs["identity"] = f"{namespace()}/identity:1.3.1"
    for ref in refs.values():
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            need(f"image {ref} missing: run `mindscape images build {ref.split('/')[1].split(':')[0]}`")
    directory = tmp_path_factory.mktemp("identity")
    project = unique_project("idn")
    (directory / "platform.yaml").write_text(
        f"""version: 1
project: {project}
services:
  postgres: {{image: "{refs["postgres"]}", port: auto}}
  identity: {{image: "{refs["identity"]}", port: auto, admin_port: {free_port()}}}
  gateway:
    image: "{refs["gateway"]}"
    port: auto
    upstream: "http://echo:8000"
    routes:
      - {{path: /api/, roles: [user]}}
      - {{path: /admin/, roles: [admin], mfa: required}}
security:
  rate_limit: {{enabled: false}}
  auth:
    roles: {{user: {{}}, admin: {{}}}}
    mfa: {{methods: [totp, lookup_secret]}}
"""
    )
    try:
        result = run_cli("up", cwd=directory, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        conf = directory / "echo.conf"
        conf.write_text(ECHO_CONF.replace("ECHOED", ECHOED))
        echo = docker_client.containers.run(
            refs["gateway"],
            ["nginx", "-c", "/etc/echo.conf", "-g", "daemon off;"],
            name=f"{project}-echo",
            detach=True,
            volumes={str(conf): {"bind": "/etc/echo.conf", "mode": "ro"}},
            labels={"io.mindscape.project": project},  # removed with the platform
        )
        docker_client.networks.get(project).connect(echo, aliases=["echo"])
        created = run_cli("auth", "create-user", "ada@example.com", "--role", "user", cwd=directory, input=PASSWORD)
        assert created.returncode == 0, created.stderr
        public = kratos.Endpoint("127.0.0.1", published(docker_client, f"{project}-identity", 4433))
        yield directory, published(docker_client, f"{project}-gateway", 8080), public
    finally:
        remove_project(docker_client, project)


def through(port: int, path: str, headers: dict[str, str] | None = None, patience: float = 10.0):
    deadline = time.monotonic() + patience
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in (502, 504) or time.monotonic() > deadline:  # the echo may be starting
                return exc.code, json.loads(exc.read() or b"null")
        time.sleep(0.25)


def test_a_user_reaches_the_application_with_a_verified_token(platform) -> None:
    _, port, public = platform
    token = kratos.login(public, "ada@example.com", PASSWORD)
    assert through(port, "/api/x")[0] == 401
    status, seen = through(
        port, "/api/x", {"X-Session-Token": token, "Authorization": "Bearer forged", "Cookie": "theme=dark"}
    )
    assert status == 200 and seen["session"] == "" and seen["cookie"] == "theme=dark"
    assert seen["authorization"].startswith("Bearer ") and token not in json.dumps(seen)
    jwks = through(port, "/.well-known/jwks.json")[1]
    claims = kratos.verify_jwt(seen["authorization"].removeprefix("Bearer "), jwks, "api")
    assert claims["roles"] == ["user"] and claims["aal"] == "aal1" and claims["exp"] - time.time() <= 15 * 60
    status, body = through(port, "/admin/x", {"X-Session-Token": token})
    assert (status, body["error"]) == (403, "role_required")
    with pytest.raises(kratos.IdentityError):
        kratos.verify_jwt(seen["authorization"].removeprefix("Bearer "), jwks, "another-audience")


def test_forged_logged_out_and_disabled_are_refused(platform) -> None:
    directory, port, public = platform
    assert through(port, "/api/x", {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})[0] == 401
    token = kratos.login(public, "ada@example.com", PASSWORD)
    kratos.logout(public, token)
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 401
    token = kratos.login(public, "ada@example.com", PASSWORD)
    assert run_cli("auth", "disable", "ada@example.com", cwd=directory).returncode == 0
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 401


def test_check_auth_passes(platform) -> None:
    directory, _, _ = platform
    result = run_cli("check", "--json", "--only", "auth", cwd=directory, timeout=120)
    rows = {row["id"]: row["status"] for row in json.loads(result.stdout)}
    assert result.returncode == 0 and rows == {"auth.enforced": "pass", "auth.jwt": "pass"}, result.stdout
