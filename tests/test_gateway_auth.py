"""The gateway's session check (deploy/gateway/auth.js in nginx's JavaScript module), served by
this machine's nginx with the njs module: in front of an application that echoes what it
receives, and of a stand-in for the identity service's GET /sessions/whoami (the sessions it
knows, and the JWT it would mint, made here). What is tested is the gateway: refusals (401,
403, second factor, 503 when the identity service is away), the token handed on, and what is
stripped on the way. The real identity service is in test_identity_engine.py."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services import identity, identity_keys

from .render_support import local_nginx, platform_from
from .test_render_gateway import fetch

pytestmark = pytest.mark.tools
JS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _session(roles: list[str], aal: str, active: bool = True, age: float = 60, left: float = 600) -> dict:
    """`age`: seconds since the session was issued; `left`: until it expires (the stand-in dates
    them when asked, in the identity service's nanosecond RFC 3339)."""
    return {
        "id": str(uuid.uuid4()),
        "active": active,
        "authenticator_assurance_level": aal,
        "identity": {"id": "u-1", "state": "active", "metadata_public": {"roles": roles}},
        "tokenized": f"minted.{'-'.join(roles) or 'none'}.{aal}",
        "age": age,
        "left": left,
    }


# security.auth.sessions below: idle 10m, absolute 1h; a used session with 9m or less left is extended
SESSIONS = {
    "user-token": _session(["user"], "aal1"),
    "admin-aal1": _session(["admin"], "aal1"),
    "admin-aal2": _session(["admin"], "aal2"),
    "ended": _session(["user"], "aal1", active=False),
    "idle-soon": _session(["user"], "aal1", left=100),
    "too-old": _session(["user"], "aal1", age=3601),
}
EXTENDED: list[str] = []  # the session ids the admin API was asked to extend


def _rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e9):09d}Z"


class _Whoami(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        token = self.headers.get("X-Session-Token") or ""
        cookie = self.headers.get("Cookie") or ""
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == identity.Identity.session_cookie:
                token = value
        session = SESSIONS.get(token)
        assert self.path.startswith("/sessions/whoami?tokenize_as=mindscape")
        if session:
            now = time.time()
            session = {k: v for k, v in session.items() if k not in ("age", "left")}
            session |= {"issued_at": _rfc3339(now - SESSIONS[token]["age"])}
            session |= {"expires_at": _rfc3339(now + SESSIONS[token]["left"])}
        self.send_response(200 if session else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(session or {"error": {"code": 401}}).encode())

    def do_PATCH(self) -> None:  # noqa: N802 - the admin API's extend, on its own port
        found = re.fullmatch(r"/admin/sessions/([0-9a-f-]{36})/extend", self.path)
        assert found and not self.headers.get("X-Session-Token") and not self.headers.get("Cookie")
        EXTENDED.append(found.group(1))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def gateway(tmp_path: Path):
    if not JS_MODULE.is_file():
        pytest.skip("nginx's JavaScript module (libnginx-mod-http-js) is not installed")
    app, whoami = _serve(_Echo), _serve(_Whoami)
    data = {
        "version": 1,
        "project": "shop",
        "services": {
            "postgres": {},
            "identity": {"ui_url": "https://shop.example.com/account"},
            "gateway": {
                "upstream": f"http://127.0.0.1:{app.server_address[1]}",
                "routes": [
                    {"path": "/api/", "roles": ["user"]},
                    {"path": "/admin/", "roles": ["admin"], "mfa": "required"},
                    {"path": "/maybe/", "auth": "optional"},
                ],
            },
        },
        "security": {
            "rate_limit": {"enabled": False},
            "auth": {
                "mfa": {"methods": ["totp", "lookup_secret"]},
                "roles": {"user": {}, "admin": {}},
                "sessions": {"idle_timeout": "10m", "absolute_timeout": "1h"},
            },
        },
    }
    platform = platform_from(tmp_path, data)
    files = render_platform(platform)
    (tmp_path / "auth.js").write_text(files["deploy/gateway/auth.js"])
    # served by nginx's workers (nobody, when the test runs as root): a folder they may enter
    public = Path(tempfile.mkdtemp(prefix="mindscape-jwks-"))
    public.chmod(0o755)
    (public / "jwks.json").write_text(
        json.dumps(identity_keys.public_jwks({"keys": [identity_keys.new_signing_key()]}))
    )
    conf = files["deploy/gateway/nginx.conf"]
    conf = conf.replace("/etc/nginx/mindscape/jwks.json", f"{public}/jwks.json")
    conf = conf.replace("/etc/nginx/mindscape/", f"{tmp_path}/")
    conf = conf.replace('"identity:4433"', f'"127.0.0.1:{whoami.server_address[1]}"')
    conf = conf.replace('"identity:4434"', f'"127.0.0.1:{whoami.server_address[1]}"')  # its admin API
    assert "/_mindscape/extend/" in conf
    with local_nginx(conf, tmp_path) as port:
        yield port, whoami
    app.shutdown()
    whoami.shutdown()
    shutil.rmtree(public)


def _get(port: int, path: str, headers: dict[str, str] | None = None):
    status, got, body = fetch(port, "GET", path, headers)
    return status, got, json.loads(body) if body else None


def test_refusals(gateway) -> None:
    port, _ = gateway
    assert _get(port, "/api/x")[0] == 401
    assert _get(port, "/api/x", {"X-Session-Token": "forged"})[0] == 401
    assert _get(port, "/api/x", {"X-Session-Token": "ended"})[0] == 401
    status, _, body = _get(port, "/admin/x", {"X-Session-Token": "user-token"})
    assert (status, body["error"], body["roles"]) == (403, "role_required", ["admin"])
    status, _, body = _get(port, "/admin/x", {"X-Session-Token": "admin-aal1"})
    assert (status, body["error"], body["required_aal"]) == (403, "second_factor_required", "aal2")
    assert body["methods"] == ["totp", "lookup_secret"]


def test_the_application_gets_the_token_and_never_the_session(gateway) -> None:
    port, _ = gateway
    sent = {
        "X-Session-Token": "user-token",
        "Authorization": "Bearer forged.by.client",
        "Cookie": f"theme=dark; {identity.Identity.session_cookie}=user-token; lang=en",
    }
    status, got, body = _get(port, "/api/orders?x=1", sent)
    assert status == 200 and body["path"] == "/api/orders?x=1"
    seen = {k.lower(): v for k, v in body["headers"].items()}
    assert seen["authorization"] == "Bearer minted.user.aal1"
    assert "x-session-token" not in seen
    assert seen["cookie"] == "theme=dark; lang=en"
    assert got.get("X-Content-Type-Options") == "nosniff"  # the security headers still apply
    status, _, body = _get(port, "/admin/x", {"Cookie": f"{identity.Identity.session_cookie}=admin-aal2"})
    assert status == 200 and body["headers"]["Authorization"] == "Bearer minted.admin.aal2"
    assert "Cookie" not in body["headers"]


def test_optional_and_public_routes(gateway) -> None:
    port, _ = gateway
    status, _, body = _get(port, "/maybe/x", {"Authorization": "Bearer forged.by.client"})
    assert status == 200 and "Authorization" not in body["headers"]
    status, _, body = _get(port, "/maybe/x", {"X-Session-Token": "user-token"})
    assert body["headers"]["Authorization"] == "Bearer minted.user.aal1"
    status, _, body = _get(port, "/public", {"Authorization": "Bearer the-apps-own"})
    assert status == 200 and body["headers"]["Authorization"] == "Bearer the-apps-own"
    status, got, keys = _get(port, "/.well-known/jwks.json")
    assert status == 200 and got["Content-Type"] == "application/json" and "d" not in keys["keys"][0]


def test_identity_service_away_fails_closed(gateway) -> None:
    port, whoami = gateway
    whoami.shutdown()
    whoami.server_close()
    # a session the gateway has not let through lately: at once
    assert _get(port, "/api/x", {"X-Session-Token": "never-seen-token"})[0] == 503
    # one it let through above: once services.identity.session_cache (3 s, and up to 1 s of
    # nginx's rounding) has passed since
    deadline = time.monotonic() + 4.5
    while _get(port, "/api/x", {"X-Session-Token": "user-token"})[0] != 503:
        assert time.monotonic() < deadline, "a cached session passed beyond session_cache"
        time.sleep(0.2)
    assert _get(port, "/public")[0] == 200
    assert fetch(port, "GET", "/healthz")[0] == 200


def test_a_used_session_is_extended_once_a_step_and_an_old_one_refused(gateway) -> None:
    port, _ = gateway
    EXTENDED.clear()
    assert _get(port, "/api/x", {"X-Session-Token": "user-token"})[0] == 200
    assert EXTENDED == []  # 10 min left: more than idle_timeout less a step (1 min)
    assert _get(port, "/api/x", {"X-Session-Token": "idle-soon"})[0] == 200
    assert [SESSIONS["idle-soon"]["id"]] == EXTENDED
    for _ in range(3):  # within the step: the gateway's own answer, not the identity service's
        assert _get(port, "/maybe/x", {"X-Session-Token": "idle-soon"})[0] == 200
    assert len(EXTENDED) == 1
    status, _, body = _get(port, "/api/x", {"X-Session-Token": "too-old"})
    assert (status, body["error"]) == (401, "authentication_required") and "lifetime" in body["message"]
    assert len(EXTENDED) == 1


def test_a_browser_without_a_session_is_sent_to_the_login_ui(gateway) -> None:
    port, _ = gateway
    page = {"Accept": "text/html,application/xhtml+xml"}
    status, got, _ = fetch(port, "GET", "/api/orders?x=1", page)
    assert status == 303 and got["Cache-Control"] == "no-store"
    assert got["Location"] == (
        "https://shop.example.com/account/login?return_to=https%3A%2F%2Fshop.example.com%2Fapi%2Forders%3Fx%3D1"
    )
    assert fetch(port, "GET", "/api/orders", {"Accept": "application/json"})[0] == 401  # an API client
    assert fetch(port, "POST", "/api/orders", page)[0] == 401  # not a page
    assert fetch(port, "GET", "/api/x", {**page, "X-Session-Token": "user-token"})[0] == 200
    status, _, body = _get(port, "/admin/x", {**page, "X-Session-Token": "user-token"})
    assert (status, body["error"]) == (403, "role_required")  # a session without the role: no redirect
