"""Authentication's audit trail and e-mails on a real engine: `mindscape up` of Postgres, the
identity service (Ory Kratos, local image), the log store (VictoriaLogs) and the gateway. A user
made with `mindscape auth create-user` logs in through the gateway (once with a wrong password),
enrols TOTP, has their roles changed with `mindscape auth set-roles` and asks for a recovery
code: LogsQL on the store finds an entry for each, naming the user and the outcome; the recovery
e-mail, posted by the identity service's courier, is in the store with its code; no line of the
project holds the password or the session token; a browser login through the gateway's audit
script still gets its cookies."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from mindscape_ops.adapters import logstore
from mindscape_ops.services import identity_client as kratos

from .conftest import remove_project, run_cli, unique_project
from .identity_support import PASSWORD, ask_recovery, free_port, identity_images, up_with_ada

pytestmark = pytest.mark.engine
WRONG = "not-the-password-at-all"
PROJECT_FIELD = "event.attrs.io.mindscape.project"


@dataclass(frozen=True)
class Through(kratos.Endpoint):
    """The identity service's public API as clients reach it: through the gateway."""

    prefix: str = "/_mindscape/identity"

    def call(self, method, path, body=None, headers=None):
        return super().call(method, self.prefix + path, body, headers)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, docker_client, go_image):
    refs = identity_images(docker_client, go_image, victorialogs="1.52")
    directory = tmp_path_factory.mktemp("identity-audit")
    project = unique_project("ida")
    admin = free_port()
    (directory / "platform.yaml").write_text(
        f"""version: 1
project: {project}
services:
  postgres: {{image: "{refs["postgres"]}", port: auto}}
  identity: {{image: "{refs["identity"]}", port: auto, admin_port: {admin}}}
  victorialogs: {{image: "{refs["victorialogs"]}", port: auto, ingest_port: {free_port()}}}
  gateway:
    image: "{refs["gateway"]}"
    port: auto
    upstream: "http://127.0.0.1:9"
    routes:
      - {{path: /api/, roles: [user]}}
security:
  rate_limit: {{enabled: false}}
  auth:
    roles: {{user: {{}}, admin: {{}}}}
    mfa: {{methods: [totp, lookup_secret]}}
    login_rate_limit: {{requests_per_minute: 600, burst: 100}}
"""
    )
    try:
        ports = up_with_ada(directory)
        yield SimpleNamespace(
            directory=directory,
            project=project,
            store=f"http://127.0.0.1:{ports['victorialogs']}",
            public=Through("127.0.0.1", ports["gateway"]),
            admin=kratos.Endpoint("127.0.0.1", admin),
            docker=docker_client,
        )
    finally:
        remove_project(docker_client, project)


def rows(platform, logsql: str, want: int = 1, patience: float = 30.0) -> list[dict]:
    """The project's rows matching the LogsQL filter, once at least `want` have arrived (the
    engine's log driver posts in batches)."""
    scoped = f"{logstore.quoted(PROJECT_FIELD)}:={logstore.quoted(platform.project)} AND ({logsql})"
    deadline = time.monotonic() + patience
    while True:
        found = logstore.query(platform.store, scoped)
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(1)


@pytest.fixture(scope="module")
def actions(platform):
    """What the audit trail records: a login, a failed one, TOTP enrolled, roles changed, a
    recovery code asked for. Returns the session tokens the user got."""
    public = platform.public
    token = kratos.login(public, "ada@example.com", PASSWORD)
    with pytest.raises(kratos.IdentityError, match="answered 400"):
        kratos.login(public, "ada@example.com", WRONG)
    kratos.enrol_totp(public, token)
    changed = run_cli("auth", "set-roles", "ada@example.com", "user", "admin", cwd=platform.directory)
    assert changed.returncode == 0, changed.stderr
    refused = run_cli("auth", "set-roles", "ada@example.com", "root", cwd=platform.directory)
    assert refused.returncode != 0 and "unknown role(s): root" in refused.stderr
    ask_recovery(public, "ada@example.com")
    return [token]


def test_a_login_is_in_the_log_store_with_the_user(platform, actions) -> None:
    ada = kratos.find_identity(platform.admin, "ada@example.com")["id"]
    # the identity service's own audit line, then the gateway's
    found = rows(platform, '"event.line.audience":="audit" AND "event.line.msg":"authenticated successfully"')
    assert found and {row.get("event.line.identity_id") for row in found} == {ada}, found
    found = rows(platform, '"event.line.event":="login" AND "event.line.outcome":="ok"')
    assert [(row["event.line.identifier"], row["event.line.identity_id"]) for row in found] == [
        ("ada@example.com", ada)
    ], found


def test_a_failed_login_is_in_the_log_store_with_the_user_and_outcome(platform, actions) -> None:
    found = rows(platform, '"event.line.event":="login" AND "event.line.outcome":="failed"')
    assert [(row["event.line.identifier"], row["_msg"]) for row in found] == [
        ("ada@example.com", "/_mindscape/identity/self-service/login")
    ], found


def test_totp_enrolment_is_in_the_log_store(platform, actions) -> None:
    found = rows(platform, '"event.line.event":="mfa_enrolled"')
    assert found and found[0]["event.line.method"] == "totp", found


def test_a_role_change_is_in_the_log_store_with_before_and_after(platform, actions) -> None:
    found = rows(platform, '"audit.command":="auth set-roles"', want=2)
    outcomes = {row["audit.outcome"].split(":")[0]: row for row in found}
    ok = outcomes["ok"]
    assert ok["audit.arguments.email"] == "ada@example.com", ok
    assert json.loads(ok["audit.arguments.roles"]) == ["user", "admin"], ok
    assert json.loads(ok["audit.arguments.before"]) == ["user"], ok
    assert any(key.startswith("failed") for key in outcomes), found


def test_the_recovery_email_is_in_the_log_store_with_its_code(platform, actions) -> None:
    found = rows(platform, '"courier.template":~"recovery"')
    assert found, "no recovery e-mail in the log store"
    row = found[0]
    assert row["courier.to"] == "ada@example.com", row
    assert re.search(r"\b\d{6}\b", row["_msg"]), row["_msg"]


def test_no_line_holds_the_password_or_a_session_token(platform, actions) -> None:
    rows(platform, '"courier.template":~"recovery"')  # the last entry has arrived
    every = logstore.query(platform.store, f"{logstore.quoted(PROJECT_FIELD)}:={logstore.quoted(platform.project)}")
    assert len(every) > 20
    text = json.dumps(every)
    for secret in (PASSWORD, WRONG, *actions):
        assert secret not in text


def test_a_browser_login_through_the_gateway_gets_its_cookies(platform, actions) -> None:
    """The login submission goes through the gateway's script: the identity service's cookies
    (CSRF, then the session) reach the browser, and the session opens a protected route."""
    import http.client

    port, cookies = platform.public.port, {}

    def call(method: str, path: str, body: dict | None = None, extra: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Accept": "application/json", "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, json.dumps(body) if body is not None else None, {**headers, **(extra or {})})
        response = conn.getresponse()
        raw = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, raw

    status, raw = call("GET", "/_mindscape/identity/self-service/login/browser")
    assert status == 200, raw
    flow = json.loads(raw)
    csrf = next(n["attributes"]["value"] for n in flow["ui"]["nodes"] if n["attributes"].get("name") == "csrf_token")
    body = {"method": "password", "identifier": "ada@example.com", "password": PASSWORD, "csrf_token": csrf}
    status, raw = call("POST", f"/_mindscape/identity/self-service/login?flow={flow['id']}", body)
    assert status == 200 and "mindscape_session" in cookies, raw
    # the session passes the route's check (401 without it); no application listens: 502
    assert call("GET", "/api/x")[0] == 502
    cookies.pop("mindscape_session")
    assert call("GET", "/api/x")[0] == 401
