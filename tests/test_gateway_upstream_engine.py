"""The gateway looks its upstream up per request, live: started while the application's name
does not resolve it answers 502 (and /healthz 200); once the application comes up under that
name it answers 200, without a reload, and the application gets the path and query string as
the client sent them, after the upstream's path prefix. An application on the Docker host
(`host.docker.internal`, which nginx reads from /etc/hosts when it starts) may come up after
the gateway too: 502, then 200; without the hosts entry nginx refuses to start, and says why."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mindscape_ops.services.spec import container_specs

from .render_support import deploy
from .test_alert_delivery_engine import bridge_gateway
from .test_gateway_engine import LABELS, engine, get, network, platform_with, start_gateway  # noqa: F401 (fixture)
from .tls_support import gateway_conf

pytestmark = pytest.mark.engine

# The application: nginx answering with the request URI it received (percent-encoding kept).
APP_CONF = """
pid /tmp/nginx.pid;
events {}
http {
    server {
        listen 8000;
        location / {
            default_type text/plain;
            return 200 "got $request_uri";
        }
    }
}
"""
PATH = "/orders/a%2Fb/%7Ex?q=1&next=%2Fhome&q=2"


def test_the_gateway_starts_before_its_upstream_and_finds_it_later(engine, tmp_path: Path) -> None:  # noqa: F811
    client, image = engine
    net = network(engine, "late")
    platform = platform_with(tmp_path, "http://app:8000/api", {"mode": "plain"}, {"enabled": False})
    gateway, port = start_gateway(engine, platform, tmp_path, net, "late")
    started = gateway.attrs["State"]["StartedAt"]

    assert get(port, "/healthz")[0] == 200
    assert get(port, PATH)[0] == 502  # no container named app yet: nothing resolves it

    conf = tmp_path / "app.conf"
    conf.write_text(APP_CONF)
    client.containers.run(
        image,
        command=["nginx", "-g", "daemon off;"],
        name=f"{net.name}-app",
        detach=True,
        labels=net.attrs["Labels"],
        network=net.name,
        volumes={str(conf): {"bind": "/etc/nginx/nginx.conf", "mode": "ro"}},
    )
    client.networks.get(net.id).disconnect(f"{net.name}-app")
    client.networks.get(net.id).connect(f"{net.name}-app", aliases=["app"])

    deadline = time.monotonic() + 60  # the gateway keeps a failed lookup for its resolver's valid=10s
    while True:
        status, _, body = get(port, PATH)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    assert body.decode() == f"got /api{PATH}"
    gateway.reload()
    assert gateway.attrs["State"]["StartedAt"] == started and gateway.attrs["RestartCount"] == 0
    assert "reload" not in gateway.logs().decode(errors="replace").lower()


class Application(BaseHTTPRequestHandler):
    """The application on the host: answers with the request URI it received."""

    def do_GET(self) -> None:
        body = f"got {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_an_application_on_the_docker_host_may_come_up_after_the_gateway(engine, tmp_path: Path) -> None:  # noqa: F811
    client, _ = engine
    host = bridge_gateway(client)  # where host.docker.internal leads from a container
    with socket.socket() as probe:  # a free port on that address, for the application to come
        probe.bind((host, 0))
        app_port = probe.getsockname()[1]
    net = network(engine, "host")
    upstream = f"http://host.docker.internal:{app_port}/api"
    platform = platform_with(tmp_path, upstream, {"mode": "plain"}, {"enabled": False})
    conf = gateway_conf(platform)
    assert f"server host.docker.internal:{app_port};" in conf and "resolver " not in conf  # read at start
    gateway, port = start_gateway(engine, platform, tmp_path, net, "host")
    started = gateway.attrs["State"]["StartedAt"]
    assert get(port, "/healthz")[0] == 200
    assert get(port, PATH)[0] == 502  # nothing listens on the host yet

    server = ThreadingHTTPServer((host, app_port), Application)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = get(port, PATH)  # one server in its upstream block: never marked down
        assert status == 200, body
        assert body.decode() == f"got /api{PATH}"
    finally:
        server.shutdown()
        server.server_close()
    gateway.reload()
    assert gateway.attrs["State"]["StartedAt"] == started and gateway.attrs["RestartCount"] == 0


def test_without_the_hosts_entry_nginx_refuses_to_start_and_says_why(engine, tmp_path: Path) -> None:  # noqa: F811
    """What `up` and the compose export always add (extra_hosts) is what the config needs."""
    client, image = engine
    platform = platform_with(tmp_path, "http://host.docker.internal:8000", {"mode": "plain"}, {"enabled": False})
    spec = container_specs(platform)["gateway"]
    assert spec.reach_host
    conf = tmp_path / deploy(platform, "gateway/nginx.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(gateway_conf(platform))
    net = network(engine, "nohosts")
    container = client.containers.run(
        image,
        command=list(spec.command),
        name=f"{net.name}-gateway",
        detach=True,
        labels=LABELS,
        network=net.name,
        volumes={str(conf): {"bind": "/etc/nginx/nginx.conf", "mode": "ro"}},
    )
    assert container.wait(timeout=30)["StatusCode"] != 0
    assert "host not found in upstream" in container.logs().decode(errors="replace")
