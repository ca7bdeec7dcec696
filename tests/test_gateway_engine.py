"""The gateway's TLS modes, live: the rendered nginx.conf in the real gateway container
(mindscape-local/gateway), started with the mounts, command and healthcheck of its ContainerSpec,
its port published on 127.0.0.1. Behind a trusted proxy each client has its own rate-limit bucket
and nobody else can pick one; terminating TLS it serves HTTPS with every header and redirects
plain HTTP; a token in a query string reaches neither log; an https upstream is verified."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.services.gateway import expected_headers, header_problems
from mindscape_ops.services.spec import container_specs

from . import render_support
from .conftest import remove_project, run_cli, unique_project
from .render_support import deploy, full_data, platform_from
from .test_render_gateway import free_port
from .tls_support import issue

pytestmark = pytest.mark.engine
this_family_only = render_support.this_family_only

RUN = uuid.uuid4().hex[:8]
LABELS = {"io.mindscape.test": "1", "io.mindscape.test.run": RUN}
SECRET = "secret123"
UPSTREAM_DOWN = "http://127.0.0.1:9"  # nothing listens there in the container: every request gets 502


@pytest.fixture(scope="module")
def engine(docker_client, local_images):
    yield docker_client, local_images["gateway"]
    for container in docker_client.containers.list(all=True, filters={"label": f"io.mindscape.test.run={RUN}"}):
        container.remove(force=True, v=True)
    for network in docker_client.networks.list(filters={"label": f"io.mindscape.test.run={RUN}"}):
        network.remove()


def network(engine, name: str):
    client, _ = engine
    return client.networks.create(f"ms-gw-{RUN}-{name}", labels=LABELS)


def platform_with(root: Path, upstream: str, tls: dict, rate: dict | None = None):
    data = full_data()
    data["services"]["gateway"]["upstream"] = upstream
    data["security"]["tls"] = tls
    data["security"]["rate_limit"] = rate or {"requests_per_second": 1, "burst": 0}
    return platform_from(root, data)


def start_gateway(engine, platform, root: Path, net, name: str, hosts_entry: bool = True):
    """The gateway as `up` makes it: its spec's command, mounts (nginx.conf, its scripts and the
    TLS files), host.docker.internal entry (unless `hosts_entry` is false) and healthcheck (every
    second here); (container, published port)."""
    client, image = engine
    spec = container_specs(platform)["gateway"]
    files = render_platform(platform)
    for mount in spec.mounts:
        if mount.source in files:  # the rendered ones: nginx.conf, upstream.js
            (root / mount.source).parent.mkdir(parents=True, exist_ok=True)
            (root / mount.source).write_text(files[mount.source])
    volumes = {
        (m.source if m.host else str(root / m.source)): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
        for m in spec.mounts
    }
    container = client.containers.run(
        image,
        command=list(spec.command),
        name=f"ms-gw-{RUN}-{name}",
        detach=True,
        labels=LABELS,
        network=net.name,
        ports={"8080/tcp": ("127.0.0.1", None)},
        volumes=volumes,
        healthcheck={"test": list(spec.healthcheck), "interval": 10**9, "timeout": 3 * 10**9, "retries": 3},
        extra_hosts={"host.docker.internal": "host-gateway"} if spec.reach_host and hosts_entry else None,
    )
    deadline = time.monotonic() + 30
    while True:
        container.reload()
        ports = container.ports.get("8080/tcp")
        if ports:
            port = int(ports[0]["HostPort"])
            try:
                if get(port, "/healthz")[0] == 200:  # plain HTTP answers /healthz in every mode
                    return container, port
            except OSError:
                pass
        if container.status in ("exited", "dead") or time.monotonic() > deadline:
            pytest.fail(f"gateway did not start:\n{container.logs().decode(errors='replace')}")
        time.sleep(0.1)


def get(port: int, path: str, headers: dict | None = None, context: ssl.SSLContext | None = None):
    """(status, headers, body) of one request, HTTPS when a context is given."""
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def access_log(container, count: int) -> list[dict]:
    """The JSON lines of the access log (stdout), once there are `count` of them."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(x) for x in container.logs(stderr=False).decode().splitlines() if x.startswith("{")]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


# -- behind a TLS proxy -------------------------------------------------------------------


def test_behind_a_proxy_each_client_has_its_own_bucket_and_nobody_else_picks_one(engine, tmp_path: Path) -> None:
    net = network(engine, "proxy")
    proxy = net.attrs["IPAM"]["Config"][0]["Gateway"]  # requests from the host arrive from here
    platform = platform_with(tmp_path, UPSTREAM_DOWN, {"mode": "proxy", "trusted_proxies": [proxy]})
    gateway, port = start_gateway(engine, platform, tmp_path, net, "proxy")

    def via_proxy(forwarded_for: str | None) -> int:
        return get(port, "/api/x", {"X-Forwarded-For": forwarded_for} if forwarded_for else {})[0]

    # 1 request/s, no burst: a client's second request at once is refused, another client's is not
    statuses = [
        via_proxy("203.0.113.1"),
        via_proxy("203.0.113.1"),
        via_proxy("203.0.113.2"),
        via_proxy("198.51.100.9, 203.0.113.2"),  # a client's own X-Forwarded-For, which the proxy appended to
        via_proxy(None),  # the proxy's own request: its own bucket
    ]
    assert statuses == [502, 429, 502, 429, 502]

    # a client not behind a trusted proxy: its X-Forwarded-For is ignored, whatever it says
    client, image = engine
    other = client.containers.run(
        image, command=["sleep", "120"], name=f"ms-gw-{RUN}-client", detach=True, labels=LABELS, network=net.name
    )
    url = f"http://{gateway.name}:8080/api/x"
    curl = "curl -s -o /dev/null -w '%{http_code} ' -H 'X-Forwarded-For: CLIENT' " + url
    both = f"{curl.replace('CLIENT', '203.0.113.50')}; {curl.replace('CLIENT', '203.0.113.51')}"
    result = other.exec_run(["sh", "-c", both])  # at once: within the same second
    assert result.output.decode().split() == ["502", "429"]
    other.reload()
    other_address = other.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]

    lines = access_log(gateway, 7)
    # counted, not in order: nginx's workers write the log when each request ends, and one
    # worker's line can reach the container's log before another's for an earlier request
    assert Counter(line["remote_addr"] for line in lines) == {
        "203.0.113.1": 2,
        "203.0.113.2": 2,
        proxy: 1,
        other_address: 2,
    }
    # the scheme too is believed from the proxy only: HSTS goes to its HTTPS clients
    assert "Strict-Transport-Security" in get(port, "/healthz", {"X-Forwarded-Proto": "https"})[1]
    assert "Strict-Transport-Security" not in get(port, "/healthz")[1]
    hsts = other.exec_run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-H", "X-Forwarded-Proto: https", url])
    assert b"strict-transport-security" not in hsts.output.lower()


# -- terminating TLS ----------------------------------------------------------------------


def test_terminating_tls_serves_https_with_every_header_and_redirects_plain_http(engine, tmp_path: Path) -> None:
    site = issue(tmp_path / "tls", "site", ["localhost", "127.0.0.1"])
    tls = {"mode": "terminate", "certificate": "tls/site.pem", "key": str(site.key)}  # relative and absolute
    platform = platform_with(tmp_path, UPSTREAM_DOWN, tls)
    gateway, port = start_gateway(engine, platform, tmp_path, network(engine, "tls"), "tls")
    trusting = ssl.create_default_context(cafile=str(site.certificate))  # verifies name and chain

    status, headers, body = get(port, "/healthz", context=trusting)
    assert (status, body) == (200, b"ok\n")
    wanted = expected_headers(platform.security)
    assert len(wanted) == 9 and header_problems(wanted, headers) == []
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"

    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=trusting)
    conn.connect()
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()
    old = ssl.create_default_context(cafile=str(site.certificate))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    old.set_ciphers("ECDHE-ECDSA-AES128-SHA")  # CBC, no AEAD: not offered
    with pytest.raises(ssl.SSLError):
        get(port, "/healthz", context=old)

    status, headers, _ = get(port, f"/api/x?token={SECRET}")  # plain HTTP on the TLS port
    assert status == 301 and headers["Location"] == f"https://127.0.0.1:{port}/api/x?token={SECRET}"
    assert "Strict-Transport-Security" not in headers
    assert get(port, "/healthz")[0] == 200

    deadline = time.monotonic() + 15  # Docker's healthcheck (plain /healthz) passes in this mode too
    while gateway.reload() or gateway.attrs["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, gateway.attrs["State"]["Health"]
        time.sleep(0.2)


def test_a_token_in_the_query_string_reaches_neither_log(engine, tmp_path: Path) -> None:
    """A failing upstream (502, an `error` in nginx's error log) and a refused request (429, a
    `warn`), each with ?token=...: the access log has them by path and status, without the token;
    nginx's error log, which quotes the request line, stays quiet at `crit`. With it at `warn`,
    the very same requests put the token in the log: the test can see a leak."""
    site = issue(tmp_path / "tls", "site", ["localhost", "127.0.0.1"])
    tls = {"mode": "terminate", "certificate": "tls/site.pem", "key": "tls/site.key"}
    platform = platform_with(tmp_path, UPSTREAM_DOWN, tls)
    gateway, port = start_gateway(engine, platform, tmp_path, network(engine, "logs"), "logs")
    trusting = ssl.create_default_context(cafile=str(site.certificate))
    referer = {"Referer": f"https://app.example.com/page?token={SECRET}"}

    assert [get(port, f"/api/x?token={SECRET}", referer, trusting)[0] for _ in range(2)] == [502, 429]
    lines = access_log(gateway, 2)
    assert sorted((line["uri"], line["status"], line["referer"]) for line in lines) == [  # any order, as above
        ("/api/x", 429, "https://app.example.com/page"),
        ("/api/x", 502, "https://app.example.com/page"),
    ]
    time.sleep(0.5)  # anything nginx still had to write
    assert SECRET not in gateway.logs(stdout=True, stderr=True).decode()

    conf = tmp_path / deploy(platform, "gateway/nginx.conf")
    conf.write_text(conf.read_text().replace("error_log /dev/stderr crit;", "error_log /dev/stderr warn;"))
    assert gateway.exec_run(["nginx", "-s", "reload"]).exit_code == 0
    time.sleep(1.5)  # the new workers, and a fresh second for the rate limit
    get(port, f"/api/x?token={SECRET}", context=trusting)
    deadline = time.monotonic() + 10
    while SECRET not in gateway.logs(stdout=False, stderr=True).decode():
        assert time.monotonic() < deadline, "at warn, the error log should have quoted the request line"
        time.sleep(0.1)


# -- an https upstream ----------------------------------------------------------------------


UPSTREAM_CONF = """
pid /tmp/upstream.pid;
events {}
http {
    server {
        listen 8443 ssl;
        ssl_certificate /tls/upstream.pem;
        ssl_certificate_key /tls/upstream.key;
        location / { return 200 "upstream ok\\n"; }
    }
}
"""


def test_an_https_upstream_is_verified(engine, tmp_path: Path) -> None:
    """Its certificate, for its name, signed by `upstream_ca`: proxied. Signed by another CA: 502."""
    client, image = engine
    net = network(engine, "upstream")
    name = f"ms-gw-{RUN}-upstream"
    ca = issue(tmp_path / "ca", "ca", ["mindscape test CA"])
    issue(tmp_path / "up", "upstream", [name], ca=ca)
    (tmp_path / "up" / "nginx.conf").write_text(UPSTREAM_CONF)
    client.containers.run(
        image,
        command=["nginx", "-c", "/tls/nginx.conf", "-g", "daemon off;"],
        name=name,
        detach=True,
        labels=LABELS,
        network=net.name,
        volumes={str(tmp_path / "up"): {"bind": "/tls", "mode": "ro"}},
    )
    other_ca = issue(tmp_path / "other", "ca", ["another CA"])
    results = {}
    for label, trusted in (("right", ca), ("other", other_ca)):
        root = tmp_path / label
        (root / "ca.pem").parent.mkdir(parents=True, exist_ok=True)
        (root / "ca.pem").write_bytes(trusted.certificate.read_bytes())
        platform = platform_with(root, f"https://{name}:8443", {"upstream_ca": "ca.pem"}, {"enabled": False})
        gateway, port = start_gateway(engine, platform, root, net, f"gw-{label}")
        deadline = time.monotonic() + 10
        while (result := get(port, "/"))[0] == 502 and label == "right" and time.monotonic() < deadline:
            time.sleep(0.2)  # the upstream container may still be starting
        results[label] = result[0], result[2]
    assert results == {"right": (200, b"upstream ok\n"), "other": (502, results["other"][1])}


# -- through the CLI --------------------------------------------------------------------------


def test_up_and_check_a_gateway_that_terminates_tls(engine, tmp_path: Path) -> None:
    """`up` mounts the certificate and key, publishes the redirect port and knows the gateway
    ready (its probe and Docker's healthcheck use the plain /healthz); `check`'s security gates
    speak HTTPS to it."""
    client, image = engine
    project = unique_project("gwtls")
    site = issue(tmp_path / "tls", "site", ["localhost", "127.0.0.1"])
    https_port, http_port = free_port(), free_port()
    tls = {"mode": "terminate", "certificate": "tls/site.pem", "key": "tls/site.key", "redirect_port": http_port}
    platform = {
        "version": 1,
        "project": project,
        "services": {"gateway": {"image": image, "port": https_port, "upstream": UPSTREAM_DOWN}},
        "security": {
            "tls": tls,
            "rate_limit": {"requests_per_second": 5, "burst": 5},
        },
    }
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform))
    try:
        result = run_cli("up", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        result = run_cli("check", "--only", "security", "--json", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        gates = {row["id"]: row for row in json.loads(result.stdout)}
        assert gates["security.headers"]["message"] == "9 security headers present with their configured values"
        for gate in ("security.cors", "security.rate_limit", "security.healthz"):
            assert gates[gate]["status"] == "pass", gates[gate]
        status, headers, _ = get(http_port, f"/api/x?token={SECRET}")
        assert status == 301 and headers["Location"] == f"https://127.0.0.1:{https_port}/api/x?token={SECRET}"
        assert get(http_port, "/healthz")[0] == 200
        time.sleep(1)  # past the rate limit's second
        trusting = ssl.create_default_context(cafile=str(site.certificate))
        assert get(https_port, "/api/x", context=trusting)[0] == 502  # where the redirect leads: HTTPS
    finally:
        remove_project(client, project)
    (tmp_path / "tls" / "site.key").unlink()
    result = run_cli("up", cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "security.tls.key: tls/site.key is not a file" in result.stderr
    assert not client.containers.list(all=True, filters={"label": f"io.mindscape.project={project}"})
