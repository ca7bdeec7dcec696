"""Monitoring on a cluster. With the Prometheus Operator (kubernetes.prometheus_operator):
a ServiceMonitor per service with metrics and one PrometheusRule holding the groups of the
SAME rendered rule files, instead of our Prometheus and its static scrape config. Without it:
our Prometheus, whose prometheus.yml is the same template rendered with the Services' names
(a Kubernetes name cannot hold the `_` of `postgres_exporter`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from mindscape_ops.render.kubernetes.names import dns, meta, selector

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform
    from mindscape_ops.services.definition import ReplacedByOperator
    from mindscape_ops.services.spec import ContainerSpec

JOB_LABEL = "mindscape.io/job"  # on each Service: its scrape job's name


def scrape_jobs(platform: Platform, specs: dict[str, ContainerSpec]) -> dict[str, dict[str, str]]:
    """The compose path's scrape jobs (job names kept: the alert rules select on them), each
    target at its Kubernetes Service."""
    from mindscape_ops.services.registry import BY_NAME

    jobs = {}
    for name in specs:
        metrics = BY_NAME[name].metrics
        if metrics:
            jobs[name] = {"target": f"{dns(name)}:{metrics.port}", "path": metrics.path}
    return jobs


def scrape_config(platform: Platform, specs: dict[str, ContainerSpec], template: str, path: str) -> str:
    """A scraper's config (KubeShape.scrape_config) with each target at its Service."""
    from mindscape_ops.render.jinja import render_template
    from mindscape_ops.render.marker import with_marker

    text = render_template(
        template,
        path=path,
        platform=platform,
        services=platform.services.enabled(),
        addresses={name: f"{dns(name)}:{spec.container_port}" for name, spec in specs.items()},
        scrape_jobs=scrape_jobs(platform, specs),
    )
    return with_marker(path, text)


def _selected(platform: Platform, metadata: dict[str, Any]) -> dict[str, Any]:
    """With the labels the operator's Prometheus selects its monitors and rules by."""
    metadata["labels"].update(platform.kubernetes.monitoring_labels)
    return metadata


def stood_in_for() -> tuple[str, ReplacedByOperator] | None:
    """The service the Prometheus Operator stands in for (KubeShape.replaced_by_operator), and how."""
    from mindscape_ops.services.registry import SERVICES

    for service in SERVICES:
        operator = service.kubernetes.replaced_by_operator
        if operator:
            return service.name, operator
    return None


def operator_objects(platform: Platform, specs: dict[str, ContainerSpec], rendered: dict[str, str]) -> list[dict]:
    from mindscape_ops.services.registry import BY_NAME

    replaced = stood_in_for()
    if replaced is None:
        return []
    replaced_name, operator = replaced
    objects: list[dict[str, Any]] = []
    interval = operator.interval(platform)
    for name, spec in specs.items():
        metrics = BY_NAME[name].metrics
        if not metrics or BY_NAME[name].kubernetes.replaced_by_operator:
            continue
        port = "main" if metrics.port == spec.container_port else "metrics"
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": _selected(platform, meta(platform, dns(name), name, "monitoring")),
                "spec": {
                    "selector": {"matchLabels": selector(platform, name)},
                    "jobLabel": JOB_LABEL,  # the job names the alert rules select on
                    "endpoints": [{"port": port, "path": metrics.path, "interval": interval}],
                },
            }
        )
    groups = []
    prefix = f"{platform.paths.deploy}/{operator.rules}"
    for path, text in sorted(rendered.items()):
        if path.startswith(prefix):
            groups += (yaml.safe_load(text) or {}).get("groups", [])
    if groups:
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": _selected(
                    platform, meta(platform, f"{dns(platform.project)}-rules", replaced_name, "monitoring")
                ),
                "spec": {"groups": groups},
            }
        )
    return objects
