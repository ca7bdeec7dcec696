"""Which files a platform renders, from which template, and with what context. Pure:
(platform) -> {relative path: text}. Files about one service are listed in that service's
module (services/); the ones about the whole platform are listed here."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from pathlib import Path

from mindscape_ops import __version__
from mindscape_ops.config.models import Platform
from mindscape_ops.render.alerts import alert_groups, runbook_url
from mindscape_ops.render.ci import ci_context
from mindscape_ops.render.dashboard import overview
from mindscape_ops.render.jinja import render_template
from mindscape_ops.render.marker import with_marker
from mindscape_ops.render.site import Site, docker
from mindscape_ops.render.web_links import runbook_base
from mindscape_ops.services.definition import Artifact, deploy
from mindscape_ops.services.registry import SERVICES
from mindscape_ops.services.spec import HEALTHCHECK, LOG_OPTIONS, build_files, container_specs, required_secrets


def _workflow(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.workflows}/{rel}"


def _github(rel: str) -> Callable[[Platform], str]:
    """Beside the workflows' folder: `.github/<rel>` by default."""
    return lambda platform: posixpath.join(posixpath.dirname(platform.paths.workflows) or ".", rel)


def _runbook(rel: str) -> Callable[[Platform], str]:
    return lambda platform: f"{platform.paths.runbooks}/{rel}"


PLATFORM_ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("ci/ci.yml.j2", _workflow("ci.yml")),
    Artifact("ci/backup.yml.j2", _workflow("backup.yml"), lambda p: p.backups.enabled),
    Artifact("ci/deploy.yml.j2", _workflow("deploy.yml"), lambda p: p.ci.deploy.enabled),
    Artifact("ci/dependabot.yml.j2", _github("dependabot.yml"), lambda p: p.ci.dependabot.enabled),
    Artifact("ci/actionlint.yaml.j2", _github("actionlint.yaml"), lambda p: p.ci.deploy.enabled or p.backups.enabled),
    Artifact("security/policy.json.j2", deploy("security/policy.json")),
    Artifact("compose/compose.yaml.j2", deploy("compose.yaml")),
    Artifact("runbooks/backup-and-restore.md.j2", _runbook("backup-and-restore.md")),
    Artifact("runbooks/incident-response.md.j2", _runbook("incident-response.md")),
    Artifact("runbooks/daily-checks.md.j2", _runbook("daily-checks.md")),
)


def artifacts(platform: Platform) -> list[Artifact]:
    """The artifacts this platform renders: each enabled service's, in start order, then the
    platform's own."""
    enabled = platform.services.enabled()
    own = [a for service in SERVICES if service.name in enabled for a in service.artifacts]
    return [a for a in [*own, *PLATFORM_ARTIFACTS] if a.when(platform)]


def scrape_jobs(platform: Platform) -> dict[str, dict[str, str]]:
    """Prometheus job name -> target (`<service>:<port>`) and metrics path of every enabled
    service with metrics."""
    enabled = platform.services.enabled()
    return {
        service.name: {"target": f"{service.name}:{service.metrics.port}", "path": service.metrics.path}
        for service in SERVICES
        if service.metrics and service.name in enabled
    }


def init_steps(platform: Platform) -> dict[str, list[dict[str, object]]]:
    """Each enabled service's KubeShape.init_steps (what `up`'s before_start does; a pod's init
    containers on Kubernetes) as the compose export runs them: one-off services, in order,
    before the service. `own_image`: the service's image, with its container's user and mounts."""
    enabled = platform.services.enabled()
    found: dict[str, list[dict[str, object]]] = {}
    for service in SERVICES:
        if service.name not in enabled or not service.kubernetes.init_steps:
            continue
        found[service.name] = [
            {
                "name": step.name,
                "service": f"{service.name}-{step.name}",
                "image": step.image(platform) if step.image else None,
                "args": list(step.args(platform)),
                "environment": step.environment(platform),
                "secrets": dict(step.secrets),
            }
            for step in service.kubernetes.init_steps
        ]
    return found


def render_platform(platform: Platform, root: Path | None = None) -> dict[str, str]:
    """Every generated file's path and full text (marker included), in a stable order. `root`,
    the project folder, is where the workflows look for dependency files (none without it)."""
    rendered = render_files(platform, root)
    if platform.kubernetes is not None:  # deploy/kubernetes/, from the files rendered for a cluster
        from mindscape_ops.render.kubernetes import kubernetes_files

        rendered.update({path: with_marker(path, text) for path, text in kubernetes_files(platform, rendered).items()})
    return rendered


def render_files(platform: Platform, root: Path | None = None, site: Site | None = None) -> dict[str, str]:
    """The artifacts' files as they run at `site` (default: the platform's Docker network)."""
    enabled = platform.services.enabled()
    specs = container_specs(platform)
    base = runbook_base(platform.monitoring.runbook_base_url, root)  # absolute runbook links
    context = {
        "platform": platform,
        "services": enabled,
        "specs": specs,
        # where each service answers on the platform network, by service name
        "addresses": {name: f"{name}:{spec.container_port}" for name, spec in specs.items()},
        # what each service waits for: what it needs
        "depends_on": {s.name: [d for d in s.depends_on if d in enabled] for s in SERVICES if s.name in enabled},
        "scrape_jobs": scrape_jobs(platform),
        # the fields a log store keeps each row's project, service and container under
        "log_fields": next((s.log_fields for s in SERVICES if s.log_fields is not None), None),
        # the built-in alerts (rules and their runbook) and where each alert's runbook section is read
        "alert_groups": alert_groups(platform, list(scrape_jobs(platform))),
        "runbook_url": lambda anchor: runbook_url(platform, anchor, base),
        "grafana_dashboard": lambda: json.dumps(overview(platform), indent=2, ensure_ascii=False),
        "secret_keys": required_secrets(platform),
        "build_files": build_files(platform),  # service -> the build file of its derived image
        "init_steps": init_steps(platform),  # service -> the one-off commands run before it (compose)
        "paths": platform.paths,
        "healthcheck": HEALTHCHECK,
        "log_options": LOG_OPTIONS,
        "mindscape_version": __version__,
        "site": site or docker(platform),  # where the files run: names and the DNS server there
        **ci_context(platform, root),
    }
    rendered: dict[str, str] = {}
    for artifact in artifacts(platform):
        path = artifact.output(platform)
        rendered[path] = with_marker(path, render_template(artifact.template, path=path, **context))
    return rendered
