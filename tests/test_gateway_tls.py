"""`security.tls` and the gateway's limits: the settings refuse what cannot work, each mode's
rendered nginx.conf passes `nginx -t`, and a real nginx holds the open-requests limit
(`limit_conn`). The live TLS and proxy behaviour, in the real container: test_gateway_engine.py."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from mindscape_ops.config.models import Platform
from mindscape_ops.config.rules import check_platform
from mindscape_ops.config.security import Tls
from mindscape_ops.errors import UsageError
from mindscape_ops.services import gateway
from mindscape_ops.services.gateway import expected_headers
from mindscape_ops.services.spec import container_specs

from . import render_support
from .conftest import run_cli
from .render_support import full_data, local_nginx, nginx_test, platform_from
from .test_render_gateway import fetch
from .tls_support import gateway_conf, issue, tls_platform

this_family_only = render_support.this_family_only

PROXIES = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]


# -- the settings -------------------------------------------------------------------------


def test_trusted_proxies_are_checked_and_written_canonically() -> None:
    assert Tls(mode="proxy", trusted_proxies=PROXIES).trusted_proxies == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    for bad, says in (
        ("10.0.0.1/8", "has host bits set; did you mean 10.0.0.0/8?"),
        ("0.0.0.0/0", "trusts every address"),
        ("::/0", "trusts every address"),
        ("10.0.0.0/33", "is not an IP address or CIDR network"),
        ("proxy.example.com", "is not an IP address or CIDR network"),
    ):
        with pytest.raises(ValidationError, match=re.escape(says)):
            Tls(mode="proxy", trusted_proxies=[bad])


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"mode": "terminate", "certificate": "tls/cert.pem"}, "mode terminate needs certificate and key"),
        ({"mode": "proxy"}, "mode proxy needs trusted_proxies"),
        ({"certificate": "c.pem", "key": "k.pem"}, "used only with mode terminate (mode is plain)"),
        ({"mode": "proxy", "trusted_proxies": ["10.0.0.0/8"], "redirect_port": 80}, "used only with mode terminate"),
        (
            {"mode": "terminate", "certificate": "c", "key": "k", "trusted_proxies": ["10.0.0.0/8"]},
            "only with mode proxy",
        ),
        ({"mode": "terminate", "certificate": "../c.pem", "key": "k"}, "must be a relative path inside the project"),
    ],
)
def test_each_mode_takes_its_own_settings(settings: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)):
        Tls(**settings)


def test_validate_names_the_bad_setting_in_one_line(tmp_path: Path) -> None:
    data = full_data()
    data["security"]["tls"] = {"mode": "proxy", "trusted_proxies": ["172.16.0.1/12"]}
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(data))
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "security.tls.trusted_proxies[0]: " in result.stderr and "did you mean 172.16.0.0/12?" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_plain_http_off_loopback_and_an_unused_upstream_ca(tmp_path: Path) -> None:
    data = full_data()
    data["services"]["gateway"]["bind"] = "0.0.0.0"
    data["security"]["tls"] = {"upstream_ca": "ca.pem"}
    problems = dict(check_platform(Platform.model_validate(data)))
    assert "plain HTTP on 0.0.0.0 in production" in problems[("security", "tls", "mode")]
    assert "only with an https upstream" in problems[("security", "tls", "upstream_ca")]
    data["security"]["tls"] = {"mode": "terminate", "certificate": "c", "key": "k", "redirect_port": 13000}
    data["services"]["gateway"]["port"] = "auto"
    problems = dict(check_platform(Platform.model_validate(data)))
    assert "already used by services.grafana.port" in problems[("security", "tls", "redirect_port")]
    assert "a number with security.tls.redirect_port" in problems[("services", "gateway", "port")]
    data["security"]["tls"] = {"mode": "proxy", "trusted_proxies": PROXIES}
    assert not [p for p in check_platform(Platform.model_validate(data)) if p[0][:2] == ("security", "tls")]


def test_tls_files_are_mounted_read_only_and_must_exist(tmp_path: Path) -> None:
    tls = {"mode": "terminate", "certificate": "tls/site.pem", "key": str(tmp_path / "site.key")}
    platform = tls_platform(tmp_path, tls)
    mounts = {m.target: m for m in container_specs(platform)["gateway"].mounts}
    assert mounts["/etc/nginx/tls/certificate.pem"].source == "tls/site.pem"
    assert not mounts["/etc/nginx/tls/certificate.pem"].host
    assert mounts["/etc/nginx/tls/key.pem"].host and mounts["/etc/nginx/tls/key.pem"].read_only

    project = SimpleNamespace(root=tmp_path, platform=platform)  # what the hook reads of a project
    with pytest.raises(UsageError, match=r"security.tls.certificate: tls/site.pem is not a file"):
        gateway.tls_files_exist(project, {})
    issued = issue(tmp_path / "tls", "site", ["localhost"])
    issued.key.rename(tmp_path / "site.key")
    assert gateway.tls_files_exist(project, {}) == []


# -- each mode's nginx.conf ------------------------------------------------------------------


def _checkable(text: str, directory: Path) -> Path:
    """The config with the container's TLS file paths pointed at files made here."""
    issued = issue(directory, "site", ["localhost", "127.0.0.1"])
    for target, source in (
        ("/etc/nginx/tls/certificate.pem", issued.certificate),
        ("/etc/nginx/tls/key.pem", issued.key),
        ("/etc/nginx/tls/upstream-ca.pem", issued.certificate),
    ):
        text = text.replace(target, str(source))
    conf = directory / "nginx.conf"
    conf.write_text(text)
    return conf


MODES = {
    "plain": {},
    "terminate": {"mode": "terminate", "certificate": "c.pem", "key": "k.pem", "redirect_port": 18081},
    "proxy": {"mode": "proxy", "trusted_proxies": PROXIES},
}


@pytest.mark.tools
@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_passes_nginx_t(mode: str, tmp_path: Path) -> None:
    data = full_data()
    data["security"]["tls"] = {**MODES[mode], **({"upstream_ca": "ca.pem"} if mode == "terminate" else {})}
    data["services"]["gateway"]["upstream"] = "https://10.1.2.3:8443/v1"  # verified TLS upstream
    text = gateway_conf(platform_from(tmp_path / "source", data))
    result = nginx_test(_checkable(text, tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "proxy_ssl_verify on;" in text and "proxy_ssl_server_name on;" in text
    ca = "/etc/nginx/tls/upstream-ca.pem" if mode == "terminate" else "/etc/ssl/certs/ca-certificates.crt"
    assert f"proxy_ssl_trusted_certificate {ca};" in text
    assert ("listen 8080 ssl default_server;" in text) == (mode == "terminate")
    assert ("listen 8081 default_server;" in text) == (mode == "terminate")
    assert ("return 301 https://$host:18080$request_uri;" in text) == (mode == "terminate")
    assert ("\n        ssl_protocols TLSv1.2 TLSv1.3;" in text) == (mode == "terminate")
    assert text.count("set_real_ip_from") == (3 if mode == "proxy" else 0)
    assert '$request_uri"' not in text and '"uri":"$uri"' in text  # the log has the path, not the query


def test_the_gate_expects_hsts_only_where_the_gateway_serves_tls(tmp_path: Path) -> None:
    for mode, tls in MODES.items():
        platform = tls_platform(tmp_path / mode, tls)
        wanted = expected_headers(platform.security)
        assert wanted["Cross-Origin-Embedder-Policy"] == "require-corp" and len(wanted) == 8 + (mode == "terminate")
        if mode == "terminate":  # the very value the template's map sends over TLS
            assert f'https "{wanted["Strict-Transport-Security"]}";' in gateway_conf(platform)


# -- limit_conn, on a real nginx -----------------------------------------------------------


class _SlowApp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.tools
def test_open_requests_per_client_are_limited(tmp_path: Path) -> None:
    """4 slow requests at once from one address, with room for 2: 2 pass, 2 get the status."""
    app = ThreadingHTTPServer(("127.0.0.1", 0), _SlowApp)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    data = full_data()
    data["services"]["gateway"]["upstream"] = f"http://127.0.0.1:{app.server_address[1]}"
    data["security"]["rate_limit"] = {"requests_per_second": 100, "burst": 100, "connections_per_client": 2}
    text = gateway_conf(platform_from(tmp_path / "source", data))
    with local_nginx(text, tmp_path) as port:
        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(pool.map(lambda _: fetch(port, "GET", "/slow")[0], range(4)))
        assert statuses == [200, 200, 429, 429]
        assert fetch(port, "GET", "/slow")[0] == 200  # freed once they finished
    app.shutdown()
