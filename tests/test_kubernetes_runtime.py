"""What pods need to really run on a cluster, beyond validating: the gateway's syslog target is
a Service that takes UDP, a first start is not killed by liveness, the migrate Job outlasts
a fresh Postgres. Objects parsed back from the rendered YAML."""

from __future__ import annotations

import pytest

from mindscape_ops.render.kubernetes import cluster_warnings

from .kubernetes_support import base_objects, by_kind, full_data, platform_of, pod_specs


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    data = full_data()
    data["services"]["gateway"]["upstream"] = "http://api.shop.svc:8000"
    return platform_of(tmp_path_factory.mktemp("full"), data)


def _peers(rules: list[dict], side: str) -> set[tuple[str, str, int]]:
    return {
        (peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["protocol"], port["port"])
        for rule in rules
        for peer in rule.get(side, [])
        if "app.kubernetes.io/name" in peer.get("podSelector", {}).get("matchLabels", {})
        for port in rule["ports"]
    }


def test_the_gateway_sends_its_request_lines_to_the_exporters_service(full):
    objects = base_objects(full)
    nginx = by_kind(objects, "ConfigMap")["gateway-etc-nginx-nginx-conf"]["data"]["nginx.conf"]
    # the lines go to the gateway's own relay (an address: nothing to resolve at start), which
    # asks the cluster's DNS for the exporter's Service per line (`gateway_exporter` is no
    # Kubernetes name)
    assert "access_log syslog:server=127.0.0.1:5140," in nginx
    assert 'default "gateway-exporter:5140";' in nginx  # the overlays qualify it with their namespace
    assert "gateway_exporter:" not in nginx
    service = by_kind(objects, "Service")["gateway-exporter"]["spec"]["ports"]
    assert {"name": "udp-5140", "port": 5140, "targetPort": "udp-5140", "protocol": "UDP"} in service
    exporter = by_kind(objects, "Deployment")["gateway-exporter"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "udp-5140", "containerPort": 5140, "protocol": "UDP"} in exporter["ports"]
    assert "udp://0.0.0.0:5140" in exporter["args"]
    policies = by_kind(objects, "NetworkPolicy")
    assert ("gateway-exporter", "UDP", 5140) in _peers(policies["gateway"]["spec"]["egress"], "to")
    assert _peers(policies["gateway-exporter"]["spec"]["ingress"], "from") == {
        ("gateway", "UDP", 5140),
        ("prometheus", "TCP", 3903),
    }
    assert not [w for w in cluster_warnings(full) if "gateway_exporter" in w]


def test_without_the_exporter_no_syslog_and_no_udp(tmp_path):
    data = full_data()
    del data["services"]["gateway_exporter"]
    objects = base_objects(platform_of(tmp_path, data))
    assert "syslog:" not in by_kind(objects, "ConfigMap")["gateway-etc-nginx-nginx-conf"]["data"]["nginx.conf"]
    for policy in by_kind(objects, "NetworkPolicy").values():
        for rule in (*policy["spec"]["ingress"], *policy["spec"]["egress"]):
            assert all(port["protocol"] == "TCP" for port in rule["ports"] if port["port"] != 53)


def test_liveness_waits_for_a_first_start(full):
    for name, pod in pod_specs(base_objects(full)):
        for container in pod["containers"]:
            if "livenessProbe" not in container:  # the ops Jobs
                continue
            startup, live = container["startupProbe"], container["livenessProbe"]
            assert startup["tcpSocket"] == live["tcpSocket"] == {"port": container["ports"][0]["containerPort"]}
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, name


def test_the_migrate_job_outlasts_a_fresh_postgres(full):
    jobs = {o["metadata"]["labels"]["mindscape.io/ops"]: o for o in base_objects(full) if o["kind"] == "Job"}
    spec = jobs["migrate"]["spec"]
    # the Job controller waits 10 s, 20 s, 40 s ... (6 min at most) between failed pods
    waited = sum(min(10 * 2**n, 360) for n in range(spec["backoffLimit"]))
    assert waited >= 300 and waited < spec["activeDeadlineSeconds"]
    assert jobs["check"]["spec"]["backoffLimit"] == 2  # `check --only config` needs no database


def _any_port(rules: list[dict]) -> set[int]:
    return {port["port"] for rule in rules if "to" not in rule for port in rule["ports"]}


def test_grafana_reaches_its_datasources_and_the_application_its_trace_store(full):
    policies = by_kind(base_objects(full), "NetworkPolicy")
    grafana = _peers(policies["grafana"]["spec"]["egress"], "to")
    assert {("prometheus", "TCP", 9090), ("jaeger", "TCP", 16686), ("victorialogs", "TCP", 9428)} <= grafana
    assert ("grafana", "TCP", 16686) in _peers(policies["jaeger"]["spec"]["ingress"], "from")
    assert ("grafana", "TCP", 9428) in _peers(policies["victorialogs"]["spec"]["ingress"], "from")
    # the logs datasource plugin is downloaded when Grafana starts: without 443 it does not start
    assert 443 in _any_port(policies["grafana"]["spec"]["egress"])
    clients = [
        r for r in policies["jaeger"]["spec"]["ingress"] if r.get("from", [{}])[0].get("namespaceSelector") == {}
    ]
    assert {4317, 4318} <= {port["port"] for rule in clients for port in rule["ports"]}  # OTLP from the app


def test_grafana_without_the_log_store_reaches_nothing_outside(tmp_path):
    data = full_data()
    del data["services"]["victorialogs"]
    policies = by_kind(base_objects(platform_of(tmp_path, data)), "NetworkPolicy")
    assert _any_port(policies["grafana"]["spec"]["egress"]) == set()
    assert "victorialogs" not in {peer for peer, _, _ in _peers(policies["grafana"]["spec"]["egress"], "to")}


def test_the_external_secret_uses_the_api_the_operator_serves(tmp_path):
    data = full_data(secrets={"source": "external", "store": "vault"})
    (secret,) = [o for o in base_objects(platform_of(tmp_path, data)) if o["kind"] == "ExternalSecret"]
    assert secret["apiVersion"] == "external-secrets.io/v1"  # External Secrets Operator 0.17+ serves no v1beta1
    assert secret["spec"]["secretStoreRef"]["name"] == "vault"
