"""`mindscape up --target kubernetes`: with no cluster, a one-line error and exit 3 before
anything is written; against an API server that answers as Kubernetes does (discovery, then
PATCH), every object goes out as a server-side apply (apply-patch content type, our field
manager, forced), `--dry-run=server` asks for dryRun=All, and no secret value is printed.
No real cluster runs here: the server below plays the API's part of the exchange."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.kubernetes import cluster_objects
from mindscape_ops.workspace.store import Workspace

from .conftest import run_cli
from .kubernetes_support import minimal_data

GROUPS = {
    "v1": {"namespaces": ("Namespace", False), "configmaps": ("ConfigMap", True), "secrets": ("Secret", True),
           "services": ("Service", True)},
    "apps/v1": {"deployments": ("Deployment", True), "statefulsets": ("StatefulSet", True),
                "daemonsets": ("DaemonSet", True)},
    "batch/v1": {"jobs": ("Job", True), "cronjobs": ("CronJob", True)},
    "policy/v1": {"poddisruptionbudgets": ("PodDisruptionBudget", True)},
    "networking.k8s.io/v1": {"networkpolicies": ("NetworkPolicy", True)},
}  # fmt: skip


class FakeApi(BaseHTTPRequestHandler):
    patches: list[dict] = []
    refuse: str | None = None  # a kind whose apply is answered 422, as an admission webhook might

    def log_message(self, *args) -> None:
        pass

    def _send(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/version":
            return self._send({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        if path == "/api":
            return self._send({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [
                {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in GROUPS if "/" in gv
            ]  # fmt: skip
            return self._send({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        if gv in GROUPS:
            resources = [
                {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                 "verbs": ["create", "get", "list", "patch", "delete"]}
                for name, (kind, namespaced) in GROUPS[gv].items()
            ]  # fmt: skip
            return self._send({"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
        self._send({"kind": "Status", "status": "Failure", "code": 404}, 404)

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = urlsplit(self.path)
        type(self).patches.append(
            {"path": parts.path, "query": parse_qs(parts.query), "type": self.headers["Content-Type"], "body": body}
        )
        if body["kind"] == type(self).refuse:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
                      "message": f"{body['kind']} is invalid: spec: forbidden by policy"}  # fmt: skip
            return self._send(status, 422)
        self._send(body)


@pytest.fixture
def api():
    FakeApi.patches, FakeApi.refuse = [], None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def kubeconfig(folder: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "current-context": "fake",
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "platform.yaml").write_text(yaml.safe_dump(minimal_data(secrets={"source": "generate"})))
    return folder


def up(project: Path, *args: str, config: Path) -> object:
    env = {"KUBECONFIG": str(config), "TMPDIR": str(project.parent)}  # the client caches discovery in TMPDIR
    return run_cli("up", "--target", "kubernetes", *args, cwd=project, env=env, timeout=120)


def test_no_cluster_is_a_one_line_error_and_exit_3(project):
    result = up(project, "--context", "prod", config=project.parent / "missing-kubeconfig")
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "no Kubernetes cluster for context prod" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (project / "deploy").exists()  # it failed before writing anything


def test_unreachable_api_is_exit_3(project):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = up(project, config=kubeconfig(project.parent, f"http://127.0.0.1:{port}"))
    assert result.returncode == 3, result.stderr
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_object_is_server_side_applied(project, api, dry_run):
    args = ["--context", "fake", *(["--dry-run=server"] if dry_run else [])]
    result = up(project, *args, config=kubeconfig(project.parent, api))
    assert result.returncode == 0, result.stderr
    platform = load([project / "platform.yaml"], env={}).platform
    secrets = Workspace(project).read_secrets()
    expected = cluster_objects(platform, project, secrets)
    assert [(p["body"]["kind"], p["body"]["metadata"]["name"]) for p in FakeApi.patches] == [
        (o["kind"], o["metadata"]["name"]) for o in expected
    ]
    for patch, obj in zip(FakeApi.patches, expected, strict=True):
        assert patch["type"] == "application/apply-patch+yaml"
        assert patch["query"]["fieldManager"] == ["mindscape"] and patch["query"]["force"] == ["true"]
        assert patch["query"].get("dryRun") == (["All"] if dry_run else None)
        assert patch["body"] == obj
        namespace = obj["metadata"].get("namespace")
        assert patch["path"].endswith(f"/{obj['metadata']['name']}")
        assert (f"/namespaces/{namespace}/" in patch["path"]) == bool(namespace)
    assert expected[0]["kind"] == "Namespace" and expected[0]["metadata"]["name"] == f"{platform.project}-development"
    assert expected[1]["kind"] == "Secret"  # before anything that reads it
    shown = result.stdout + result.stderr
    assert not [value for value in secrets.values() if value in shown]
    audit = (project / ".mindscape" / "audit.log").read_text()
    assert not [value for value in secrets.values() if value in audit]
    assert f"{len(expected)} object(s)" in result.stderr


def test_bad_usage_is_exit_2(project, tmp_path):
    assert run_cli("up", "--target", "swarm", cwd=project).returncode == 2
    assert run_cli("up", "--context", "x", cwd=project).returncode == 2  # --context without the target
    assert up(project, "--dry-run=client", config=tmp_path / "none").returncode == 2
    (project / "platform.yaml").write_text(
        yaml.safe_dump({k: v for k, v in minimal_data().items() if k != "kubernetes"})
    )
    result = run_cli("render", "--target", "kubernetes", cwd=project)
    assert result.returncode == 2 and "no `kubernetes:` section" in result.stderr


def test_a_refused_object_stops_up_with_exit_1(project, api):
    FakeApi.refuse = "Service"
    result = up(project, config=kubeconfig(project.parent, api))
    assert result.returncode == 1, result.stderr
    assert "Service/postgres: the API refused it (422)" in result.stderr and "forbidden by policy" in result.stderr
    assert FakeApi.patches[-1]["body"]["kind"] == "Service"  # nothing after it was sent


def test_a_kind_the_cluster_lacks_is_named(project, api):
    """The Prometheus Operator switch on a cluster without the operator: its kinds are unknown."""
    data = minimal_data(prometheus_operator=True)
    data["services"]["postgres_exporter"] = {}
    (project / "platform.yaml").write_text(yaml.safe_dump(data))
    result = up(project, config=kubeconfig(project.parent, api))
    assert result.returncode == 1, result.stderr
    assert "the cluster does not know ServiceMonitor (monitoring.coreos.com/v1)" in result.stderr
    assert FakeApi.patches == []  # looked up before anything was applied
