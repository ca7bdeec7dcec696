"""deploy/kubernetes/ as objects (parsed back from the rendered YAML, no golden files): the
workloads, ConfigMaps holding the same rendered configs, probes, resources, PodDisruptionBudgets,
NetworkPolicies, the secret's three sources, the Prometheus Operator switch, the ops Jobs; the
policies a cluster admin would check; and the round trip against the compose export."""

from __future__ import annotations

import re

import pytest
import yaml

from mindscape_ops.render.kubernetes import cluster_configs
from mindscape_ops.services.registry import BY_NAME, SERVICES
from mindscape_ops.services.spec import container_specs

from .conftest import EXAMPLES
from .kubernetes_support import (
    base_objects,
    by_kind,
    full_data,
    kube_files,
    minimal_data,
    platform_of,
    pod_specs,
    rendered,
)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    data = full_data(storage={"postgres": {"size": "50Gi", "storage_class": "fast-ssd"}})
    return platform_of(tmp_path_factory.mktemp("full"), data)


def test_every_registered_service_runs_in_its_workload(full):
    objects = base_objects(full)
    assert set(full.services.enabled()) == {s.name for s in SERVICES}  # the whole registry, on
    workloads = {
        o["metadata"]["name"]: o["kind"] for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    }
    assert workloads == {s.name.replace("_", "-"): s.kubernetes.workload for s in SERVICES}
    assert workloads["postgres"] == workloads["redis"] == "StatefulSet"
    claims = {n: o["spec"]["volumeClaimTemplates"][0]["spec"] for n, o in by_kind(objects, "StatefulSet").items()}
    assert claims["postgres"]["storageClassName"] == "fast-ssd"
    assert claims["postgres"]["resources"]["requests"]["storage"] == "50Gi"
    assert "storageClassName" not in claims["redis"]  # not set: the cluster's default class
    assert claims["redis"]["resources"]["requests"]["storage"] == "10Gi"
    services = by_kind(objects, "Service")
    assert set(services) == set(workloads)
    pdbs = by_kind(objects, "PodDisruptionBudget")
    assert set(pdbs) == {n for n, kind in workloads.items() if kind != "DaemonSet"}


def test_configmaps_hold_the_same_rendered_configs(full):
    """The same templates, rendered for the cluster: the gateway's nginx.conf names Services and
    the cluster's DNS server; every other config is the Docker path's file."""
    files = cluster_configs(full)
    docker_files = rendered(full)
    objects = base_objects(full)
    seen = set()
    for name, config in by_kind(objects, "ConfigMap").items():
        for key, text in config["data"].items():
            if key not in ("nginx.conf", "prometheus.yml"):  # prometheus.yml: below
                assert text in docker_files.values(), f"{name}/{key} differs from the Docker path's"
            matches = [path for path, body in files.items() if body == text]
            if key == "prometheus.yml":
                continue  # below: the same template, with the Services' names
            assert matches, f"{name}/{key} is no rendered file's text"
            seen |= set(matches)
    deploy = full.paths.deploy
    for rel in ("gateway/nginx.conf", "redis/redis.conf", "pgbouncer/pgbouncer.ini", "alertmanager/alertmanager.yml"):
        assert f"{deploy}/{rel}" in seen
    assert any(path.startswith(f"{deploy}/prometheus/rules/") for path in seen)
    prom = yaml.safe_load(by_kind(objects, "ConfigMap")["prometheus-etc-prometheus"]["data"]["prometheus.yml"])
    compose_prom = yaml.safe_load(files[f"{deploy}/prometheus/prometheus.yml"])
    assert [j["job_name"] for j in prom["scrape_configs"]] == [j["job_name"] for j in compose_prom["scrape_configs"]]
    services = set(by_kind(objects, "Service"))
    for job in prom["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host = target.rsplit(":", 1)[0]
            assert host in services or job["job_name"] not in BY_NAME, target


def test_policies_a_cluster_admin_checks(full):
    pods = pod_specs(base_objects(full))
    assert len(pods) >= len(SERVICES) + 3  # the services, migrate, check, backup
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            limits = container["resources"]["limits"]
            assert limits.get("cpu") and limits.get("memory"), name
            assert container["resources"]["requests"]["memory"], name
            image = container["image"]
            assert re.search(r":[^/:]+$", image) and not image.endswith(":latest"), image
            context = container["securityContext"]
            assert context["privileged"] is False and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            if context["readOnlyRootFilesystem"]:
                writable = [m for m in container.get("volumeMounts", []) if not m.get("readOnly", False)]
                volumes = {v["name"]: v for v in pod.get("volumes", [])}
                assert all(m["name"] == "data" or "emptyDir" in volumes[m["name"]] for m in writable), name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name


def test_resources_come_from_settings_else_the_service_module(tmp_path):
    chosen = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    platform = platform_of(tmp_path, full_data(resources={"postgres": chosen}))
    containers = {n: pod["containers"][0] for n, pod in pod_specs(base_objects(platform))}
    assert containers["postgres"]["resources"] == chosen
    shape = BY_NAME["redis"].kubernetes
    assert containers["redis"]["resources"]["limits"] == {"cpu": shape.cpu[1], "memory": shape.memory[1]}


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_round_trip_with_the_compose_export(full, name):
    """Same ports, env names, command and probes as deploy/compose.yaml for every service (a
    password file only its owner may read is a Secret reference instead)."""
    compose = yaml.safe_load(rendered(full)[f"{full.paths.deploy}/compose.yaml"])["services"][name]
    service, spec = BY_NAME[name], container_specs(full)[name]
    objects = base_objects(full)
    workload = next(
        o
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and o["metadata"]["name"] == name.replace("_", "-")
    )
    container = workload["spec"]["template"]["spec"]["containers"][0]
    compose_port = int(compose["ports"][0].rsplit(":", 1)[1])
    assert container["ports"][0]["containerPort"] == compose_port
    service_ports = by_kind(objects, "Service")[name.replace("_", "-")]["spec"]["ports"]
    assert service_ports[0]["port"] == compose_port
    assert container["image"] == compose["image"]
    # a variable naming a file only its owner may read (no such file in a pod) is the shape's
    # secret_env there (the pgbouncer exporter: PGPASSFILE in compose, PGPASSWORD by reference)
    owner_only = {m.target for m in spec.mounts if m.owner_only}
    names = {k for k, v in compose.get("environment", {}).items() if v not in owner_only}
    assert {e["name"] for e in container.get("env", [])} == names | set(service.kubernetes.secret_env)
    unescape = lambda text: text.replace("$$", "$")  # noqa: E731 - both formats double a literal $
    assert [unescape(a) for a in container.get("args", [])] == [unescape(a) for a in compose.get("command", [])]
    ready = container["readinessProbe"]
    if service.probe.http is not None:
        assert ready["httpGet"] == {"path": service.probe.http.path, "port": compose_port}
    elif "healthcheck" in compose:
        assert ready["exec"]["command"] == ["sh", "-c", unescape(compose["healthcheck"]["test"][1])]
    else:
        assert ready["tcpSocket"]["port"] == compose_port
    if "healthcheck" in compose:
        assert f"{ready['periodSeconds']}s" == compose["healthcheck"]["interval"]
        assert ready["failureThreshold"] == compose["healthcheck"]["retries"]
    assert container["livenessProbe"]["tcpSocket"]["port"] == compose_port
    assert spec.container_port == compose_port


def _rules(policy: dict, direction: str) -> list[tuple[str, int]]:
    """(peer, port) pairs: peer is a service name, 'any', 'clients', 'ops' or 'dns'."""
    found = []
    for rule in policy["spec"][direction]:
        peers = rule.get("from" if direction == "ingress" else "to") or [None]
        for peer in peers:
            if peer is None:
                who = "any"
            elif "namespaceSelector" in peer and peer["namespaceSelector"].get("matchLabels"):
                who = "dns"
            elif "namespaceSelector" in peer:
                who = "clients"
            else:
                labels = peer["podSelector"]["matchLabels"]
                who = labels.get("app.kubernetes.io/name") or labels.get("app.kubernetes.io/component")
            found += [(who, port["port"]) for port in rule["ports"]]
    return found


def test_network_policies_allow_only_the_platform_edges(full):
    policies = by_kind(base_objects(full), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["ingress"] == [] and deny["egress"] == []
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    ingress = {name: set(_rules(p, "ingress")) for name, p in policies.items()}
    egress = {name: set(_rules(p, "egress")) for name, p in policies.items()}
    assert ingress["gateway"] == {("any", 8080)}
    upstream = full.services.gateway.upstream
    upstream_port = int(upstream.rsplit(":", 1)[1].split("/")[0])
    # and the identity service, asked on its public port and extending sessions on its admin port
    identity = {("identity", 4433), ("identity", 4434)}
    assert egress["gateway"] == {("any", upstream_port), ("gateway-exporter", 5140), ("dns", 53), *identity}
    assert ingress["gateway-exporter"] == {("gateway", 5140), ("prometheus", 3903)}
    assert ("postgres", 5432) in egress["pgbouncer"]
    assert ingress["postgres"] >= {("pgbouncer", 5432), ("clients", 5432), ("ops", 5432)}
    connecting = {
        n.replace("_", "-") for n, s in BY_NAME.items() if "postgres" in (*s.depends_on, *s.kubernetes.talks_to(full))
    }
    assert {who for who, _ in ingress["postgres"]} == connecting | {"clients", "ops"}  # none else
    assert ("redis", 6379) in egress["redis-exporter"]
    for name, service in BY_NAME.items():
        if service.metrics and name != "prometheus":
            assert ("prometheus", service.metrics.port) in ingress[name.replace("_", "-")], name
            assert (name.replace("_", "-"), service.metrics.port) in egress["prometheus"], name
    assert ("alertmanager", 9093) in egress["prometheus"]
    for name, rules in egress.items():
        if name != "default-deny":
            assert ("dns", 53) in rules, name
    assert not ingress["grafana"] - {("prometheus", 3000)}  # no one else; people use port-forward


def test_no_network_policies_when_switched_off(tmp_path):
    platform = platform_of(tmp_path, full_data(network_policies={"enabled": False}))
    assert by_kind(base_objects(platform), "NetworkPolicy") == {}


def test_prometheus_operator_switch(tmp_path):
    platform = platform_of(tmp_path, full_data(prometheus_operator=True))
    objects = base_objects(platform)
    assert "prometheus" not in by_kind(objects, "Deployment")
    assert not [c for c in by_kind(objects, "ConfigMap") if c.startswith("prometheus")]
    monitors = by_kind(objects, "ServiceMonitor")
    metrics = {n.replace("_", "-") for n, s in BY_NAME.items() if s.metrics and n != "prometheus"}
    assert set(monitors) == metrics
    services = by_kind(objects, "Service")
    for name, monitor in monitors.items():
        port_names = {p["name"] for p in services[name]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"][0]["port"] in port_names
        job = services[name]["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job.replace("_", "-") == name  # the job name the rules select on
    for name, policy in by_kind(objects, "NetworkPolicy").items():
        if name in monitors:  # the operator's Prometheus may scrape it, from any namespace
            peers = [r["from"][0] for r in policy["spec"]["ingress"] if r.get("from")]
            assert {
                "namespaceSelector": {},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            } in peers
    (rule,) = by_kind(objects, "PrometheusRule").values()
    groups = []
    for path, text in sorted(rendered(platform).items()):
        if path.startswith(f"{platform.paths.deploy}/prometheus/rules/"):
            groups += yaml.safe_load(text)["groups"]
    assert rule["spec"]["groups"] == groups and groups


def _secret_refs(objects: list[dict]) -> set[str]:
    text = yaml.safe_dump(objects)
    return set(re.findall(r"secretName: (\S+)", text)) | set(
        re.findall(r"secretKeyRef:\n\s+key: \S+\n\s+name: (\S+)", text)
    )


@pytest.mark.parametrize("source", ["generate", "existing", "external"])
def test_secret_sources(tmp_path, source):
    platform = platform_of(tmp_path, full_data(secrets={"source": source, "name": "shop-pw", "key_prefix": "shop/"}))
    files = kube_files(platform)
    kustomization = yaml.safe_load(files[f"{platform.paths.deploy}/kubernetes/base/kustomization.yaml"])
    objects = base_objects(platform)
    assert _secret_refs(objects) == {"shop-pw"}
    generators = kustomization.get("secretGenerator", [])
    externals = by_kind(objects, "ExternalSecret")
    if source == "generate":
        (generator,) = generators
        assert generator["name"] == "shop-pw" and generator["envs"] == ["secrets.env"]
        assert "redis-users.acl=secret-files/redis-users.acl" in generator["files"]
        assert not externals
    elif source == "existing":
        assert not generators and not externals
    else:
        (external,) = externals.values()
        keys = {d["secretKey"] for d in external["spec"]["data"]}
        assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "redis-users.acl", "pgbouncer-userlist.txt"} <= keys
        assert all(d["remoteRef"]["key"] == f"shop/{d['secretKey']}" for d in external["spec"]["data"])
        assert external["spec"]["target"]["name"] == "shop-pw" and not generators
    assert "/base/secrets.env" in files[f"{platform.paths.deploy}/kubernetes/.gitignore"]


def test_overlays_set_namespace_and_replicas(full):
    files = kube_files(full)
    root = f"{full.paths.deploy}/kubernetes/overlays"
    for environment in ("development", "staging", "production"):
        kustomization = yaml.safe_load(files[f"{root}/{environment}/kustomization.yaml"])
        assert kustomization["namespace"] == f"{full.project}-{environment}"
        assert kustomization["resources"] == ["../../base", "namespace.yaml"]
        replicas = {r["name"]: r["count"] for r in kustomization.get("replicas", [])}
        assert replicas == ({"gateway": 2} if environment == "production" else {})


def test_every_file_is_marked_generated(full):
    for path, text in kube_files(full).items():
        assert text.startswith("# generated by mindscape from platform.yaml; do not edit"), path


def test_the_docker_path_never_loads_the_kubernetes_client():
    """The Kubernetes code is imported only for --target kubernetes: the CLI's modules, the no-op
    `up` and a render without a `kubernetes:` section load neither the client nor our renderer."""
    import subprocess
    import sys

    code = (
        "import sys, mindscape_ops.cli, mindscape_ops.cli.lifecycle, mindscape_ops.cli.project, "
        "mindscape_ops.provision.noop;"
        "from mindscape_ops.config.loader import load; from mindscape_ops.render.artifacts import render_platform;"
        "render_platform(load([sys.argv[1]], env={}).platform);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes' or 'render.kubernetes' in m))"
    )
    minimal = str(EXAMPLES / "minimal" / "platform.yaml")
    loaded = subprocess.run([sys.executable, "-c", code, minimal], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_addresses_only_docker_resolves_are_warned_about(tmp_path):
    from mindscape_ops.render.kubernetes import cluster_warnings

    data = full_data()
    data["services"]["gateway"]["upstream"] = "http://host.docker.internal:8000"
    data["monitoring"]["targets"] = [{"name": "api", "targets": ["host.docker.internal:8000"]}]
    data["services"]["prometheus"]["targets"] = []
    warnings = cluster_warnings(platform_of(tmp_path / "docker", data))  # each service's, in registry order
    assert len(warnings) == 3
    assert [w.split(" is on ")[0] for w in sorted(warnings)] == [
        "kubernetes: monitoring.receivers audit-hook",  # an alert sent nowhere
        "kubernetes: scrape target api",
        "kubernetes: services.gateway.upstream",
    ]
    assert all("is on host.docker.internal, which a cluster does not resolve" in w for w in warnings)
    data["services"]["gateway"]["upstream"] = "http://api.shop.svc:8000"
    data["monitoring"]["targets"] = [{"name": "api", "targets": ["api.shop.svc:8000"]}]
    data["monitoring"]["receivers"] = [r for r in data["monitoring"]["receivers"] if r["name"] != "audit-hook"]
    assert cluster_warnings(platform_of(tmp_path / "cluster", data)) == []
    data["kubernetes"]["prometheus_operator"] = True
    (warning,) = cluster_warnings(platform_of(tmp_path / "operator", data))
    assert "Grafana's datasource is prometheus:9090" in warning


def test_the_generators_input_follows_the_keys(tmp_path):
    """secrets.env holds the passwords, secret-files/ one file per derived key, owner-only; a key
    the platform no longer has leaves with it."""
    from mindscape_ops.render.kubernetes.secrets import SecretKeys, write_material

    (tmp_path / ".mindscape" / "redis").mkdir(parents=True)
    (tmp_path / ".mindscape" / "redis" / "users.acl").write_text("user default on #abc\n")
    base = tmp_path / "base"
    (base / "secret-files").mkdir(parents=True)
    (base / "secret-files" / "gone.txt").write_text("old")
    keys = SecretKeys(("REDIS_PASSWORD",), {"redis-users.acl": ".mindscape/redis/users.acl"})
    write_material(tmp_path, base, keys, {"REDIS_PASSWORD": "pw", "OTHER": "x"})
    assert (base / "secrets.env").read_text() == "REDIS_PASSWORD=pw\n"
    assert [p.name for p in (base / "secret-files").iterdir()] == ["redis-users.acl"]
    assert (base / "secret-files" / "redis-users.acl").read_text() == "user default on #abc\n"
    assert (base / "secrets.env").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "image", ["postgres", "postgres:latest", "registry.local:5000/pg", "registry.local:5000/pg:latest"]
)
def test_an_unpinned_image_is_refused_on_kubernetes(tmp_path, image):
    from mindscape_ops.errors import ConfigError

    data = minimal_data()
    data["services"]["postgres"] = {"image": image}
    with pytest.raises(ConfigError) as refused:
        platform_of(tmp_path, data)
    assert any("services.postgres.image" in problem and "not pinned" in problem for problem in refused.value.problems)
    data["services"]["postgres"]["image"] = "registry.local:5000/pg@sha256:" + "a" * 64
    platform_of(tmp_path, data)  # a digest pins it
    del data["kubernetes"]
    data["services"]["postgres"]["image"] = image
    platform_of(tmp_path, data)  # the Docker path keeps its own rules
