"""security.auth.sessions.idle_timeout live, on a real engine: Postgres, the identity service
(Ory Kratos, local image) and the gateway with a 6 s idle timeout and a 24 s lifetime. A session
used every 2 s passes well beyond 6 s (the gateway extends it through Kratos' admin API); left
unused for longer than 6 s it is refused at the gateway, and by Kratos itself, although its
lifetime has not passed; one used all along is refused once its 24 s lifetime has."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from mindscape_ops.services import identity_client as kratos

from .conftest import remove_project, run_cli, unique_project
from .identity_support import PASSWORD, free_port, identity_images
from .test_identity_engine import ECHO_CONF, ECHOED, published, through

pytestmark = pytest.mark.engine
IDLE, ABSOLUTE = 6, 24


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, go_image):
    refs = identity_images(docker_client, go_image)
    directory = tmp_path_factory.mktemp("identity-idle")
    project = unique_project("idl")
    (directory / "platform.yaml").write_text(
        f"""version: 1
project: {project}
services:
  postgres: {{image: "{refs["postgres"]}", port: auto}}
  identity: {{image: "{refs["identity"]}", port: auto, admin_port: {free_port()}, session_cache: 0s}}
  gateway:
    image: "{refs["gateway"]}"
    port: auto
    upstream: "http://echo:8000"
    routes:
      - {{path: /api/, roles: [user]}}
security:
  rate_limit: {{enabled: false}}
  auth:
    roles: {{user: {{}}}}
    # webauthn: Kratos starts with its relying party from jwt.issuer (a browser would use it)
    mfa: {{methods: [totp, lookup_secret, webauthn]}}
    sessions: {{idle_timeout: {IDLE}s, absolute_timeout: {ABSOLUTE}s}}
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
        for email in ("ada@example.com", "alan@example.com"):
            created = run_cli("auth", "create-user", email, "--role", "user", cwd=directory, input=PASSWORD)
            assert created.returncode == 0, created.stderr
        yield SimpleNamespace(
            port=published(docker_client, f"{project}-gateway", 8080),
            public=kratos.Endpoint("127.0.0.1", published(docker_client, f"{project}-identity", 4433)),
        )
    finally:
        remove_project(docker_client, project)


def whoami(public: kratos.Endpoint, token: str) -> int:
    return public.call("GET", "/sessions/whoami", headers={"X-Session-Token": token})[0]


def test_a_used_session_outlives_the_idle_timeout_and_an_unused_one_is_refused(platform) -> None:
    port, public = platform.port, platform.public
    token = kratos.login(public, "ada@example.com", PASSWORD)
    start = time.monotonic()
    while time.monotonic() - start < 2 * IDLE:  # used every 2 s for twice the idle timeout
        status, body = through(port, "/api/x", {"X-Session-Token": token})
        assert status == 200, (round(time.monotonic() - start, 1), body)
        time.sleep(2)
    time.sleep(IDLE + 1)  # unused longer than the idle timeout, well within the lifetime
    status, body = through(port, "/api/x", {"X-Session-Token": token})
    assert (status, body["error"]) == (401, "authentication_required"), body
    assert whoami(public, token) == 401  # the identity service ended it, not only the gateway


def test_a_session_used_all_along_ends_at_its_lifetime(platform) -> None:
    port, public = platform.port, platform.public
    token = kratos.login(public, "alan@example.com", PASSWORD)
    start = time.monotonic()
    while (answer := through(port, "/api/x", {"X-Session-Token": token}))[0] == 200:
        assert time.monotonic() - start < ABSOLUTE + 2, "a session passed beyond absolute_timeout"
        time.sleep(1)
    lasted = time.monotonic() - start
    assert answer[0] == 401 and "lifetime" in answer[1]["message"], answer
    assert lasted > ABSOLUTE - 3, f"refused after {lasted:.1f}s, before its lifetime"
