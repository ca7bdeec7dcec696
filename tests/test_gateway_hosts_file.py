"""The gateway's upstream on host.docker.internal, a name only the container's /etc/hosts has
(Docker writes it there through extra_hosts): read from that file per request by
deploy/gateway/upstream.js (nginx's JavaScript module), never at start. Rendered so; `nginx -t`
passes on a machine without the entry, where an upstream block naming it fails; the script
takes only a well-formed address given for exactly that name; a cluster gets no such script.
Live in a container: tests/test_gateway_upstream_engine.py."""

from __future__ import annotations

import getpass
import http.client
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.site import Site
from mindscape_ops.services.spec import container_specs

from .conftest import EXAMPLES
from .kubernetes_support import base_objects, by_kind, full_data, platform_of
from .render_support import deploy, hosts_lookup, nginx_prefix, nginx_test, tool

NGINX, SCRIPT = "gateway/nginx.conf", "gateway/upstream.js"


def docker_platform(tmp_path: Path, upstream: str):
    data = yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())
    data["services"]["gateway"]["upstream"] = upstream
    return platform_of(tmp_path, data)


def test_each_kind_of_host_is_found_its_own_way() -> None:
    docker, cluster = Site("docker", "127.0.0.11"), Site("kubernetes", "10.96.0.10")
    assert docker.lookup("host.docker.internal") == "hosts"
    assert docker.lookup("Host.Docker.Internal") == "hosts"
    assert docker.lookup("localhost") == "start"
    assert docker.lookup("10.1.2.3") == "start" and docker.lookup("[fd00::1]") == "start"
    assert docker.lookup("app") == "dns" and docker.lookup("api.example.com") == "dns"
    # a cluster has no such entry: asked of its DNS (502 while nothing answers), never at start
    assert cluster.lookup("host.docker.internal") == "dns"


def test_the_docker_gateway_reads_host_docker_internal_per_request(tmp_path: Path) -> None:
    platform = docker_platform(tmp_path, "http://host.docker.internal:8000/api")
    files = render_platform(platform)
    conf = files[deploy(platform, NGINX)]
    assert "upstream mindscape_app" not in conf and "server host.docker.internal" not in conf
    assert conf.count("load_module /usr/lib/nginx/modules/ngx_http_js_module.so;") == 1
    assert "js_import mindscape_upstream from /etc/nginx/mindscape/upstream.js;" in conf
    assert "js_set $mindscape_upstream_found mindscape_upstream.address;" in conf
    # what reaches proxy_pass: an address, or the name for Docker's DNS (no entry: files, then DNS)
    mapped = conf[conf.index("map $mindscape_upstream_found $mindscape_upstream_addr {") :].split("}\n", 1)[0]
    assert 'default "";' in mapped and '"[$mindscape_ip6]";' in mapped
    assert '"host.docker.internal" "host.docker.internal";' in mapped
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in conf
    assert 'if ($mindscape_upstream_addr = "") {\n                return 502;' in conf
    assert "proxy_pass http://$mindscape_upstream_addr:8000$mindscape_upstream_prefix$request_uri;" in conf
    assert "proxy_set_header Host $host;" in conf
    script = files[deploy(platform, SCRIPT)]
    assert 'var NAME = "host.docker.internal";' in script and "var HOSTS_FILE = '/etc/hosts';" in script
    mounts = {m.target: m for m in container_specs(platform)["gateway"].mounts}
    mount = mounts["/etc/nginx/mindscape/upstream.js"]
    assert mount.source == deploy(platform, SCRIPT) and mount.read_only and mount.docker_only


def test_an_https_upstream_on_the_host_keeps_its_name_for_tls(tmp_path: Path) -> None:
    platform = docker_platform(tmp_path, "https://host.docker.internal:8443")
    conf = render_platform(platform)[deploy(platform, NGINX)]
    assert "proxy_pass https://$mindscape_upstream_addr:8443$request_uri;" in conf
    # verified for the name, sent as SNI: not the address the script found
    for line in ("proxy_ssl_verify on;", "proxy_ssl_server_name on;", 'proxy_ssl_name "host.docker.internal";'):
        assert line in conf


def test_an_address_or_another_name_needs_no_script(tmp_path: Path) -> None:
    for index, upstream in enumerate(("http://10.1.2.3:9000", "http://api:8000", "http://localhost:8000")):
        platform = docker_platform(tmp_path / str(index), upstream)
        files = render_platform(platform)
        conf = files[deploy(platform, NGINX)]
        assert deploy(platform, SCRIPT) not in files and "mindscape_upstream_addr" not in conf, upstream
        assert "/etc/nginx/mindscape/upstream.js" not in {m.target for m in container_specs(platform)["gateway"].mounts}
        assert ("upstream mindscape_app" in conf) == (upstream != "http://api:8000"), upstream


def test_a_cluster_gets_no_hosts_file_script(tmp_path: Path) -> None:
    """The Docker upstream is host.docker.internal; in the cluster it is the application's
    Service: no script, no ConfigMap for it, no mount."""
    platform = platform_of(tmp_path, full_data())
    assert platform.services.gateway.upstream_host == "host.docker.internal"
    objects = base_objects(platform)
    assert not [name for name in by_kind(objects, "ConfigMap") if "upstream-js" in name]
    pod = by_kind(objects, "Deployment")["gateway"]["spec"]["template"]["spec"]
    targets = [m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])]
    assert "/etc/nginx/mindscape/upstream.js" not in targets and "/etc/nginx/nginx.conf" in targets
    conf = by_kind(objects, "ConfigMap")["gateway-etc-nginx-nginx-conf"]["data"]["nginx.conf"]
    assert "mindscape_upstream_addr" not in conf and 'set $mindscape_upstream_host "app";' in conf


# -- the real tools -------------------------------------------------------------------------


@pytest.mark.tools
@pytest.mark.parametrize("upstream", ["http://host.docker.internal:8000/api", "https://host.docker.internal:8443"])
def test_nginx_t_passes_without_the_hosts_entry(upstream: str, tmp_path: Path) -> None:
    """`nginx -t` of the rendered file (its script beside it, as render writes them) where
    /etc/hosts has no host.docker.internal; the upstream block it replaces fails there."""
    platform = docker_platform(tmp_path / "p", upstream)
    out = tmp_path / "out"
    for rel in (NGINX, SCRIPT):
        target = out / deploy(platform, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_platform(platform)[deploy(platform, rel)])
    conf = out / deploy(platform, NGINX)
    result = nginx_test(conf, tmp_path / "t")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # what nginx read at start before: refused here, so the check above is real
    block = "\n    upstream mindscape_old {\n        server host.docker.internal:8000;\n    }\n"
    text = conf.read_text().replace("\n    server {\n", block + "\n    server {\n", 1)
    old = tmp_path / "old.conf"
    old.write_text(text)
    result = nginx_test(old, tmp_path / "old")
    assert result.returncode != 0 and "host.docker.internal" in result.stderr, result.stderr


# What the script makes of /etc/hosts: (its text, the address it finds; "": none, so the name
# itself, for the DNS server).
HOSTS = [
    ("", ""),
    ("127.0.0.1 localhost\n", ""),
    ("172.17.0.1 host.docker.internal\n", "172.17.0.1"),
    ("127.0.0.1 localhost\n172.17.0.1\thost.docker.internal  # Docker's entry\n", "172.17.0.1"),
    ("10.0.0.9 gateway HOST.docker.internal\n", "10.0.0.9"),  # an alias, any case
    ("# 10.9.9.9 host.docker.internal\n", ""),  # a comment
    ("10.0.0.1 myhost.docker.internal host.docker.internal.evil\n", ""),  # other names
    ("fd00::1 host.docker.internal\n", "[fd00::1]"),
    ("fd00::1 host.docker.internal\n172.17.0.1 host.docker.internal\n", "172.17.0.1"),  # IPv4 first
    ("::ffff:10.1.2.3 host.docker.internal\n", ""),  # a dotted tail: not taken
    ("1:2:3:4:5:6:7:8 host.docker.internal\r\n", "[1:2:3:4:5:6:7:8]"),
    ("evil.example/x host.docker.internal\n", ""),  # not an address: never in proxy_pass
    ("10.0.0.1:80 host.docker.internal\n", ""),
    ("256.1.1.1 host.docker.internal\n", ""),
    ("10.1.1 host.docker.internal\n", ""),
    ("fe80::1%eth0 host.docker.internal\n", ""),  # a zone a URL cannot carry
    ("1::2::3 host.docker.internal\n", ""),
    ("1:2:3:4:5:6:7:8:9 host.docker.internal\n", ""),
    ("host.docker.internal\n10.0.0.2 host.docker.internal\n", "10.0.0.2"),  # a line with no address
    ("999.1.1.1 host.docker.internal\n10.0.0.3 host.docker.internal\n", "10.0.0.3"),
]


@pytest.mark.tools
def test_the_script_takes_only_an_address_for_exactly_that_name(tmp_path: Path) -> None:
    """The rendered script in this machine's nginx (njs), reading a hosts file of the test's."""
    platform = docker_platform(tmp_path / "p", "http://host.docker.internal:8000")
    beside = tmp_path / "rendered"
    beside.mkdir()
    (beside / "upstream.js").write_text(render_platform(platform)[deploy(platform, SCRIPT)])
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    (beside / "nginx.conf").write_text("js_import mindscape_upstream from /etc/nginx/mindscape/upstream.js;\n")
    include = hosts_lookup(beside / "nginx.conf", tmp_path / "scripts", hosts)
    script = tmp_path / "scripts" / "upstream.js"
    assert f"var HOSTS_FILE = '{hosts}';" in script.read_text()
    script.write_text(script.read_text().replace("var FRESH_MS = 2000;", "var FRESH_MS = 0;"))
    prefix = nginx_prefix(tmp_path / "prefix")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;\n"
        # the workers read the test's hosts file, in a folder only its owner may enter
        f"user {getpass.getuser()};\npid {prefix}/nginx.pid;\nerror_log stderr warn;\nevents {{}}\nhttp {{\n"
        f"    {include.read_text().strip()}\n"
        "    js_set $mindscape_upstream_addr mindscape_upstream.address;\n"
        f"    access_log off;\n    server {{\n        listen 127.0.0.1:{port};\n"
        '        location / { return 200 "[$mindscape_upstream_addr]"; }\n    }\n}\n'
    )
    command = [tool("nginx"), "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(port, process)
        for text, expected in HOSTS:
            hosts.write_text(text)
            assert ask(port) == f"[{expected or 'host.docker.internal'}]", text
        hosts.unlink()  # no file at all: no address
        assert ask(port) == "[host.docker.internal]"
    finally:
        process.terminate()
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ask(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            ask(port)
            return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"nginx did not start: {process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("nginx did not answer within 10s")
            time.sleep(0.05)
