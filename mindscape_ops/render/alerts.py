"""The built-in alerts, in one list: Prometheus' rule file (prometheus/rules/services.yml) and
the runbook (docs/runbooks/alerts.md) are both rendered from it, so every alert has a runbook
section and its `runbook_url` points at it. Pure: (platform) -> [AlertGroup].

A service's group is its module's (`ServiceDef.alerts`), rendered only when it is enabled:
rules on metrics nobody scrapes would never fire and only mislead. The groups no one service
owns (the platform's: alerting itself; backups) are made of the parts enabled services bring
(`ServiceDef.shared_alerts`); the platform group's own part is every scrape job's InstanceDown.
Expressions are ours, written with the awesome-prometheus-alerts set as the list of what to cover.
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
PLATFORM = "platform"  # the first group: alerting itself, and whether each scrape job is up


def runbook_url(platform: Platform, anchor: str, base: str | None = None) -> str:
    """Where an alert's runbook section is read: under `base` (render/web_links.py: the
    setting, else the git remote's address), else its path in the repository."""
    path = f"{platform.paths.runbooks}/{RUNBOOK}#{anchor.lower()}"
    return f"{base.rstrip('/')}/{path}" if base else path


def alert_groups(platform: Platform, scrape_jobs: list[str]) -> list[AlertGroup]:
    """The built-in groups this platform renders, each with its alerts: the platform group,
    the services' own groups by rank, then the other shared groups."""
    enabled = platform.services.enabled()
    live = [service for service in SERVICES if service.name in enabled]
    own = [service.alerts(platform) for service in live if service.alerts]
    parts = [AlertGroup(PLATFORM, _instance_down(scrape_jobs))]
    parts += [part for service in live if service.shared_alerts for part in service.shared_alerts(platform)]
    shared = _merged(parts)
    groups = [shared.pop(PLATFORM), *sorted(own, key=lambda group: group.rank), *shared.values()]
    return [group for group in groups if group.alerts]


def _merged(parts: list[AlertGroup]) -> dict[str, AlertGroup]:
    """Pure: the parts of each group as one group (its alerts in the parts' rank order, the
    first part of a rank first), the groups in the order they first appear."""
    names = dict.fromkeys(part.name for part in parts)
    return {
        name: AlertGroup(
            name,
            tuple(alert for part in sorted(parts, key=lambda p: p.rank) if part.name == name for alert in part.alerts),
            min(part.rank for part in parts if part.name == name),
        )
        for name in names
    }


def _instance_down(scrape_jobs: list[str]) -> tuple[Alert, ...]:
    """One InstanceDown per scrape job, but for a service that cannot alert that it is down."""
    silent = {service.name for service in SERVICES if not service.alert_when_down}
    return tuple(
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
        for job in scrape_jobs
        if job not in silent
    )
