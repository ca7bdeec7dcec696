"""Every rendered alert rule and every dashboard panel can fire or show data, live: after `up` of
the starter (`mindscape init`), examples/local (alone and with auth.yaml) and examples/full on the
local images, every metric name their rules and panels read (PromQL parsed by
tests/promql_support.py, Grafana's variables substituted) is one Prometheus has (`/api/v1/label/__name__/values`).

What cannot run here is left out by name, each with its reason (CANNOT_RUN, LEFT_OUT): the rules
and panels are rendered from the platform that runs, so nothing else is skipped."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.dashboard import overview
from mindscape_ops.render.starter import create_platform

from .conftest import EXAMPLES, remove_project, run_cli, unique_project
from .promql_support import metric_names, missing_names

pytestmark = pytest.mark.engine

CANNOT_RUN = {
    "grafana": "no local image recipe (mindscape_ops/images/recipes): it comes only from a registry, unreachable here",
    "jaeger": "its local image is a Go build of about 10 minutes (tests/test_jaeger_engine.py builds and runs it); "
    "it brings no rule or panel of its own",
}
LEFT_OUT = {
    "applications.yml": "the application's own metrics (monitoring.targets): no application runs here",
    "custom.yml": "the user's own rules (monitoring.rules) read the application's metrics",
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_copy(data: dict, project: str, images: dict[str, str]) -> dict:
    """The platform as it can run here: local images, `auto` ports, nothing reached off this machine."""
    data = json.loads(json.dumps(data))
    data["project"] = project
    services = {}
    for name, settings in (data.get("services") or {}).items():
        if name in CANNOT_RUN:
            continue
        settings = dict(settings or {})
        settings.update(image=images.get(name) or settings["image"], port="auto")
        if "admin_port" in settings:  # a fixed port: a free one (other tests run at the same time)
            settings["admin_port"] = free_port()
        settings.pop("bind", None)
        services[name] = settings
    data["services"] = services
    if "prometheus" in services:
        services["prometheus"].update(scrape_interval="2s", evaluation_interval="2s")
    backups = data.setdefault("backups", {})
    backups.pop("s3", None)  # S3 is not reachable here; the local copy writes the backup's time alike
    backups["local"] = {"dir": "backups"}
    if "database" in data:
        data["database"]["migrate_on_up"] = False  # its migrations folder is the user's
    return data


def promql_in(rendered: dict[str, str], platform) -> tuple[dict[str, list[str]], set[str]]:
    """('rule ALERT' / 'panel TITLE' -> the PromQL it runs; the application's metric names, read
    by the LEFT_OUT rule files, which the panels of the application's row read too)."""
    found: dict[str, list[str]] = {}
    application: set[str] = set()
    for rel, text in rendered.items():
        if "/prometheus/rules/" not in rel:
            continue
        for group in yaml.safe_load(text)["groups"]:
            for rule in group["rules"]:
                if Path(rel).name in LEFT_OUT:
                    application |= metric_names(rule["expr"])
                else:
                    found[f"rule {rule.get('alert') or rule.get('record')}"] = [rule["expr"]]
    for panel in overview(platform)["panels"]:
        for target in panel.get("targets", []):
            found.setdefault(f"panel {panel['title']}", []).append(target["expr"])
    return found, application


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:  # noqa: S310 - local
        return answer.read().decode()


def missing_metrics(
    directory: Path, wanted: dict[str, list[str]], application: set[str], timeout: float = 180
) -> dict[str, set[str]]:
    """What is still missing once Prometheus has had `timeout` to scrape everything (the
    application's metrics count as there: LEFT_OUT says why)."""
    port = json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]["prometheus"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            have = set(json.loads(get(port, "/api/v1/label/__name__/values"))["data"]) | application
        except (urllib.error.URLError, OSError):
            have = set()
        missing = {
            what: gap
            for what, exprs in wanted.items()
            if (gap := set().union(*(missing_names(e, have) for e in exprs)))
        }
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(3)


def exercise(directory: Path, platform) -> None:
    """What some metrics need before they exist: a backup made, a request through the gateway."""
    if platform.backups.enabled and platform.backup_services:
        done = run_cli("backup", "create", cwd=directory, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    ports = json.loads((directory / ".mindscape" / "state.json").read_text())["ports"]
    if "identity" in ports:  # a failed login, through the gateway: the login counters exist then
        flow = json.loads(get(ports["gateway"], "/_mindscape/identity/self-service/login/api"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['gateway']}/_mindscape/identity/self-service/login?flow={flow['id']}",
            data=json.dumps({"method": "password", "identifier": "nobody@example.com", "password": "wrong"}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 - 127.0.0.1 only
    if "gateway" in ports:
        for _ in range(3):
            # its upstream, the application, is not running here: the 502 is counted too
            with contextlib.suppress(urllib.error.URLError, OSError):
                get(ports["gateway"], "/")


def starter_data(tmp_path: Path) -> dict:
    create_platform(tmp_path / "starter" / "platform.yaml", name="starter", force=False, source=None)
    return yaml.safe_load((tmp_path / "starter" / "platform.yaml").read_text())


def auth_data(_: Path) -> dict:
    """examples/local with examples/local/auth.yaml over it (the identity service's alerts and row)."""
    data = yaml.safe_load((EXAMPLES / "local" / "platform.yaml").read_text())
    auth = yaml.safe_load((EXAMPLES / "local" / "auth.yaml").read_text())
    for name, settings in auth["services"].items():
        data["services"][name] = {**(data["services"].get(name) or {}), **settings}
    data["security"] = auth["security"]
    return data


SOURCES = {
    "auth": auth_data,
    "starter": starter_data,
    "local": lambda _: yaml.safe_load((EXAMPLES / "local" / "platform.yaml").read_text()),
    "full": lambda _: yaml.safe_load((EXAMPLES / "full" / "platform.yaml").read_text()),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_rule_and_panel_reads_metrics_prometheus_has(tmp_path: Path, docker_client, local_images, source: str):
    project = unique_project("mtr")
    data = running_copy(SOURCES[source](tmp_path), project, local_images)
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "platform.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    platform = load([directory / "platform.yaml"], env={}).platform
    wanted, application = promql_in(render_platform(platform), platform)
    assert any(what.startswith("rule ") for what in wanted) and any(what.startswith("panel ") for what in wanted)
    try:
        up = run_cli("up", cwd=directory, timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr
        exercise(directory, platform)
        missing = missing_metrics(directory, wanted, application)
        assert missing == {}, f"{source}: rules and panels on metrics nothing produces: {missing}"
    finally:
        remove_project(docker_client, project)
