"""The gateway's nginx.conf and policy.json rendered from platform.yaml: checked by nginx itself
(`nginx -t`, and a running nginx in front of a stand-in application) and parsed back to prove
that values from platform.yaml arrive intact and in place, even hostile ones."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform

from . import render_support
from .render_support import (
    HOSTILE_CSP,
    HOSTILE_PERMISSIONS,
    HOSTILE_SETTING,
    deploy,
    everything_on,
    full_data,
    hostile,
    literal,
    local_nginx,
    nginx_headers,
    nginx_test,
    platform_from,
    run,
    tool,
)

# Fixtures shared with the other render tests; pytest finds fixtures by name in the test module.
rendered = render_support.rendered
this_family_only = render_support.this_family_only

SECURITY_HEADERS = (
    "Strict-Transport-Security",
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "Cross-Origin-Embedder-Policy",
)

# -- gateway ------------------------------------------------------------------------------


@pytest.mark.tools
def test_gateway_config_passes_nginx_t(rendered, tmp_path: Path) -> None:
    platform, out, files = rendered
    rel = deploy(platform, "gateway/nginx.conf")
    if "gateway" not in platform.services.enabled():
        assert rel not in files
        return
    result = nginx_test(out / rel, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.tools
def test_gateway_with_a_dns_upstream_needs_no_resolving_at_start(tmp_path: Path) -> None:
    """A name that does not resolve yet (another container, a DNS name) is looked up per request."""
    platform = everything_on(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_platform(platform)[deploy(platform, "gateway/nginx.conf")])
    assert "resolver 127.0.0.11" in conf.read_text()
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr


def test_gateway_config_content(rendered) -> None:
    platform, _, files = rendered
    rel = deploy(platform, "gateway/nginx.conf")
    if rel not in files:
        return
    text = files[rel]
    sec = platform.security
    headers = nginx_headers(text)
    for name in SECURITY_HEADERS:
        if name == "Strict-Transport-Security" and not sec.headers.hsts.enabled:
            assert name not in headers
            continue
        assert name in headers, name
    assert headers["Content-Security-Policy"] == sec.headers.content_security_policy
    assert headers["Permissions-Policy"] == sec.headers.permissions_policy
    assert headers["X-Frame-Options"] == sec.headers.frame_options
    assert headers["Referrer-Policy"] == sec.headers.referrer_policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Embedder-Policy"] == sec.headers.cross_origin_embedder_policy
    if sec.headers.hsts.enabled:  # its value is sent only to a client on TLS
        assert headers["Strict-Transport-Security"] == "$mindscape_hsts"
        max_age = int(sec.headers.hsts.max_age.seconds)
        assert re.search(rf'\n        https "max-age={max_age}[^"]*";\n', text)

    for line in (
        "server_tokens off;",
        "worker_processes auto;",
        "listen 8080 default_server;",
        "error_log /dev/stderr",
        "location = /healthz",
        f"client_max_body_size {sec.limits.max_body_size.nginx};",
        "proxy_set_header X-Request-ID",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "error_log /dev/stderr crit;",
    ):
        assert line in text, line

    cors_map = re.search(r"map \$http_origin \$cors_origin \{(.*?)\n    \}", text, re.S)
    if sec.cors.allowed_origins:
        entries = re.findall(r'^\s*"([^"]+)" "([^"]+)";$', cors_map.group(1), re.M)
        assert entries == [(origin, origin) for origin in sec.cors.allowed_origins]
        assert 'default "";' in cors_map.group(1)
        assert headers["Vary"] == "Origin"
    else:
        assert cors_map is None and "Access-Control-Allow-Origin" not in headers

    rate = sec.rate_limit
    if rate.enabled:
        assert f"rate={rate.requests_per_second}r/s;" in text
        assert (f"burst={rate.burst} nodelay;" if rate.burst else "per_client nodelay;") in text
        assert f"limit_req_status {rate.status};" in text and f"limit_conn_status {rate.status};" in text
        assert f"limit_conn mindscape_conn_per_client {rate.connections_per_client};" in text
    else:
        assert "limit_req" not in text
    assert ("log_format mindscape_audit escape=json" in text) == sec.audit_log.enabled
    assert ("\n    access_log off;" in text) != sec.audit_log.enabled


# -- policy.json --------------------------------------------------------------------------


def test_security_policy(rendered) -> None:
    platform, _, files = rendered
    text = files[deploy(platform, "security/policy.json")]
    policy = json.loads(text)
    auth, sec = platform.security.auth, platform.security
    assert policy["jwt"]["issuer"] == auth.jwt.issuer and policy["jwt"]["audience"] == auth.jwt.audience
    assert policy["jwt"]["algorithms"] == list(auth.jwt.algorithms)
    assert policy["jwt"]["access_token_ttl"] == auth.jwt.access_token_ttl
    assert policy["jwt"]["access_token_ttl_seconds"] == auth.jwt.access_token_ttl.seconds
    assert policy["jwt"]["refresh_token_ttl_seconds"] == auth.jwt.refresh_token_ttl.seconds
    roles = auth.roles.items()
    assert policy["roles"] == {
        name: {"permissions": list(role.permissions), "mfa_required": role.mfa_required} for name, role in roles
    }
    assert policy["mfa"]["required_for_roles"] == [name for name, role in roles if role.mfa_required]
    assert policy["mfa"]["methods"] == list(auth.mfa.methods)
    assert policy["sessions"]["idle_timeout_seconds"] == auth.sessions.idle_timeout.seconds
    assert policy["sessions"]["absolute_timeout_seconds"] == auth.sessions.absolute_timeout.seconds
    assert policy["cors"]["allowed_origins"] == list(sec.cors.allowed_origins)
    assert policy["rate_limit"] == sec.rate_limit.model_dump()
    assert policy["limits"]["max_body_size_bytes"] == sec.limits.max_body_size.bytes
    assert text.startswith('{\n  "version": 1,\n') and text.endswith("}\n")


# -- hostile values -----------------------------------------------------------------------


def test_hostile_values_keep_every_file_intact(tmp_path: Path) -> None:
    platform = hostile(tmp_path)
    files = render_platform(platform)
    ci = yaml.safe_load(files[f"{platform.paths.workflows}/ci.yml"])
    scripts = "".join(step.get("run", "") for job in ci["jobs"].values() for step in job.get("steps", []))
    assert "$SOURCE_DIR" in scripts  # paths reach the shell only through env, quoted

    compose = yaml.safe_load(files[deploy(platform, "compose.yaml")])
    command = compose["services"]["postgres"]["command"]
    assert f"search_path={HOSTILE_SETTING}".replace("$", "$$") in command

    headers = nginx_headers(files[deploy(platform, "gateway/nginx.conf")])
    assert headers["Content-Security-Policy"] == HOSTILE_CSP
    assert headers["Permissions-Policy"] == HOSTILE_PERMISSIONS
    json.loads(files[deploy(platform, "security/policy.json")])


@pytest.mark.tools
def test_hostile_values_pass_the_real_tools(tmp_path: Path) -> None:
    platform = hostile(tmp_path / "source")
    files = render_platform(platform)
    out = tmp_path / "project"
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    workflows = [str(out / rel) for rel in files if rel.endswith(".yml") and "workflows" in rel]
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows)
    assert result.returncode == 0, result.stdout
    result = nginx_test(out / deploy(platform, "gateway/nginx.conf"), tmp_path)
    assert result.returncode == 0, result.stderr
    env = {**os.environ, "POSTGRES_PASSWORD": "a", "REDIS_PASSWORD": "b", "GRAFANA_ADMIN_PASSWORD": "c"}
    result = run(tool("docker-compose"), "-f", str(out / deploy(platform, "compose.yaml")), "config", env=env)
    assert result.returncode == 0, result.stderr
    command = yaml.safe_load(result.stdout)["services"]["postgres"]["command"]
    assert f"search_path={HOSTILE_SETTING}".replace("$", "$$") in command


# -- the gateway, running -----------------------------------------------------------------


class _App(BaseHTTPRequestHandler):
    """The application behind the gateway: echoes what it received, and sets headers the
    gateway must replace."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Powered-By", "app")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int, method: str, path: str, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def running_gateway(tmp_path: Path):
    """The rendered nginx.conf served by the real nginx in front of a stand-in application.
    Only the listen port and pid path are changed, so it can run beside anything else."""
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    data = full_data()
    data["services"]["gateway"]["upstream"] = f"http://127.0.0.1:{app.server_address[1]}/api"
    data["security"]["headers"].update(
        content_security_policy=literal(HOSTILE_CSP), permissions_policy=literal(HOSTILE_PERMISSIONS)
    )
    data["security"]["rate_limit"].update(requests_per_second=1, burst=2, status=429)
    platform = platform_from(tmp_path, data)
    text = render_platform(platform)[deploy(platform, "gateway/nginx.conf")]
    with (tmp_path / "access.log").open("w") as audit, local_nginx(text, tmp_path, audit) as port:
        yield platform, port, tmp_path / "access.log"
    app.shutdown()


@pytest.mark.tools
def test_running_gateway_headers_cors_proxy_and_rate_limit(running_gateway) -> None:
    platform, port, audit_log = running_gateway
    origin, other = platform.security.cors.allowed_origins[0], "https://evil.example.com"

    status, headers, body = fetch(port, "GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Security-Policy"] == HOSTILE_CSP
    assert headers["Permissions-Policy"] == HOSTILE_PERMISSIONS
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Server"] == "nginx"  # no version

    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    status, headers, _ = fetch(port, "OPTIONS", "/api/x", preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Methods"] == ", ".join(platform.security.cors.allowed_methods)
    assert headers["Access-Control-Allow-Headers"] == ", ".join(platform.security.cors.allowed_headers)
    assert headers["Access-Control-Max-Age"] == "3600"
    assert headers["Vary"] == "Origin"

    status, headers, body = fetch(port, "GET", "/things?x=1", {"Origin": other, "X-Request-ID": "req-42"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers  # the app's `*` is dropped, the origin is not listed
    assert "X-Powered-By" not in headers and headers["X-Request-ID"] == "req-42"
    received = json.loads(body)
    assert received["path"] == "/api/things?x=1"
    assert received["headers"]["X-Request-ID"] == "req-42"
    assert received["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert received["headers"]["X-Forwarded-Proto"] == "http"

    statuses = [fetch(port, "GET", "/burst")[0] for _ in range(8)]
    assert platform.security.rate_limit.status in statuses

    deadline = time.monotonic() + 5
    while (
        (lines := [json.loads(line) for line in audit_log.read_text().splitlines()])
        and len(lines) < 10
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)  # nginx logs after it answers
    entry = next(line for line in lines if line["uri"] == "/things")  # never the query string
    assert "x=1" not in audit_log.read_text()
    assert entry["request_id"] == "req-42" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["origin"] == other and entry["remote_addr"] == "127.0.0.1"
    assert {"time", "bytes", "duration", "user_agent"} <= set(entry)
    assert not any(line["uri"] == "/healthz" for line in lines)
