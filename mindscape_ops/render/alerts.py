"""The built-in alerts, in one place: Prometheus' rule file (prometheus/rules/services.yml) and
the runbook (docs/runbooks/alerts.md) are both rendered from this list, so every alert has a
runbook section and its `runbook_url` points at it. Pure: (platform) -> [AlertGroup].

A group is rendered only when the exporter its metrics come from is enabled: rules on metrics
nobody scrapes would never fire and only mislead. Expressions are ours, written with the
awesome-prometheus-alerts set as the list of what to cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

RUNBOOK = "alerts.md"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    service: str  # the `service` label: inhibition and routing group on it
    summary: str  # Prometheus templating ({{ $value }}) kept as is
    description: str
    runbook: tuple[str, ...]  # what to do, one markdown step each


@dataclass(frozen=True)
class AlertGroup:
    name: str
    alerts: tuple[Alert, ...]


def percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def number(value: float) -> str:
    return f"{value:g}"


def runbook_url(platform: Platform, anchor: str) -> str:
    """Where an alert's runbook section is read: on the web under monitoring.runbook_base_url,
    else its path in the repository."""
    base = platform.monitoring.runbook_base_url
    path = f"{platform.paths.runbooks}/{RUNBOOK}#{anchor.lower()}"
    return f"{base.rstrip('/')}/{path}" if base else path


def alert_groups(platform: Platform, scrape_jobs: list[str]) -> list[AlertGroup]:
    """The built-in groups this platform renders, each with its alerts."""
    from mindscape_ops.render import alert_catalogue as catalogue  # it builds on this module

    enabled = platform.services.enabled()
    t = platform.monitoring.thresholds
    groups = [_meta(platform, enabled, scrape_jobs)]
    if "postgres_exporter" in enabled:
        groups.append(catalogue.postgres(t))
    if "redis_exporter" in enabled:
        groups.append(catalogue.redis(t))
    if "pgbouncer_exporter" in enabled:
        groups.append(catalogue.pgbouncer(t))
    if "gateway_exporter" in enabled:
        groups.append(catalogue.gateway(t))
    if "victorialogs" in enabled:
        groups.append(catalogue.logs())
    groups.append(catalogue.node(t))
    if platform.backups.enabled and platform.backup_services and "node_exporter" in enabled:
        groups.append(catalogue.backups(platform))
    return [group for group in groups if group.alerts]


def _meta(platform: Platform, enabled: dict, scrape_jobs: list[str]) -> AlertGroup:
    alerts = []
    if platform.monitoring.watchdog.enabled and "alertmanager" in enabled:
        alerts.append(
            Alert(
                "Watchdog",
                "vector(1)",
                "0s",
                "info",
                "watchdog",  # its own service: no outage's alert inhibits it
                "Alerting works: this alert always fires",
                "The dead man's switch: it is sent to monitoring.watchdog every repeat_interval. When it stops "
                "arriving, Prometheus, Alertmanager or the path between them is broken.",
                (
                    "Nothing to do while it fires. Silence it only to test the dead man's switch.",
                    "When the switch pages that it stopped: `mindscape status`, then `mindscape logs prometheus` "
                    "and `mindscape logs alertmanager`.",
                ),
            )
        )
    for job in (j for j in scrape_jobs if j != "prometheus"):
        alerts.append(
            Alert(
                "InstanceDown",
                f'up{{job="{job}"}} == 0',
                "1m",
                "critical",
                job,
                "{{ $labels.job }} at {{ $labels.instance }} is down",
                "Prometheus has not been able to scrape {{ $labels.job }} at {{ $labels.instance }} for 1 minute.",
                (
                    "`mindscape status` shows whether the container runs and is ready.",
                    "`mindscape logs SERVICE --tail 200` says why it stopped; `mindscape up SERVICE` starts it.",
                ),
            )
        )
    alerts += [
        Alert(
            "PrometheusConfigReloadFailed",
            "prometheus_config_last_reload_successful == 0",
            "5m",
            "warning",
            "prometheus",
            "Prometheus could not load its configuration",
            "The last reload of prometheus.yml or a rule file failed; Prometheus runs on the previous one.",
            (
                "`mindscape logs prometheus --tail 50` names the file and the line.",
                "`mindscape render --check` finds hand edits; `promtool check config` checks prometheus.yml.",
            ),
        ),
        Alert(
            "PrometheusRuleEvaluationFailing",
            "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
            "10m",
            "warning",
            "prometheus",
            "Prometheus fails to evaluate rules in {{ $labels.rule_group }}",
            "Some alert rules cannot be evaluated, so those alerts cannot fire. Check the expressions in "
            "platform.yaml monitoring.rules.",
            ("`mindscape check --only monitoring` names the failing rule and its error.",),
        ),
    ]
    if "alertmanager" in enabled:
        alerts += [
            Alert(
                "AlertmanagerConfigReloadFailed",
                "alertmanager_config_last_reload_successful == 0",
                "5m",
                "warning",
                "alertmanager",
                "Alertmanager could not load its configuration",
                "The last reload of alertmanager.yml failed; Alertmanager runs on the previous one.",
                ("`mindscape logs alertmanager --tail 50` says why; `amtool check-config` checks the file.",),
            ),
            Alert(
                "AlertmanagerNotificationsFailing",
                "sum by (integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
                "15m",
                "warning",
                "alertmanager",
                "Alertmanager fails to send notifications through {{ $labels.integration }}",
                "Notifications are failing; check the receiver settings and the secret files in "
                ".mindscape/alertmanager.",
                (
                    "`mindscape logs alertmanager` shows the error of each failed send.",
                    "Set the receiver's variable or file again, then `mindscape up alertmanager`.",
                ),
            ),
        ]
    return AlertGroup("platform", tuple(alerts))
