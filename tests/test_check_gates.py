"""Gates without an engine: an invalid platform.yaml is config.valid failing; the secrets
scan names files and keys, never values; the Grafana gate against a stand-in Grafana API on
127.0.0.1 (the local images have no Grafana to test it live)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mindscape_ops.check.context import CheckContext
from mindscape_ops.check.model import Failed
from mindscape_ops.check.secrets import leaks
from mindscape_ops.provision.endpoints import Address
from mindscape_ops.services import grafana as grafana_service

from .conftest import run_cli


def test_an_invalid_platform_is_config_valid_failing(tmp_path: Path):
    (tmp_path / "platform.yaml").write_text("version: 1\nproject: x\nservices:\n  redis: {maxmemory: lots}\n")
    result = run_cli("check", "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # an invalid platform.yaml, as every command says
    (row,) = json.loads(result.stdout)
    assert (row["id"], row["status"]) == ("config.valid", "fail")
    assert "platform.yaml:4:" in row["message"] and "services.redis.maxmemory" in row["message"]
    assert "mindscape validate" in row["remedy"]
    skipped = run_cli("check", "--skip", "config", cwd=tmp_path)
    assert skipped.returncode == 2 and "Traceback" not in skipped.stderr  # nothing else can be checked


def test_leaks_name_files_and_keys(tmp_path: Path):
    (tmp_path / "a.txt").write_text("password=s3cr3t-value-1\n")
    (tmp_path / "b.txt").write_text("nothing here\n")
    (tmp_path / "short.txt").write_text("admin\n")
    found = leaks(tmp_path, ["a.txt", "b.txt", "short.txt", "gone.txt"], {"PW": "s3cr3t-value-1", "USER": "admin"})
    assert found == {"a.txt": ["PW"]}  # values under 8 characters are not searched: they match by chance


class FakeGrafana(BaseHTTPRequestHandler):
    datasources: list = []
    health: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.headers.get("Authorization") != "Basic YWRtaW46Z3JhZmFuYS1wYXNzd29yZA==":  # admin:grafana-password
            self.send_response(401)
            self.end_headers()
            return
        body = self.datasources if self.path == "/api/datasources" else self.health
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class StandIn(CheckContext):
    def __init__(self, platform, port: int) -> None:
        self._platform, self._port = platform, port
        self.secrets = {"GRAFANA_ADMIN_PASSWORD": "grafana-password"}

    @property
    def platform(self):
        return self._platform

    def address(self, service: str) -> Address:
        return Address("127.0.0.1", self._port)


@pytest.fixture
def grafana():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def grafana_platform():
    from mindscape_ops.config.models import Platform

    return Platform.model_validate({"version": 1, "project": "x", "services": {"prometheus": {}, "grafana": {}}})


def test_grafana_datasource_gate(grafana):
    ctx = StandIn(grafana_platform(), grafana)
    FakeGrafana.datasources = [{"name": "Prometheus", "uid": "prometheus", "type": "prometheus"}]
    FakeGrafana.health = {"status": "OK", "message": "Successfully queried the Prometheus API."}
    assert grafana_service.grafana(ctx) == "datasource Prometheus (prometheus) provisioned and answering"
    FakeGrafana.health = {"status": "ERROR", "message": "Post http://prometheus:9090: connection refused"}
    with pytest.raises(Failed, match="connection refused"):
        grafana_service.grafana(ctx)
    FakeGrafana.datasources = []
    with pytest.raises(Failed, match="no Prometheus datasource"):
        grafana_service.grafana(ctx)
    ctx.secrets = {"GRAFANA_ADMIN_PASSWORD": "wrong"}
    with pytest.raises(Failed, match="answered 401"):
        grafana_service.grafana(ctx)
