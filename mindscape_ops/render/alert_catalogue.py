"""The platform's built-in alert group that is no one service's, for `alerts.alert_groups`:
backups (the host's group is its exporter's, services/node_exporter.py).
Expressions are ours; awesome-prometheus-alerts was the list of what to cover."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindscape_ops.render.alerts import Alert, AlertGroup, number
from mindscape_ops.settings.schedule import backup_age_limit

if TYPE_CHECKING:
    from mindscape_ops.config.models import Platform

BACKUP_METRIC = "mindscape_backup_last_success_timestamp_seconds"


def _duration(seconds: float) -> str:
    """Prometheus' spelling of whole minutes or hours: 74h, 90m."""
    minutes = int(seconds // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def backups(platform: Platform) -> AlertGroup:
    limit = backup_age_limit(platform.monitoring.thresholds.backup_max_age, platform.backups.schedule)
    age = _duration(limit)
    return AlertGroup(
        "backups",
        (
            Alert(
                "BackupTooOld",
                f"time() - {BACKUP_METRIC} > {number(limit)}",
                "10m",
                "critical",
                "{{ $labels.service }}",
                "The last good backup of {{ $labels.service }} is {{ $value | humanizeDuration }} old",
                f"No backup of this service has succeeded for longer than {age}. `mindscape backup create` writes "
                "the time of each success where node_exporter reads it (.mindscape/metrics).",
                (
                    "`mindscape backup list` shows the last ones; `mindscape backup create --service SERVICE` makes "
                    "one now and says why it fails.",
                    "Check the schedule (backups.schedule) and the backup workflow's last runs.",
                ),
            ),
            Alert(
                "BackupNeverRecorded",
                "("
                + " or ".join(f'absent({BACKUP_METRIC}{{service="{name}"}})' for name in platform.backup_services)
                + ') and on() (up{job="node_exporter"} == 1)',
                str(age),
                "critical",
                "{{ $labels.service }}",
                "No good backup of {{ $labels.service }} is recorded",
                f"node_exporter has run for {age} and no backup of this service has succeeded on this machine "
                "(BackupTooOld only sees a service that had one).",
                (
                    "`mindscape backup create --service SERVICE` makes one now and says why it fails.",
                    "Backups made elsewhere (a CI runner) are not recorded here: run them where the platform runs.",
                ),
            ),
        ),
    )
