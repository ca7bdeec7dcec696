"""Which files a platform renders, from which template, and with what context. Pure:
(platform) -> {relative path: text}. Adding an artifact is one line in ARTIFACTS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mindscape_ops import __version__
from mindscape_ops.config.models import Platform
from mindscape_ops.render.jinja import render_template
from mindscape_ops.render.marker import with_marker
from mindscape_ops.services.spec import HEALTHCHECK, LOG_OPTIONS, container_specs, required_secrets


@dataclass(frozen=True)
class Artifact:
    template: str  # under templates/
    output: Callable[[Platform], str]  # path relative to the project root
    when: Callable[[Platform], bool] = lambda platform: True


def _enabled(*services: str) -> Callable[[Platform], bool]:
    return lambda platform: all(s in platform.services.enabled() for s in services)


def _deploy(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.deploy}/{rel}"


def _workflow(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.workflows}/{rel}"


def _runbook(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.runbooks}/{rel}"


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("ci/ci.yml.j2", _workflow("ci.yml")),
    Artifact("ci/backup.yml.j2", _workflow("backup.yml"), lambda p: p.backups.enabled),
    Artifact("prometheus/prometheus.yml.j2", _deploy("prometheus/prometheus.yml"), _enabled("prometheus")),
    Artifact("prometheus/rules/services.yml.j2", _deploy("prometheus/rules/services.yml"), _enabled("prometheus")),
    Artifact(
        "prometheus/rules/applications.yml.j2",
        _deploy("prometheus/rules/applications.yml"),
        lambda p: "prometheus" in p.services.enabled() and bool(p.scrape_targets),
    ),
    Artifact(
        "prometheus/rules/custom.yml.j2",
        _deploy("prometheus/rules/custom.yml"),
        lambda p: "prometheus" in p.services.enabled() and bool(p.monitoring.rules),
    ),
    Artifact("alertmanager/alertmanager.yml.j2", _deploy("alertmanager/alertmanager.yml"), _enabled("alertmanager")),
    Artifact(
        "grafana/datasources.yml.j2",
        _deploy("grafana/provisioning/datasources/prometheus.yml"),
        _enabled("grafana", "prometheus"),
    ),
    Artifact(
        "grafana/dashboards.yml.j2", _deploy("grafana/provisioning/dashboards/mindscape.yml"), _enabled("grafana")
    ),
    Artifact(
        "grafana/platform-overview.json.j2", _deploy("grafana/dashboards/platform-overview.json"), _enabled("grafana")
    ),
    Artifact("gateway/nginx.conf.j2", _deploy("gateway/nginx.conf"), _enabled("gateway")),
    Artifact("security/policy.json.j2", _deploy("security/policy.json")),
    Artifact("redis/redis.conf.j2", _deploy("redis/redis.conf"), _enabled("redis")),
    Artifact("pgbouncer/pgbouncer.ini.j2", _deploy("pgbouncer/pgbouncer.ini"), _enabled("pgbouncer")),
    Artifact("compose/compose.yaml.j2", _deploy("compose.yaml")),
    Artifact("runbooks/backup-and-restore.md.j2", _runbook("backup-and-restore.md")),
    Artifact("runbooks/incident-response.md.j2", _runbook("incident-response.md")),
    Artifact("runbooks/daily-checks.md.j2", _runbook("daily-checks.md")),
)


def render_platform(platform: Platform) -> dict[str, str]:
    """Every generated file's path and full text (marker included), in a stable order."""
    context = {
        "platform": platform,
        "services": platform.services.enabled(),
        "specs": container_specs(platform),
        "secret_keys": required_secrets(platform),
        "paths": platform.paths,
        "healthcheck": HEALTHCHECK,
        "log_options": LOG_OPTIONS,
        "mindscape_version": __version__,
    }
    rendered: dict[str, str] = {}
    for artifact in ARTIFACTS:
        if artifact.when(platform):
            path = artifact.output(platform)
            rendered[path] = with_marker(path, render_template(artifact.template, path=path, **context))
    return rendered
