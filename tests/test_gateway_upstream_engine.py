"""The gateway looks its upstream up per request, live: started while the application's name
does not resolve it answers 502 (and /healthz 200); once the application comes up under that
name it answers 200, without a reload, and the application gets the path and query string as
the client sent them, after the upstream's path prefix. An application on the Docker host
(`host.docker.internal`, which the gateway reads from its /etc/hosts per request) may come up
after the gateway too: 502, then 200; and the gateway starts without the hosts entry at all,
answers 502, and follows the entry when it is written, changed or removed, without a restart."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mindscape_ops.services.spec import container_specs

from .test_alert_delivery_engine import bridge_gateway
from .test_gateway_engine import engine, get, network, platform_with, start_gateway  # noqa: F401 (fixture)
from .tls_support import gateway_conf, issue

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
    assert "js_set $mindscape_upstream_found" in conf and "server host.docker.internal" not in conf  # per request
    gateway, port = start_gateway(engine, platform, tmp_path, net, "host")
    started = gateway.attrs["State"]["StartedAt"]
    assert get(port, "/healthz")[0] == 200
    assert get(port, PATH)[0] == 502  # nothing listens on the host yet

    server = ThreadingHTTPServer((host, app_port), Application)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = get(port, PATH)  # the address is read per request: nothing is marked down
        assert status == 200, body
        assert body.decode() == f"got /api{PATH}"
    finally:
        server.shutdown()
        server.server_close()
    gateway.reload()
    assert gateway.attrs["State"]["StartedAt"] == started and gateway.attrs["RestartCount"] == 0


def hosts_entry(container, address: str | None) -> None:
    """Write the container's host.docker.internal line of /etc/hosts (None: remove it), as Docker
    does when it starts one: the gateway is not told."""
    keep = "grep -v 'host.docker.internal' /etc/hosts > /tmp/hosts.new || true"
    line = f"; echo '{address} host.docker.internal' >> /tmp/hosts.new" if address else ""
    result = container.exec_run(["sh", "-c", f"{keep}{line}; cat /tmp/hosts.new > /etc/hosts"], user="root")
    assert result.exit_code == 0, result.output


def eventually(port: int, status: int) -> tuple[int, bytes]:
    """GET PATH until it answers `status` (the gateway may use an address it read for 2s)."""
    deadline = time.monotonic() + 15
    while True:
        got, _, body = get(port, PATH)
        if got == status or time.monotonic() > deadline:
            return got, body
        time.sleep(0.2)


def test_without_the_hosts_entry_the_gateway_starts_and_follows_the_entry(engine, tmp_path: Path) -> None:  # noqa: F811
    """Started without host.docker.internal in /etc/hosts (a container made otherwise than by
    `up` or the compose export), the gateway starts and answers 502; it reaches the application
    once the entry names the address where it listens, and 502 again once it is gone."""
    client, _ = engine
    host = bridge_gateway(client)
    with socket.socket() as probe:
        probe.bind((host, 0))
        app_port = probe.getsockname()[1]
    upstream = f"http://host.docker.internal:{app_port}/api"
    platform = platform_with(tmp_path, upstream, {"mode": "plain"}, {"enabled": False})
    assert container_specs(platform)["gateway"].reach_host
    gateway, port = start_gateway(engine, platform, tmp_path, network(engine, "nohosts"), "nohosts", hosts_entry=False)
    started = gateway.attrs["State"]["StartedAt"]
    assert b"host.docker.internal" not in gateway.exec_run(["cat", "/etc/hosts"]).output
    status, headers, missing = get(port, PATH)
    assert status == 502 and b"502 Bad Gateway" in missing, missing
    assert headers["X-Content-Type-Options"] == "nosniff"  # the gateway's headers on its own 502 too

    hosts_entry(gateway, host)  # the entry, nothing listening there yet: refused, 502
    status, refused = eventually(port, 502)
    assert status == 502 and refused == missing  # the same error page either way

    server = ThreadingHTTPServer((host, app_port), Application)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, body = eventually(port, 200)
        assert status == 200, body
        assert body.decode() == f"got /api{PATH}"
        hosts_entry(gateway, "not-an-address")  # a line whose first field is no address: ignored, 502
        assert gateway.exec_run(["grep", "-c", "host.docker.internal", "/etc/hosts"]).output.strip() == b"1"
        assert eventually(port, 502)[0] == 502
        hosts_entry(gateway, host)
        assert eventually(port, 200)[0] == 200
        hosts_entry(gateway, None)  # the entry removed: 502 again, the application still up
        assert eventually(port, 502)[0] == 502
    finally:
        server.shutdown()
        server.server_close()
    gateway.reload()
    assert gateway.attrs["State"]["StartedAt"] == started and gateway.attrs["RestartCount"] == 0
    assert gateway.attrs["State"]["Status"] == "running"


def test_an_https_application_on_the_docker_host_is_verified_for_its_name(engine, tmp_path: Path) -> None:  # noqa: F811
    """proxy_pass gets the address from /etc/hosts; the certificate is still checked for
    host.docker.internal (proxy_ssl_name, sent as SNI): one for that name, signed by
    `upstream_ca`, is proxied; one for another name gets 502."""
    client, _ = engine
    host = bridge_gateway(client)
    ca = issue(tmp_path / "ca", "ca", ["mindscape test CA"])
    results = {}
    for label, names in (("right", ["host.docker.internal"]), ("other", ["elsewhere.example"])):
        issued = issue(tmp_path / label / "app", "app", names, ca=ca)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.certificate, issued.key)
        server = ThreadingHTTPServer((host, 0), Application)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            root = tmp_path / label
            (root / "ca.pem").write_bytes(ca.certificate.read_bytes())
            upstream = f"https://host.docker.internal:{server.server_address[1]}"
            platform = platform_with(root, upstream, {"upstream_ca": "ca.pem"}, {"enabled": False})
            _, port = start_gateway(engine, platform, root, network(engine, f"tls-{label}"), f"tls-{label}")
            status, _, body = get(port, "/x?y=1")
            results[label] = status, body if status == 200 else b""
        finally:
            server.shutdown()
            server.server_close()
    assert results == {"right": (200, b"got /x?y=1"), "other": (502, b"")}
