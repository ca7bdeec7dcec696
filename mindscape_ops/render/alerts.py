"""The built-in alerts, in one list: Prometheus' rule file (prometheus/rules/services.yml) and
the runbook (docs/runbooks/alerts.md) are both rendered from it, so every alert has a runbook
section and its `runbook_url` points at it. Pure: (platform) -> [AlertGroup].

A service's group is its module's (`ServiceDef.alerts`), rendered only when it is enabled:
rules on metrics nobody scrapes would never fire and only mislead. The platform's own groups
(alerting itself, the host, backups) are here and in alert_catalogue.py. Expressions are ours,
written with the awesome-prometheus-alerts set as the list of what to cover.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Alerts are pure data of the services' contract: a service module brings its own group.
from mindscape_ops.services.contract import Alert, AlertGroup, number, percent
from mindscape_ops.services.registry import SERVICES

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

__all__ = ["Alert", "AlertGroup", "alert_groups", "number", "percent", "runbook_url"]
RUNBOOK = "alerts.md"


def runbook_url(platform: Platform, anchor: str, base: str | None = None) -> str:
    """Where an alert's runbook section is read: under `base` (render/web_links.py: the
    setting, else the git remote's address), else its path in the repository."""
    path = f"{platform.paths.runbooks}/{RUNBOOK}#{anchor.lower()}"
    return f"{base.rstrip('/')}/{path}" if base else path


def alert_groups(platform: Platform, scrape_jobs: list[str]) -> list[AlertGroup]:
    """The built-in groups this platform renders, each with its alerts."""
    from mindscape_ops.render import alert_catalogue as catalogue  # it builds on this module

    enabled = platform.services.enabled()
    own = [service.alerts(platform) for service in SERVICES if service.alerts and service.name in enabled]
    groups = [_meta(platform, enabled, scrape_jobs), *sorted(own, key=lambda group: group.rank)]
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
