"""The gateway looks its upstream up per request, live: started while the application's name
does not resolve it answers 502 (and /healthz 200); once the application comes up under that
name it answers 200, without a reload, and the application gets the path and query string as
the client sent them, after the upstream's path prefix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .test_gateway_engine import engine, get, network, platform_with, start_gateway  # noqa: F401 (fixture)

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
