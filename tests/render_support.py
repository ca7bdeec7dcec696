"""Shared helpers for the render tests of CI workflows, the gateway's nginx.conf, policy.json,
redis.conf, pgbouncer.ini, the compose export and the runbooks (test_render_ci.py,
test_render_gateway.py, test_render_configs.py): the platforms they render, the `rendered`
fixture over all of them, and the real tools that read the files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.config.models import Platform
from mindscape_ops.render import artifacts
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.jinja import render_template
from mindscape_ops.services.spec import HOST_NAME

from .conftest import EXAMPLES, need

FAMILY = ("ci/", "gateway/", "security/", "redis/", "pgbouncer/", "compose/", "runbooks/")
HOSTILE_CSP = """default-src 'self' "x"; script-src 'nonce-$abc' {{ y }} # z \\ ${dollar} end;"""
HOSTILE_PERMISSIONS = 'camera=(), geolocation=("https://a.example" self); $x #y {{ z }}'
HOSTILE_DIR = """src/it's "x" #1; $HOME {{ y }} & *a: [b]"""
HOSTILE_SETTING = "$user, public; #x {{ y }} ${z}"


@pytest.fixture(autouse=True)
def this_family_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render these artifacts alone: other families have their own tests, and a broken template
    there must not fail (or hide) these."""
    every = artifacts.artifacts
    monkeypatch.setattr(
        artifacts, "artifacts", lambda platform: [a for a in every(platform) if a.template.startswith(FAMILY)]
    )


# -- platforms ----------------------------------------------------------------------------


def platform_from(tmp_path: Path, data: dict) -> Platform:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load([path], env={}).platform


def full_data() -> dict:
    return yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text())


def everything_on(tmp_path: Path) -> Platform:
    """examples/full with the rest switched on: a DNS-named https upstream (resolved per request),
    a published-everywhere bind, @daily backups, a fractional duration."""
    data = full_data()
    data["services"]["gateway"].update(upstream="https://api.internal:8443/v1/", server_name="*.example.com")
    data["services"]["grafana"]["bind"] = "0.0.0.0"
    data["services"]["postgres"]["health"]["start_period"] = "1s500ms"
    data["security"]["limits"]["client_timeout"] = "1m30s"
    data["security"]["rate_limit"].update(status=503, burst=0)
    data["backups"]["schedule"] = "@daily"
    data["database"]["migrate_on_up"] = False
    return platform_from(tmp_path, data)


def switched_off(tmp_path: Path) -> Platform:
    """The gateway with every optional security feature off, and CI/backups trimmed."""
    data = full_data()
    data["services"]["gateway"]["upstream"] = "http://10.0.0.5:9000"
    data["security"].update(
        headers={"hsts": {"enabled": False}},
        cors={"allowed_origins": []},
        rate_limit={"enabled": False},
        audit_log={"enabled": False},
    )
    data["ci"].update(lint=False, security_scan=False)
    data["backups"] = {"enabled": False}
    return platform_from(tmp_path, data)


def literal(text: str) -> str:
    """platform.yaml interpolates ${VAR} as compose does; `$$` is a literal `$`."""
    return text.replace("$", "$$")


def hostile(tmp_path: Path) -> Platform:
    """Free-text values that would break a file if written unescaped."""
    data = full_data()
    data["security"]["headers"].update(
        content_security_policy=literal(HOSTILE_CSP), permissions_policy=literal(HOSTILE_PERMISSIONS)
    )
    data["services"]["postgres"]["settings"]["search_path"] = literal(HOSTILE_SETTING)
    return platform_from(tmp_path, data)


BUILDERS = {
    "minimal": lambda tmp: load([EXAMPLES / "minimal" / "platform.yaml"], env={}).platform,
    "full": lambda tmp: load([EXAMPLES / "full" / "platform.yaml"], env={}).platform,
    "local": lambda tmp: load([EXAMPLES / "local" / "platform.yaml"], env={}).platform,
    "everything": everything_on,
    "switched_off": switched_off,
    "hostile": hostile,
}


@pytest.fixture(params=list(BUILDERS))
def rendered(request, tmp_path: Path) -> tuple[Platform, Path, dict[str, str]]:
    platform = BUILDERS[request.param](tmp_path / "source")
    files = render_platform(platform)
    out = tmp_path / "project"
    for rel, text in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return platform, out, files


def deploy(platform: Platform, rel: str) -> str:
    return f"{platform.paths.deploy}/{rel}"


# -- tools --------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        need(f"{name} is not installed")
    return path


def run(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def nginx_prefix(prefix: Path) -> Path:
    """A prefix for this machine's nginx as Debian lays its own out: logs/, and modules/ where
    its module snippets (modules-enabled/*.conf, prefix-relative) find the modules."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    modules = prefix / "modules"
    if not modules.exists() and Path("/usr/lib/nginx/modules").is_dir():
        modules.symlink_to("/usr/lib/nginx/modules")
    return prefix


UPSTREAM_JS = "/etc/nginx/mindscape/upstream.js"  # the gateway's /etc/hosts lookup, as mounted


def hosts_lookup(conf: Path, directory: Path, hosts_file: Path | None = None) -> Path:
    """The gateway's nginx.conf as this machine's nginx reads it: when it looks its upstream up
    in /etc/hosts (deploy/gateway/upstream.js, rendered beside it, else rendered here), the
    script from `directory`, reading `hosts_file` if given. Other files: as they are."""
    text = conf.read_text()
    if UPSTREAM_JS not in text:
        return conf
    beside = conf.parent / "upstream.js"
    if beside.is_file():
        script = beside.read_text()
    else:
        gateway = SimpleNamespace(upstream_host=HOST_NAME)
        script = render_template("gateway/upstream.js.j2", services={"gateway": gateway})
    if hosts_file is not None:
        script = script.replace("var HOSTS_FILE = '/etc/hosts';", f"var HOSTS_FILE = '{hosts_file}';")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "upstream.js").write_text(script)
    checked = directory / "nginx-upstream-js.conf"
    checked.write_text(text.replace(UPSTREAM_JS, str(directory / "upstream.js")))
    return checked


def nginx_test(conf: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`nginx -t` as the gateway container sees the file, where no name resolves: a private mount
    namespace (the host's files untouched) whose /etc/hosts has only localhost (no
    host.docker.internal: the gateway reads that one per request) and whose DNS server is an
    address nothing answers on. Any name nginx would look up at start fails the test (the
    stream relay looks gateway_exporter up per line)."""
    prefix = nginx_prefix(tmp_path / "nginx-prefix")
    conf = hosts_lookup(conf, tmp_path / "nginx-scripts")
    command = [tool("nginx"), "-t", "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf)]
    if os.geteuid() != 0:
        return run(*command)
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")  # refused at once
    script = 'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
    return run(tool("unshare"), "--mount", "sh", "-c", script, str(hosts), str(resolv), *command)


@contextmanager
def local_nginx(conf_text: str, directory: Path, stdout=subprocess.DEVNULL) -> Iterator[int]:
    """The gateway's nginx.conf served by this machine's nginx on a free 127.0.0.1 port (only
    the listen ports and pid path changed: the request lines' relay too, on a free UDP port),
    access log to `stdout`; yields the port once /healthz answers."""
    import http.client
    import socket
    import time

    with socket.socket() as sock, socket.socket(type=socket.SOCK_DGRAM) as udp:
        sock.bind(("127.0.0.1", 0))
        udp.bind(("127.0.0.1", 0))
        port, relay = sock.getsockname()[1], udp.getsockname()[1]
    text = re.sub(r"listen 8080( ssl)? default_server;", rf"listen 127.0.0.1:{port}\1 default_server;", conf_text)
    text = text.replace("127.0.0.1:5140", f"127.0.0.1:{relay}")
    conf = directory / "nginx.conf"
    conf.write_text(text.replace("pid /tmp/nginx.pid;", f"pid {directory}/nginx.pid;"))
    nginx_prefix(directory)
    command = [tool("nginx"), "-e", "stderr", "-p", f"{directory}/", "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                connection.close()
            if process.poll() is not None:
                pytest.fail(f"nginx did not start: {process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("nginx did not answer /healthz within 10s")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _unescape(match: re.Match) -> str:
    return "$" if match.group(1) is None else match.group(1)


def nginx_headers(conf_text: str) -> dict[str, str]:
    """`add_header NAME VALUE always;` lines, VALUE unescaped the way nginx reads it."""
    found = {}
    pattern = r'^\s*add_header\s+(\S+)\s+("(?:[^"\\]|\\.)*"|\S+)\s+always;'
    for name, value in re.findall(pattern, conf_text, re.M):
        if value.startswith('"'):
            value = re.sub(r"\\(.)|\$\{dollar\}", _unescape, value[1:-1])
        found[name] = value
    return found
