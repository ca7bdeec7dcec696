"""Authentication end to end on a real engine: `mindscape up` of Postgres, the identity service
(Ory Kratos, local image) and the gateway; a user made with `mindscape auth create-user` logs in
through Kratos' API flow; the gateway refuses the anonymous (401) and the wrong role (403), and
hands the application (an nginx echoing what it received, on the platform network) a JWT that
verifies against the gateway's JWKS, never the session; a forged token, a logged-out session
and a disabled user are refused; TOTP enrolled through the settings API flow (codes computed
here, RFC 6238) opens the route that needs a second factor, and `auth reset-mfa` closes it again;
an expired session and a tampered session cookie are refused; the self-service API through the
gateway is rate limited (429); `auth rotate-key` publishes the new key beside the old and the
identity service signs with it; `mindscape check --only auth` passes, all five gates."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from mindscape_ops.services import identity_client as kratos

from .conftest import remove_project, run_cli, unique_project
from .identity_support import PASSWORD, create_ada, free_port, identity_images

pytestmark = pytest.mark.engine
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


def published(docker_client, container: str, port: int) -> int:
    details = docker_client.api.inspect_container(container)
    return int(details["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, go_image):
    refs = identity_images(docker_client, go_image)
    directory = tmp_path_factory.mktemp("identity")
    project = unique_project("idn")
    (directory / "platform.yaml").write_text(
        f"""version: 1
project: {project}
services:
  postgres: {{image: "{refs["postgres"]}", port: auto}}
  # asked on every request (the tests below look at each answer); the cache: the last test
  identity: {{image: "{refs["identity"]}", port: auto, admin_port: {free_port()}, session_cache: 0s}}
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
        create_ada(directory)
        public = kratos.Endpoint("127.0.0.1", published(docker_client, f"{project}-identity", 4433))
        admin = kratos.Endpoint("127.0.0.1", published(docker_client, f"{project}-identity", 4434))
        yield SimpleNamespace(
            directory=directory,
            port=published(docker_client, f"{project}-gateway", 8080),
            public=public,
            admin=admin,
            project=project,
            docker=docker_client,
        )
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
    port, public = platform.port, platform.public
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
    directory, port, public = platform.directory, platform.port, platform.public
    assert through(port, "/api/x", {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})[0] == 401
    token = kratos.login(public, "ada@example.com", PASSWORD)
    kratos.logout(public, token)
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 401
    token = kratos.login(public, "ada@example.com", PASSWORD)
    assert run_cli("auth", "disable", "ada@example.com", cwd=directory).returncode == 0
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 401


def make_user(platform, email: str, role: str) -> None:
    created = run_cli("auth", "create-user", email, "--role", role, cwd=platform.directory, input=PASSWORD)
    assert created.returncode == 0, created.stderr


def audited(platform, command: str) -> list[dict]:
    lines = (platform.directory / ".mindscape" / "audit.log").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["command"] == command]


def test_totp_enrolled_opens_the_mfa_route_and_reset_mfa_closes_it(platform) -> None:
    port, public = platform.port, platform.public
    make_user(platform, "grace@example.com", "admin")
    token = kratos.login(public, "grace@example.com", PASSWORD)
    status, body = through(port, "/admin/x", {"X-Session-Token": token})
    assert (status, body["error"], body["required_aal"]) == (403, "second_factor_required", "aal2")
    secret = kratos.enrol_totp(public, token)  # Kratos counts the enrolment as a second factor
    assert through(port, "/admin/x", {"X-Session-Token": token})[0] == 200
    token = kratos.login(public, "grace@example.com", PASSWORD)  # password only: aal1
    assert through(port, "/admin/x", {"X-Session-Token": token})[0] == 403
    with pytest.raises(kratos.IdentityError, match="logging in with TOTP: answered 400"):
        kratos.second_factor(public, token, "JBSWY3DPEHPK3PXP")  # another secret's code
    assert through(port, "/admin/x", {"X-Session-Token": token})[0] == 403
    token = kratos.second_factor(public, token, secret)
    status, seen = through(port, "/admin/x", {"X-Session-Token": token})
    assert status == 200
    claims = kratos.verify_jwt(
        seen["authorization"].removeprefix("Bearer "), through(port, "/.well-known/jwks.json")[1], "api"
    )
    assert claims["aal"] == "aal2" and claims["roles"] == ["admin"]
    # the operator removes the factor: the AAL2 session ends, a new login stays at AAL1
    result = run_cli("auth", "reset-mfa", "grace@example.com", cwd=platform.directory)
    assert result.returncode == 0 and "totp" in result.stderr, result.stderr
    assert through(port, "/admin/x", {"X-Session-Token": token})[0] == 401
    token = kratos.login(public, "grace@example.com", PASSWORD)
    assert through(port, "/admin/x", {"X-Session-Token": token})[0] == 403
    with pytest.raises(kratos.IdentityError):
        kratos.second_factor(public, token, secret)
    entry = audited(platform, "auth reset-mfa")[-1]
    assert entry["outcome"] == "ok" and entry["arguments"]["removed"] == ["totp"]
    # the identity service's own audit lines (JSON, audience audit) for the logins, in its log
    lines = platform.docker.containers.get(f"{platform.project}-identity").logs().decode().splitlines()
    logins = [line for line in lines if '"audience":"audit"' in line and "authenticated successfully" in line]
    assert logins and all(
        json.loads(line)["identity_id"] == entry_id(platform, "grace@example.com") for line in logins[-1:]
    )


def entry_id(platform, email: str) -> str:
    return kratos.find_identity(platform.admin, email)["id"]


def test_an_expired_session_is_refused(platform) -> None:
    port, public = platform.port, platform.public
    make_user(platform, "edsger@example.com", "user")
    token = kratos.login(public, "edsger@example.com", PASSWORD)
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 200
    found = kratos.find_identity(platform.admin, "edsger@example.com")
    # the session's end moved to a minute ago, in the identity service's own table
    sql = f"UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE identity_id = '{found['id']}'"
    postgres = platform.docker.containers.get(f"{platform.project}-postgres")
    code, out = postgres.exec_run(["sh", "-c", 'psql -U "$POSTGRES_USER" -d identity -v ON_ERROR_STOP=1 -c "$0"', sql])
    assert code == 0 and b"UPDATE 1" in out, out
    status, body = through(port, "/api/x", {"X-Session-Token": token})
    assert (status, body["error"]) == (401, "authentication_required")


def browser_login(public: kratos.Endpoint, email: str) -> str:
    """The session cookie of a browser login flow (JSON answers; cookies carried by hand)."""

    def call(method: str, path: str, cookies: dict[str, str], body: dict | None = None):
        conn = http.client.HTTPConnection(public.host, public.port, timeout=10)
        headers = {"Accept": "application/json", "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        answer = json.loads(response.read() or b"null")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, answer

    cookies: dict[str, str] = {}
    status, flow = call("GET", "/self-service/login/browser", cookies)
    assert status == 200, flow
    csrf = next(n["attributes"]["value"] for n in flow["ui"]["nodes"] if n["attributes"].get("name") == "csrf_token")
    body = {"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf}
    status, answer = call("POST", f"/self-service/login?flow={flow['id']}", cookies, body)
    assert status == 200 and "mindscape_session" in cookies, answer
    return cookies["mindscape_session"]


def test_a_session_cookie_passes_and_a_tampered_one_is_refused(platform) -> None:
    port = platform.port
    make_user(platform, "barbara@example.com", "user")
    cookie = browser_login(platform.public, "barbara@example.com")
    status, seen = through(port, "/api/x", {"Cookie": f"theme=dark; mindscape_session={cookie}"})
    assert status == 200 and seen["cookie"] == "theme=dark" and cookie not in json.dumps(seen)
    middle = len(cookie) // 2
    tampered = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    status, body = through(port, "/api/x", {"Cookie": f"mindscape_session={tampered}"})
    assert (status, body["error"]) == (401, "authentication_required")


def test_the_self_service_api_through_the_gateway_is_rate_limited(platform) -> None:
    # security.auth.login_rate_limit's defaults: 10 a minute, bursts of 5: six pass at once
    statuses = []
    for _ in range(7):
        request = urllib.request.Request(f"http://127.0.0.1:{platform.port}/_mindscape/identity/self-service/login/api")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
                statuses.append((response.status, "id" in json.loads(response.read())))
        except urllib.error.HTTPError as exc:
            statuses.append((exc.code, False))
    assert statuses == [(200, True)] * 6 + [(429, False)], statuses
    # the protected routes are not counted against it
    assert through(platform.port, "/api/x")[0] == 401


def test_rotate_key_publishes_both_and_signs_with_the_new(platform) -> None:
    port, public = platform.port, platform.public
    make_user(platform, "radia@example.com", "user")
    token = kratos.login(public, "radia@example.com", PASSWORD)
    old_jwt = through(port, "/api/x", {"X-Session-Token": token})[1]["authorization"].removeprefix("Bearer ")
    (old_kid,) = [key["kid"] for key in through(port, "/.well-known/jwks.json")[1]["keys"]]
    result = run_cli("auth", "rotate-key", cwd=platform.directory, timeout=120)
    assert result.returncode == 0, result.stderr
    jwks = through(port, "/.well-known/jwks.json")[1]
    kids = [key["kid"] for key in jwks["keys"]]
    assert len(kids) == 2 and kids[1] == old_kid and "d" not in jwks["keys"][0]
    kratos.verify_jwt(old_jwt, jwks, "api")  # tokens signed before still verify
    deadline = time.monotonic() + 20  # the gateway may still hold the restarted service's old address
    while (answer := through(port, "/api/x", {"X-Session-Token": token}))[0] == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    status, seen = answer
    assert status == 200, answer
    new_jwt = seen["authorization"].removeprefix("Bearer ")
    head = json.loads(kratos._b64(new_jwt.split(".")[0]))
    assert head["kid"] == kids[0] != old_kid
    kratos.verify_jwt(new_jwt, jwks, "api")
    assert audited(platform, "auth rotate-key")[-1]["arguments"]["kid"] == kids[0]


def test_check_auth_passes(platform) -> None:
    result = run_cli("check", "--json", "--only", "auth", cwd=platform.directory, timeout=180)
    rows = {row["id"]: row["status"] for row in json.loads(result.stdout)}
    gates = ("auth.enforced", "auth.jwt", "auth.roles", "auth.mfa", "auth.revocation")
    assert result.returncode == 0 and rows == dict.fromkeys(gates, "pass"), result.stdout


def test_a_cached_session_is_refused_within_session_cache(platform) -> None:
    """Last (it changes the platform): the gateway reuses the identity service's answer for a
    session it let through for session_cache, and no longer: a revoked session passes inside
    that time and is refused after it; `auth.revocation` passes with the cache."""
    config = platform.directory / "platform.yaml"
    config.write_text(config.read_text().replace("session_cache: 0s", "session_cache: 2s"))
    result = run_cli("up", cwd=platform.directory, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    port, public = platform.port, platform.public
    make_user(platform, "hedy@example.com", "user")  # a user of its own: ada was disabled above
    token = kratos.login(public, "hedy@example.com", PASSWORD)
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 200
    kratos.logout(public, token)
    logged_out = time.monotonic()
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 200  # the cached answer
    while through(port, "/api/x", {"X-Session-Token": token})[0] == 200:
        # 2 s, plus up to 1 s: nginx dates a cached answer in whole seconds
        assert time.monotonic() - logged_out < 3.5, "a logged-out session passed longer than session_cache"
        time.sleep(0.1)
    assert through(port, "/api/x", {"X-Session-Token": token})[0] == 401
    result = run_cli("check", "--json", "--only", "auth", cwd=platform.directory, timeout=180)
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["auth.revocation"]["status"] == "pass", result.stdout
