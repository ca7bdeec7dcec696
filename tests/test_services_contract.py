"""The contract every registered service honours, checked over the whole registry: a new
service module is held to it without a line of test of its own."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from mindscape_ops.config.loader import load
from mindscape_ops.render.artifacts import render_platform
from mindscape_ops.render.marker import MARKER
from mindscape_ops.services.contract import GROUPS, PROBE_MEMBERS, Gate, Probe
from mindscape_ops.services.definition import Metrics, ServiceDef
from mindscape_ops.services.registry import BY_NAME, SERVICES
from mindscape_ops.services.spec import ContainerSpec, container_specs
from mindscape_ops.settings.base import Service

from .conftest import REPO

every_service = pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)


def with_dependencies(name: str) -> list[str]:
    found: list[str] = []
    for dependency in BY_NAME[name].depends_on:
        found += [d for d in with_dependencies(dependency) if d not in found]
    return [*found, name]


def platform_with(service: ServiceDef, tmp_path: Path, *others: str):
    """The smallest valid platform running `service` (and what it needs, and `others`)."""
    names = {n for name in (service.name, *others) for n in with_dependencies(name)}
    listed = "".join(f"  {s.name}: {{port: auto}}\n" for s in SERVICES if s.name in names)
    path = tmp_path / "platform.yaml"
    path.write_text(f"version: 1\nproject: contract\nservices:\n{listed}")
    return load([path], env={}).platform


def test_names_are_unique_and_dependencies_start_first():
    names = [service.name for service in SERVICES]
    assert len(names) == len(set(names)) == len(BY_NAME)
    for index, service in enumerate(SERVICES):
        assert set(service.depends_on) <= set(names[:index]), f"{service.name} starts before what it needs"


@every_service
def test_settings_default_to_an_official_image_and_a_port(service: ServiceDef):
    assert issubclass(service.settings, Service)
    defaults = service.settings()
    assert defaults.image and "mindscape-local" not in defaults.image
    assert isinstance(defaults.port, int) and 1 <= defaults.port <= 65535


@every_service
def test_validates_and_builds_a_container(service: ServiceDef, tmp_path):
    platform = platform_with(service, tmp_path)
    assert service.name in platform.services.enabled()
    spec = container_specs(platform)[service.name]
    assert isinstance(spec, ContainerSpec) and spec.name == f"contract-{service.name}"
    assert spec.container_port > 0 and spec.network == "contract"
    for secret in spec.secrets.values():
        assert secret in service.secrets or any(secret in BY_NAME[d].secrets for d in service.depends_on)


def unimplemented(probe: object) -> list[str]:
    """The members of the Probe protocol a probe lacks or only inherits from the protocol itself
    (whose bodies are `...`: a `check` that passes without looking)."""
    missing = []
    for member in PROBE_MEMBERS:
        found = next((vars(k)[member] for k in type(probe).__mro__ if member in vars(k)), None)
        if found is None or found is vars(Probe).get(member):
            missing.append(member)
    return missing


@every_service
def test_has_a_readiness_probe(service: ServiceDef):
    probe = service.probe
    assert isinstance(probe, Probe) and unimplemented(probe) == [], f"{service.name}: {unimplemented(probe)}"
    assert probe.describe(service.name)
    if probe.http is not None:
        assert probe.http.path.startswith("/")


def test_a_probe_that_does_not_implement_the_protocol_is_caught():
    class Inherits(Probe):  # the protocol's `check` would pass without looking
        def describe(self, service: str) -> str:
            return "nothing"

    class Lacks:
        def check(self, host, port, creds):
            pass

    assert unimplemented(Inherits()) == ["check", "load", "http"]
    assert unimplemented(Lacks()) == ["describe", "load", "http"]
    assert unimplemented(BY_NAME["postgres"].probe) == []


@every_service
def test_renders_its_files(service: ServiceDef, tmp_path):
    platform = platform_with(service, tmp_path)
    rendered = render_platform(platform)
    for artifact in service.artifacts:
        if artifact.when(platform):
            path = artifact.output(platform)
            assert path in rendered, f"{service.name} does not render {path}"
            assert MARKER in rendered[path].splitlines()[0] or path.endswith(".json")


@every_service
def test_is_in_the_compose_export(service: ServiceDef, tmp_path):
    platform = platform_with(service, tmp_path)
    compose = yaml.safe_load(render_platform(platform)[f"{platform.paths.deploy}/compose.yaml"])
    entry = compose["services"][service.name]
    assert entry["image"] == platform.services.enabled()[service.name].image
    assert entry["container_name"] == f"contract-{service.name}"


@every_service
def test_is_in_the_docs_reference(service: ServiceDef):
    reference = (REPO / "docs" / "platform-yaml.md").read_text()
    assert f"### `services.{service.name}`" in reference


@every_service
def test_is_scraped_when_it_has_metrics(service: ServiceDef, tmp_path):
    platform = platform_with(service, tmp_path, "prometheus")
    config = yaml.safe_load(render_platform(platform)[f"{platform.paths.deploy}/prometheus/prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    if service.metrics is None:
        assert service.name not in jobs
        return
    job = jobs[service.name]
    assert job["static_configs"] == [{"targets": [f"{service.name}:{service.metrics.port}"]}]
    assert job.get("metrics_path", "/metrics") == service.metrics.path


def metrics_problems(service: ServiceDef, platform) -> list[str]:
    """A metrics port that nothing in its container listens on: Prometheus would scrape a closed port."""
    if service.metrics is None:
        return []
    own, spec = service.container(platform), container_specs(platform)[service.name]
    served = {spec.container_port, *spec.extra_ports, *own.also_listens}
    return [] if service.metrics.port in served else [f"metrics port {service.metrics.port} is not one of {served}"]


def connects_to(service: ServiceDef, platform) -> set[str]:
    """The other services its container reaches by name (`redis:6379`, `redis://redis:6379`,
    `--memcached.address=memcached:11211`)."""
    spec = container_specs(platform)[service.name]
    text = " ".join([*spec.command, *spec.environment.values()])
    return {other for other in BY_NAME if other != service.name and re.search(rf"(^|[/@=\s]){other}:\d", text)}


def dependency_problems(service: ServiceDef, platform) -> list[str]:
    """A service it connects to that is neither in depends_on (started and ready first) nor an
    optional edge (KubeShape.talks_to, checked by its `problems` when chosen)."""
    allowed = {*service.depends_on, *service.kubernetes.talks_to(platform)}
    return [f"connects to {other} without depends_on" for other in sorted(connects_to(service, platform) - allowed)]


def gate_problems(service: ServiceDef) -> list[str]:
    """A gate whose group `mindscape check` does not know: --only/--skip could not name it."""
    return [
        f"{gate.id}: group {gate.group} is not one of {GROUPS}"
        for gate in (*service.gates, *service.platform_gates)
        if gate.group not in GROUPS
    ]


@every_service
def test_its_metrics_port_is_one_its_container_listens_on(service: ServiceDef, tmp_path):
    assert metrics_problems(service, platform_with(service, tmp_path)) == []


@every_service
def test_what_it_connects_to_is_in_its_depends_on(service: ServiceDef, tmp_path):
    assert dependency_problems(service, platform_with(service, tmp_path)) == []


@every_service
def test_its_gates_are_in_groups_check_knows(service: ServiceDef):
    assert gate_problems(service) == []


def test_the_contract_catches_a_wrong_metrics_port_a_missing_dependency_and_an_unknown_group(tmp_path):
    exporter = BY_NAME["redis_exporter"]
    platform = platform_with(exporter, tmp_path)
    assert connects_to(exporter, platform) == {"redis"}
    assert metrics_problems(dataclasses.replace(exporter, metrics=Metrics(9999)), platform) != []
    assert dependency_problems(dataclasses.replace(exporter, depends_on=()), platform) == [
        "connects to redis without depends_on"
    ]
    flagged = BY_NAME["memcached_exporter"]  # host:port after a flag's `=`
    assert dependency_problems(dataclasses.replace(flagged, depends_on=()), platform_with(flagged, tmp_path)) == [
        "connects to memcached without depends_on"
    ]
    stray = dataclasses.replace(exporter, gates=(Gate("metrics.fresh", lambda ctx: "", "r"),))
    assert gate_problems(stray) == ["metrics.fresh: group metrics is not one of " + str(GROUPS)]


def test_changing_any_field_of_a_spec_changes_its_hash(tmp_path):
    platform = platform_with(BY_NAME["postgres"], tmp_path)
    spec = container_specs(platform)["postgres"].completed(5432, "sha256:1", {}, {"POSTGRES_PASSWORD": "pw"})
    for field in dataclasses.fields(spec):
        changed = dataclasses.replace(spec, **{field.name: _another(getattr(spec, field.name))})
        assert changed.config_hash() != spec.config_hash(), f"{field.name} is not part of the hash"
        assert changed.parts()[field.name] != spec.parts()[field.name]


def test_a_secret_value_never_reaches_the_hash_input_or_labels(tmp_path):
    from mindscape_ops.provision.convergence import Desired

    platform = platform_with(BY_NAME["pgbouncer"], tmp_path, "redis_exporter", "postgres_exporter")
    values = {"POSTGRES_PASSWORD": "s3cret-pg-value", "REDIS_PASSWORD": "s3cret-redis-value"}
    for spec in container_specs(platform).values():
        desired = Desired(spec.completed(1, "sha256:1", {}, values))
        shown = repr(desired.spec.hash_input()) + repr(desired.labels())
        assert "s3cret" not in shown
        other = Desired(spec.completed(1, "sha256:1", {}, {k: v + "!" for k, v in values.items()}))
        assert (other.config_hash != desired.config_hash) == bool(spec.secret_keys())


def _another(value):
    """A different value of the same shape."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "x"
    if isinstance(value, tuple):
        return (*value, value[0] if value else "x")
    if isinstance(value, dict):
        return {**value, "x": "y"}
    raise AssertionError(f"no other value for {value!r}")


def test_the_log_store_and_the_replicated_service_come_from_the_registry(tmp_path):
    from mindscape_ops.config.kubernetes import Kubernetes

    assert platform_with(BY_NAME["victorialogs"], tmp_path).services.log_store() == "victorialogs"
    assert platform_with(BY_NAME["redis"], tmp_path).services.log_store() is None
    assert Kubernetes().replicas == {"production": {"gateway": 2}}  # the public service, twice in production


def test_the_platform_database_comes_from_the_registry(tmp_path, monkeypatch):
    """One service is the database `migrate`, `check` and backups connect to; its name, enabled
    or not, is the one messages give."""
    from mindscape_ops.config import services as config_services

    assert [s.name for s in SERVICES if s.platform_database] == ["postgres"]
    assert platform_with(BY_NAME["redis"], tmp_path).services.database() == "postgres"
    moved = tuple(dataclasses.replace(s, platform_database=s.name == "redis") for s in SERVICES)
    monkeypatch.setattr(config_services, "SERVICES", moved)
    assert platform_with(BY_NAME["postgres"], tmp_path).services.database() == "redis"


def test_a_log_store_says_what_its_rows_call_project_service_and_container():
    """`logs` scopes its queries with the log store's fields: a log sink without them could not."""
    assert [s.name for s in SERVICES if s.log_sink is not None and s.log_fields is None] == []


def test_shared_alert_parts_merge_in_rank_order():
    from mindscape_ops.render.alerts import _merged
    from mindscape_ops.services.contract import Alert, AlertGroup

    def alert(name: str) -> Alert:
        return Alert(name, "vector(1)", "1m", "warning", "x", "s", "d", ())

    parts = [
        AlertGroup("platform", (alert("Down"),)),
        AlertGroup("platform", (alert("Watchdog"),), rank=-10),
        AlertGroup("backups", (alert("Old"),), rank=5),
        AlertGroup("platform", (alert("Reload"), alert("Eval")), rank=10),
    ]
    merged = _merged(parts)
    assert list(merged) == ["platform", "backups"]
    assert [a.name for a in merged["platform"].alerts] == ["Watchdog", "Down", "Reload", "Eval"]
    assert merged["platform"].rank == -10 and [a.name for a in merged["backups"].alerts] == ["Old"]


def test_the_platform_group_leads_and_the_backups_group_closes(tmp_path):
    """Alerting itself first (the Watchdog, every scrape job's InstanceDown but Prometheus', then
    Prometheus' and Alertmanager's own failures), the services' groups, the backups last."""
    from mindscape_ops.render.alerts import alert_groups
    from mindscape_ops.render.artifacts import scrape_jobs

    platform = platform_with(BY_NAME["postgres_exporter"], tmp_path, "alertmanager", "prometheus", "node_exporter")
    groups = alert_groups(platform, list(scrape_jobs(platform)))
    assert [g.name for g in groups][0] == "platform" and [g.name for g in groups][-1] == "backups"
    names = [(a.name, a.service) for a in groups[0].alerts]
    assert names[0] == ("Watchdog", "watchdog") and ("InstanceDown", "prometheus") not in names
    assert [n for n, _ in names[-4:]] == [
        "PrometheusConfigReloadFailed",
        "PrometheusRuleEvaluationFailing",
        "AlertmanagerConfigReloadFailed",
        "AlertmanagerNotificationsFailing",
    ]
    assert {s for n, s in names if n == "InstanceDown"} == {"alertmanager", "postgres_exporter", "node_exporter"}


@pytest.mark.parametrize(
    ("listed", "monitoring"),
    [
        (
            ("prometheus", "alertmanager", "grafana"),
            ["targets", "rules", "grafana", "receivers", "alertmanager"],
        ),
        (("postgres",), ["receivers", "alertmanager"]),  # they skip themselves
    ],
)
def test_platform_gates_run_whether_or_not_their_service_is_enabled(tmp_path, listed, monitoring):
    import types

    from mindscape_ops.check.gates import project_gates

    platform = platform_with(BY_NAME[listed[0]], tmp_path, *listed[1:])
    gates = project_gates(types.SimpleNamespace(platform=platform))
    assert [g.id for g in gates if g.group == "monitoring"] == [f"monitoring.{name}" for name in monitoring]
