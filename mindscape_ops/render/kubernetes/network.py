"""NetworkPolicies: everything in the namespace is denied, then each service's pods get the
edges the platform uses, from the registry: who connects to whom (depends_on, talks_to),
Prometheus to everything it scrapes and to Alertmanager, the exporters to their targets, the
gateway from anywhere to its upstream, the application's pods (by label) to the databases and
the cache, the ops Jobs to what they operate on, and every pod to the cluster's DNS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mindscape_ops.render.kubernetes.monitoring import stood_in_for
from mindscape_ops.render.kubernetes.names import dns, labels, selector
from mindscape_ops.services.definition import url_port

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.spec import ContainerSpec

OPS = "ops"  # the component label of the migrate/check Jobs and the backup CronJob
POD_EXEC = "pod-exec"  # the component label of the CronJobs that exec a command in a service's pod
# where a pod reaches the Kubernetes API: the `kubernetes` Service's port, and the API server's
# own (what most network plugins see once the Service's address is translated)
API_PORTS = (443, 6443)
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def edges(platform: Platform, specs: dict[str, ContainerSpec]) -> set[tuple[str, str, int]]:
    """(from service, to service, port) for every connection between platform services."""
    from mindscape_ops.services.registry import BY_NAME

    found: set[tuple[str, str, int]] = set()
    for name in specs:
        service = BY_NAME[name]
        for peer in (*service.depends_on, *service.kubernetes.talks_to(platform)):
            if peer in specs:
                found.add((name, peer, specs[peer].container_port))
        for peer, port in service.kubernetes.talks_to_ports(platform):
            if peer in specs:
                found.add((name, peer, port))
    for scraper in (name for name in specs if BY_NAME[name].kubernetes.scrape_config):
        for name in specs:
            metrics = BY_NAME[name].metrics
            if metrics and name != scraper:
                found.add((scraper, name, metrics.port))
    return found


def udp_edges(specs: dict[str, ContainerSpec]) -> set[tuple[str, str, int]]:
    """(from service, to service, port) for datagrams: the gateway's request lines to gateway_exporter."""
    from mindscape_ops.services.registry import BY_NAME

    return {
        (sender, name, port)
        for name in specs
        for sender in BY_NAME[name].kubernetes.udp_senders
        if sender in specs
        for port in BY_NAME[name].kubernetes.udp_ports
    }


def outside_egress(platform: Platform, name: str) -> list[dict[str, Any]]:
    """Ports a service reaches outside the platform, at any address (KubeShape.outside_ports):
    the gateway's upstream, Prometheus' application targets, Alertmanager's receivers, Grafana's plugins."""
    from mindscape_ops.services.registry import BY_NAME

    ports = BY_NAME[name].kubernetes.outside_ports(platform)
    return [{"protocol": "TCP", "port": port} for port in sorted(ports)]


def policies(platform: Platform, specs: dict[str, ContainerSpec], ops_targets: dict[str, int]) -> list[dict]:
    from mindscape_ops.services.registry import BY_NAME

    clients = platform.kubernetes.network_policies.client_labels
    found = {(*edge, "TCP") for edge in edges(platform, specs)} | {(*edge, "UDP") for edge in udp_edges(specs)}
    objects = [_policy(platform, "default-deny", "platform", {}, [], [])]
    operator_pods = _operator_pods() if platform.kubernetes.prometheus_operator else None
    for name, spec in specs.items():
        shape = BY_NAME[name].kubernetes
        ingress = [
            {"from": [{"podSelector": {"matchLabels": selector(platform, src)}}], "ports": [_tcp(port, proto)]}
            for src, dst, port, proto in sorted(found)
            if dst == name
        ]
        main = [_tcp(port) for port in (spec.container_port, *sorted(spec.extra_ports))]
        if shape.public:
            ingress.append({"ports": main})
        if shape.clients:
            peer = {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(clients)}}
            ingress.append({"from": [peer], "ports": main})
        metrics = BY_NAME[name].metrics
        if metrics and operator_pods:  # the operator's Prometheus, wherever it runs
            ingress.append({"from": [operator_pods], "ports": [_tcp(metrics.port)]})
        if name in ops_targets:
            ops = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": OPS}}}
            ingress.append({"from": [ops], "ports": [_tcp(ops_targets[name])]})
        egress = [
            {"to": [{"podSelector": {"matchLabels": selector(platform, dst)}}], "ports": [_tcp(port, proto)]}
            for src, dst, port, proto in sorted(found)
            if src == name
        ]
        outside = outside_egress(platform, name)
        if outside:
            egress.append({"ports": outside})
        egress.append({"to": [DNS_PEER], "ports": DNS_PORTS})
        objects.append(_policy(platform, dns(name), name, selector(platform, name), ingress, egress))
    return objects


def ops_policy(platform: Platform, ops_targets: dict[str, int], needs_s3: bool) -> dict:
    """The Jobs reach what they operate on, DNS, and (backups) S3 over HTTPS."""
    egress = [
        {"to": [{"podSelector": {"matchLabels": selector(platform, name)}}], "ports": [_tcp(port)]}
        for name, port in sorted(ops_targets.items())
    ]
    if needs_s3:
        s3 = platform.backups.s3
        egress.append({"ports": [_tcp(url_port(s3.endpoint_url) if s3 and s3.endpoint_url else 443)]})
    egress.append({"to": [DNS_PEER], "ports": DNS_PORTS})
    match = {"app.kubernetes.io/component": OPS, "app.kubernetes.io/part-of": platform.project}
    return _policy(platform, OPS, OPS, match, [], egress)


def _operator_pods() -> dict[str, Any] | None:
    """The pods of a Prometheus the Prometheus Operator runs, in any namespace."""
    replaced = stood_in_for()
    if replaced is None:
        return None
    return {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(replaced[1].pod_labels)}}


def _tcp(port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"protocol": protocol, "port": port}


def _policy(platform: Platform, name: str, service: str, match: dict, ingress: list, egress: list) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": labels(platform, service, "network-policy")},
        "spec": {
            "podSelector": {"matchLabels": match} if match else {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def pod_exec_policy(platform: Platform) -> dict:
    """The pod-exec CronJobs reach the Kubernetes API only (by KUBERNETES_SERVICE_HOST, no DNS):
    the exec itself goes through the API server to the kubelet, no edge to the service's pod."""
    egress = [{"ports": [_tcp(port) for port in API_PORTS]}]
    match = {"app.kubernetes.io/component": POD_EXEC, "app.kubernetes.io/part-of": platform.project}
    return _policy(platform, POD_EXEC, POD_EXEC, match, [], egress)
