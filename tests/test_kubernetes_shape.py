"""render/kubernetes/ decides nothing by a service's name: what differs is in each service's
KubeShape, and moving a hook to another service moves what is rendered (issue #21)."""

from __future__ import annotations

import dataclasses

from mindscape_ops.render.kubernetes import base, cluster_warnings
from mindscape_ops.services import registry
from mindscape_ops.services.definition import OpsDatabase, ReplacedByOperator
from mindscape_ops.services.registry import SERVICES

from .kubernetes_support import by_kind, full_data, platform_of


def swap(monkeypatch, **shapes: dict) -> None:
    """The registry with these services' KubeShape fields replaced (service name -> fields)."""
    services = tuple(
        dataclasses.replace(s, kubernetes=dataclasses.replace(s.kubernetes, **shapes[s.name]))
        if s.name in shapes
        else s
        for s in registry.SERVICES
    )
    monkeypatch.setattr(registry, "SERVICES", services)
    monkeypatch.setattr(registry, "BY_NAME", {s.name: s for s in services})


def container(pod: dict) -> dict:
    (only,) = pod["spec"]["containers"]
    return only


def peers(rules: list[dict], side: str) -> set[tuple[str, int]]:
    """(app name or '*', port) of each peer a policy's rules name."""
    return {
        ((peer or {}).get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name", "*"), port["port"])
        for rule in rules
        for peer in rule.get(side) or [None]
        for port in rule["ports"]
    }


def test_each_shape_hook_is_held_by_one_service_at_most():
    assert len([s for s in SERVICES if s.kubernetes.replaced_by_operator]) <= 1
    assert len([s for s in SERVICES if s.kubernetes.ops_database]) <= 1
    for service in SERVICES:
        shape = service.kubernetes
        if shape.scrape_config:
            assert shape.scrape_config in service.artifacts, service.name  # rendered again, so rendered first
        if shape.ops_database:
            assert shape.ops_database.password in service.secrets, service.name  # a key the Secret has


def test_the_ops_jobs_reach_whichever_service_is_the_database(tmp_path, monkeypatch):
    platform = platform_of(tmp_path, full_data())
    elsewhere = OpsDatabase("REDIS_PASSWORD", lambda p, at: f"redis://:$(REDIS_PASSWORD)@{at}/0")
    swap(monkeypatch, postgres={"ops_database": None}, redis={"ops_database": elsewhere})
    built = base(platform, {})
    (migrate,) = [job for name, job in by_kind(built.objects, "Job").items() if name.startswith("migrate-")]
    env = {e["name"]: e for e in container(migrate["spec"]["template"])["env"]}
    assert env[platform.database.url_env]["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "REDIS_PASSWORD"
    assert "POSTGRES_PASSWORD" not in env and "REDIS_PASSWORD" in built.keys.values
    backup = by_kind(built.objects, "CronJob")["backup"]["spec"]["jobTemplate"]["spec"]["template"]
    assert container(backup)["args"] == ["backup", "create", "--service", "redis"]
    policies = by_kind(built.objects, "NetworkPolicy")
    assert ("redis", 6379) in peers(policies["ops"]["spec"]["egress"], "to")
    assert not [peer for peer in peers(policies["ops"]["spec"]["egress"], "to") if peer[0] == "postgres"]


def test_without_a_database_only_the_check_job_is_made(tmp_path, monkeypatch):
    platform = platform_of(tmp_path, full_data())
    swap(monkeypatch, postgres={"ops_database": None})
    built = base(platform, {})
    assert [name.split("-")[0] for name in by_kind(built.objects, "Job")] == ["check"]
    assert by_kind(built.objects, "CronJob") == {}


def test_outside_ports_hosts_and_notes_are_the_services_own(tmp_path, monkeypatch):
    platform = platform_of(tmp_path, full_data())
    swap(
        monkeypatch,
        memcached={
            "outside_ports": lambda p: {4242},
            "outside_hosts": lambda p: [("services.memcached.elsewhere", "host.docker.internal")],
            "cluster_notes": lambda p: ["kubernetes: a note of memcached's"],
        },
        gateway={"outside_ports": lambda p: set()},
    )
    policies = by_kind(base(platform, {}).objects, "NetworkPolicy")
    assert ("*", 4242) in peers(policies["memcached"]["spec"]["egress"], "to")
    assert ("*", 8000) not in peers(policies["gateway"]["spec"]["egress"], "to")  # its upstream's, given up
    warnings = cluster_warnings(platform)
    assert any(w.startswith("kubernetes: services.memcached.elsewhere is on host.docker.internal") for w in warnings)
    assert "kubernetes: a note of memcached's" in warnings


def test_what_the_operator_stands_in_for_comes_from_its_shape(tmp_path, monkeypatch):
    platform = platform_of(tmp_path, full_data(prometheus_operator=True))
    operator = ReplacedByOperator(interval=lambda p: "42s", rules="prometheus/rules/", pod_labels={"app": "theirs"})
    swap(monkeypatch, prometheus={"replaced_by_operator": operator})
    objects = base(platform, {}).objects
    monitors = by_kind(objects, "ServiceMonitor")
    assert monitors and {m["spec"]["endpoints"][0]["interval"] for m in monitors.values()} == {"42s"}
    ingress = by_kind(objects, "NetworkPolicy")["redis-exporter"]["spec"]["ingress"]
    assert any(
        peer.get("podSelector") == {"matchLabels": {"app": "theirs"}} for rule in ingress for peer in rule["from"]
    )
    # the operator stands in for nothing: our Prometheus runs, and scrapes every metrics port
    swap(monkeypatch, prometheus={"replaced_by_operator": None})
    objects = base(platform, {}).objects
    assert "prometheus" in by_kind(objects, "StatefulSet") and by_kind(objects, "ServiceMonitor") == {}
    assert ("prometheus", 9121) in peers(by_kind(objects, "NetworkPolicy")["redis-exporter"]["spec"]["ingress"], "from")


def test_a_scrape_target_with_two_addresses_on_the_docker_host_is_one_warning(tmp_path):
    data = full_data()
    data["monitoring"]["targets"] = [
        {"name": "api", "targets": ["host.docker.internal:8000", "host.docker.internal:8001"]}
    ]
    warnings = cluster_warnings(platform_of(tmp_path, data))
    assert len([w for w in warnings if w.startswith("kubernetes: scrape target api is on")]) == 1
