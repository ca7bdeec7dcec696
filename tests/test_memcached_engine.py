"""memcached and its exporter on a real engine (mindscape-local images): `up` waits for its probe
(`version`), `check` passes its gates (readiness, the limits it runs with), and Prometheus
scrapes the exporter, which reads memcached (memcached_up 1)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from mindscape_ops.services.contract import Credentials
from mindscape_ops.services.memcached import SERVICE, stats

from .conftest import remove_project, run_cli, unique_project

pytestmark = pytest.mark.engine

IMAGES = {
    "memcached": "mindscape-local/memcached:1.6",
    "memcached_exporter": "mindscape-local/memcached_exporter:0.15",
    "prometheus": "mindscape-local/prometheus:2",
}


def scraped(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]


def test_up_probes_it_check_passes_and_prometheus_scrapes_its_exporter(docker_client, go_image, tmp_path):
    for service, image in IMAGES.items():
        go_image(service)  # `mindscape images build SERVICE` (the exporter's Go build started in the background)
        docker_client.images.get(image)
    project = unique_project("mc")
    services = "".join(f"  {name}: {{image: '{image}', port: auto}}\n" for name, image in IMAGES.items())
    services = services.replace("port: auto}\n", "port: auto, memory: 32mb, max_connections: 512}\n", 1)
    (tmp_path / "platform.yaml").write_text(f"version: 1\nproject: {project}\nservices:\n{services}")
    try:
        up = run_cli("up", cwd=tmp_path, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        ports = json.loads((tmp_path / ".mindscape" / "state.json").read_text())["ports"]

        SERVICE.probe.check("127.0.0.1", ports["memcached"], Credentials())  # ready now
        running = stats("127.0.0.1", ports["memcached"])
        assert running["limit_maxbytes"] == str(32 * 1024 * 1024) and running["max_connections"] == "512"

        check = run_cli("check", "--only", "services", "--json", cwd=tmp_path, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        results = {r["id"]: r["status"] for r in json.loads(check.stdout)}
        assert results["services.memcached_limits"] == "pass", results
        assert [s for gate, s in results.items() if "memcached" in gate and s != "pass"] == [], results

        deadline = time.monotonic() + 120
        while not (found := scraped(ports["prometheus"], 'memcached_up{job="memcached_exporter"}')):
            assert time.monotonic() < deadline, "Prometheus never scraped memcached_exporter"
            time.sleep(2)
        assert found[0]["value"][1] == "1"
    finally:
        remove_project(docker_client, project)


def test_the_limits_gate_fails_when_memcached_runs_with_other_limits(monkeypatch):
    from types import SimpleNamespace

    from mindscape_ops.services import memcached
    from mindscape_ops.services.contract import Address, Failed
    from mindscape_ops.settings.types import Size

    settings = SimpleNamespace(memory=Size("64mb"), max_connections=1024)
    ctx = SimpleNamespace(
        platform=SimpleNamespace(services=SimpleNamespace(memcached=settings)),
        address=lambda service: Address("127.0.0.1", 1),
    )
    monkeypatch.setattr(memcached, "stats", lambda host, port: {"limit_maxbytes": "1048576", "max_connections": "1024"})
    with pytest.raises(Failed, match="limit_maxbytes is '1048576', platform.yaml says '67108864'"):
        memcached.memory_as_configured(ctx)
